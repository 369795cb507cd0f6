"""Tables that fit the terminal, as ``kubectl`` and ``gh`` do: key columns (device id, backend, student) are never
cut or wrapped; when the terminal is narrow, the least useful columns are left out (the caption says which, and
``--json`` has everything) before anything is squeezed. When even the key columns do not fit, or a table has no
column to spare (:func:`table_or_stacked`), each row is stacked as ``column  value`` lines instead: nothing is cut
with "…".

    >>> console.print(fit_table("fitted predictors", [Col("device_id", KEY), Col("rows", 2)], rows, console.width))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

KEY = 0  # priority of a key column: always shown, never cut; larger numbers are left out first when narrow


@dataclass(frozen=True)
class Col:
    header: str
    priority: int = 1
    justify: str = "left"


def _cell(value: Any) -> Text:
    return value if isinstance(value, Text) else Text(str(value))  # Text: names and paths print verbatim


def _build(title: str | None, cols: Sequence[Col], rows: Sequence[Sequence[Any]], keep: list[int],
           caption: str | None) -> Table:
    table = Table(title=Text(title) if title else None, box=box.SIMPLE_HEAD, pad_edge=False, caption=caption,
                  caption_justify="left", title_justify="left")
    for i in keep:
        c = cols[i]
        if c.priority == KEY:
            width = max([len(c.header), *(len(_cell(r[i]).plain) for r in rows)])
            table.add_column(Text(c.header), justify=c.justify, no_wrap=True, min_width=width)  # type: ignore[arg-type]
        else:
            table.add_column(Text(c.header), justify=c.justify, overflow="fold")  # type: ignore[arg-type]
    for r in rows:
        table.add_row(*(_cell(r[i]) for i in keep))
    return table


def _width(table: Table) -> int:
    """The width ``table`` needs to print every cell on one line."""
    probe = Console(width=10_000, file=open(os.devnull, "w"), color_system=None, emoji=False)  # noqa: SIM115 - measuring
    try:
        return Measurement.get(probe, probe.options, table).maximum
    finally:
        probe.file.close()


def stacked_table(title: str | None, headers: Sequence[str], rows: Sequence[Sequence[Any]],
                  caption: str | None = None) -> Table:
    """The narrow form of a table: one block per row, one ``column  value`` line per cell (a long value wraps,
    whole, on the next lines; it is never cut)."""
    table = Table(title=Text(title) if title else None, box=box.SIMPLE_HEAD, pad_edge=False, show_header=False,
                  caption=caption, caption_justify="left", title_justify="left")
    table.add_column("column", no_wrap=True, style="bold")
    table.add_column("value", overflow="fold")
    for r in rows:
        for j, (header, value) in enumerate(zip(headers, r, strict=True)):
            table.add_row(Text(header), _cell(value), end_section=j == len(headers) - 1)
    return table


def table_or_stacked(title: str | None, cols: Sequence[Col], rows: Sequence[Sequence[Any]], width: int,
                     caption: str | None = None) -> Table:
    """Every column of ``rows``: a plain table where it fits in ``width``, else :func:`stacked_table`."""
    table = _build(title, cols, rows, list(range(len(cols))), caption)
    if _width(table) <= width:
        return table
    return stacked_table(title, [c.header for c in cols], rows, caption)


def fit_table(title: str | None, cols: Sequence[Col], rows: Sequence[Sequence[Any]], width: int,
              caption: str | None = None) -> Table:
    """A rich table of ``rows`` no wider than ``width`` where possible: columns are left out by priority (highest
    number first, the rightmost first among equals) until the rest fits on one line per row; when the key columns
    alone do not fit, every column stacked (:func:`stacked_table`)."""
    keep = list(range(len(cols)))
    while True:
        need = _width(_build(title, cols, rows, keep, None))
        droppable = [i for i in keep if cols[i].priority != KEY]
        if need <= width or not droppable:
            break
        keep.remove(max(droppable, key=lambda i: (cols[i].priority, i)))
    if need > width:
        return stacked_table(title, [c.header for c in cols], rows, caption)
    left = [cols[i].header for i in range(len(cols)) if i not in keep]
    note = f"not shown at {width} columns: {', '.join(left)} (wider terminal or --json)" if left else None
    return _build(title, cols, rows, keep, "\n".join(x for x in (caption, note) if x) or None)


def pivot_tables(title: str, students: Sequence[str], rows: Sequence[tuple[str, str, int, Sequence[str]]],
                 width: int, *, footer: tuple[str, Sequence[str]] | None = None,
                 caption: str | None = None) -> list[Table]:
    """Students as columns, one row per (device, backend, threads) grouped under its device: the compare view.
    Device ids and backends are never cut; when the students do not fit in ``width``, they continue in a
    second table below (as ``column`` wraps), never by squeezing the names."""
    labels: list[tuple[str, list[str]]] = []  # (label, cells); a device line has no cells
    for device in dict.fromkeys(r[0] for r in rows):
        labels.append((device, []))
        labels += [(f"  {b} · {t} thread{'s' if t > 1 else ''}", list(cells)) for d, b, t, cells in rows if d == device]
    if footer is not None:
        labels.append((footer[0], list(footer[1])))
    label_w = max([len("device / backend"), *(len(lbl) for lbl, _ in labels)])

    def build(cols: list[int], title_text: str | None, cap: str | None) -> Table:
        table = Table(title=Text(title_text) if title_text else None, box=box.SIMPLE_HEAD, pad_edge=False,
                      title_justify="left", caption=cap, caption_justify="left")
        table.add_column(Text("device / backend"), no_wrap=True, min_width=label_w)
        for j in cols:
            table.add_column(Text(students[j]), justify="right", no_wrap=True)
        for k, (lbl, cells) in enumerate(labels):
            is_device = not cells
            table.add_row(Text(lbl, style="bold" if is_device else ""), *(Text(cells[j]) if cells else Text("")
                                                                          for j in cols),
                          end_section=(k + 1 < len(labels) and not labels[k + 1][1]) or (footer is not None and
                                                                                         k + 2 == len(labels)))
        return table

    probe = Console(width=10_000, file=open("/dev/null", "w"), color_system=None, emoji=False)  # noqa: SIM115 - measuring
    chunks: list[list[int]] = []
    try:
        rest = list(range(len(students)))
        while rest:
            take = len(rest)
            while take > 1 and Measurement.get(probe, probe.options, build(rest[:take], None, None)).maximum > width:
                take -= 1
            chunks.append(rest[:take])
            rest = rest[take:]
    finally:
        probe.file.close()
    if not chunks:
        chunks = [[]]
    return [build(cols, title if i == 0 else f"{title} (continued)",
                  caption if i == len(chunks) - 1 else None) for i, cols in enumerate(chunks)]
