r"""Reading one data file of a task of one's own into a table, strictly: CSV with RFC 4180 quoting, TSV with
quoting off (as GLUE writes them), JSON / JSON Lines and Parquet. Every row has the header's field count, no CSV
cell runs over lines (a stray quote never merges rows), column names are unique, and only regular files are
opened (a FIFO would block). Problems are one-line :class:`~kdnas_bench.distill.taskspec.DataError`\ s naming
the file and the line."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from .taskspec import DataError

EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


# -- reading one file ----------------------------------------------------------------------------------
def _decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x})") from None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise DataError(f"the key '{key}' appears twice in one object")
        seen.add(key)
    return dict(pairs)


def _json_value(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_no_duplicate_keys)


def _json_rows(text: str, path: Path) -> tuple[list[Any], list[int] | None]:
    """The rows of a JSON array or JSON Lines file, and each row's line (None for an array)."""
    if text.lstrip().startswith("["):  # one JSON array of objects
        try:
            rows = _json_value(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON ({exc})") from None
        except DataError as exc:
            raise DataError(f"{path}: {exc}: rename one") from None
        numbered = list(enumerate(rows, start=1))
    else:  # JSON Lines
        numbered = []
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    numbered.append((n, _json_value(line)))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{n}: not a JSON line ({exc.msg})") from None
                except DataError as exc:
                    raise DataError(f"{path}:{n}: {exc}: rename one") from None
    for n, row in numbered:
        if not isinstance(row, dict):
            raise DataError(f"{path}:{n}: each line must be a JSON object, got {type(row).__name__}")
    lines = None if text.lstrip().startswith("[") else [n for n, _ in numbered]
    return [row for _, row in numbered], lines


_HINTS = {"csv": "an unquoted comma inside a text? quote that cell", "tsv": "a tab inside a text?"}
# a TSV cell as pandas or Python's csv write a text holding '"': quoted, every inner quote doubled (no GLUE text is)
_QUOTED_TSV_CELL = re.compile(r'"(?:[^"]|"")*""(?:[^"]|"")*"', re.S)


def _tsv_cell(cell: str) -> str:
    return cell[1:-1].replace('""', '"') if _QUOTED_TSV_CELL.fullmatch(cell) else cell


def _records(text: str, path: Path, kind: str) -> Iterator[tuple[int, list[str]]]:
    """(line, fields) of each record that is not blank; a CSV record over several lines (a stray quote would
    merge the rows after it) or with broken quoting is refused with its line."""
    tsv = kind == "tsv"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if tsv else ",",
                        quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL, strict=not tsv)
    last = 0
    try:
        for record in reader:
            start, last = last + 1, reader.line_num
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # a blank line
            if last > start:
                raise DataError(f"{path}:{start}: a quoted cell runs on to line {last} (a stray '\"'?); a cell may not "
                                "hold a line break")
            yield start, record
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise DataError(f"{path}:{last + 1}: not valid CSV: a quoted cell opened on this line is never closed "
                            "(a stray '\"'?)") from None
        raise DataError(f"{path}:{last + 1}: not valid CSV ({exc}; a stray '\"'?)") from None


def _delimited(text: str, path: Path, kind: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, rows and each row's line of a CSV (RFC 4180 quoting) or TSV (no quoting, as GLUE's files; a cell
    that pandas quoted, ``"a ""b"" c"``, is read back as its text) file; every row has the header's field count."""
    csv.field_size_limit(sys.maxsize)
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    for line, record in _records(text, path, kind):
        if header is None:
            header = record
        elif len(record) != len(header):
            raise DataError(f"{path}:{line}: {len(record)} fields, the header has {len(header)} ({_HINTS[kind]})")
        else:
            rows.append([_tsv_cell(c) for c in record] if kind == "tsv" else record)
            lines.append(line)
    if header is None:
        raise DataError(f"{path}: empty file (no header, no data rows)")
    return header, rows, lines


def _check_columns_unique(columns: list[str], path: Path) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(columns, start=1):
        if name in seen:
            raise DataError(f"{path}: two columns are named '{name}' (columns {seen[name]} and {i}): rename one")
        seen[name] = i


_SPECIAL = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
            (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def regular_file(path: Path, what: str = "data file") -> None:
    """Refuse ``path`` unless it is a regular file (a FIFO would block the read forever), in one line."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise DataError(f"cannot read {what} {path}: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise DataError(f"{what} {path} is a folder")
    if not stat.S_ISREG(mode):
        special = next((name for test, name in _SPECIAL if test(mode)), "a special file")
        raise DataError(f"{what} {path} is {special}, not a regular file")


def _frame(path: Path, kind: str, raw: bytes) -> pd.DataFrame:
    """The table of one file; ``attrs["lines"]`` holds each row's line where the file has lines."""
    lines: list[int] | None = None
    if kind == "parquet":
        try:
            _check_columns_unique([str(c) for c in pq.read_schema(io.BytesIO(raw)).names], path)
            df = pd.read_parquet(io.BytesIO(raw))
        except DataError:
            raise
        except Exception as exc:  # pyarrow raises many kinds; all mean "not a Parquet file we can read"
            raise DataError(f"{path}: not a readable Parquet file ({' '.join(str(exc).split())[:200]})") from None
    elif kind == "json":
        rows, lines = _json_rows(_decode(raw, path), path)
        df = pd.DataFrame(rows, dtype=object)
    else:
        header, cells, lines = _delimited(_decode(raw, path), path, kind)
        _check_columns_unique(header, path)
        df = pd.DataFrame(cells, columns=header, dtype=object)
    df.attrs["lines"] = lines
    return df


def read_table(path: str | Path) -> tuple[pd.DataFrame, bytes]:
    """A data file as a table of Python values (CSV/TSV cells as text), and its bytes (for the content hash)."""
    path = Path(path)
    kind = EXTENSIONS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unknown data file type '{path.suffix or '(none)'}' (use .csv, .tsv, .json, .jsonl "
                        "or .parquet)")
    regular_file(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read data file {path}: {exc.strerror}") from None
    df = _frame(path, kind, raw)
    if len(df) == 0:
        raise DataError(f"{path}: no data rows")
    df.columns = [str(c) for c in df.columns]
    return df, raw
