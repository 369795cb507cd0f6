"""Small axis helpers for readable plots: plain numbers on log axes (``5``, ``10``, ``20``, never ``6×10⁰`` or
``2⁴``), whole-number ticks for counts, and point labels placed so that they do not overlap."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def nice_ticks(lo: float, hi: float, *, most: int = 8) -> list[float]:
    """Ticks from the 1-2-5 series (then 1-1.5-2-3-5-7, when a range is narrow) inside ``[lo, hi]``."""
    if not (lo > 0 and hi > lo):
        return [lo] if lo > 0 else []
    for mantissas in ((1, 2, 5), (1, 1.5, 2, 3, 5, 7), (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9)):
        ticks = [m * 10.0**e for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
                 for m in mantissas]
        inside = [t for t in ticks if lo <= t * (1 + 1e-9) and t <= hi * (1 + 1e-9)]
        if len(inside) >= 3:
            while len(inside) > most:
                inside = inside[::2]
            return inside
    return inside


def plain(value: float, _pos: Any = None) -> str:
    return f"{value:g}"


def plain_log_axis(ax: Any, which: str = "x", values: Sequence[float] | None = None) -> None:
    """Log axis ``which`` with ticks at ``values`` (e.g. the sequence lengths) or at 1-2-5 values within its
    current limits, labelled as plain numbers; no minor labels."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator  # noqa: PLC0415  lazy: matplotlib

    axis = ax.xaxis if which == "x" else ax.yaxis
    lo, hi = sorted(ax.get_xlim() if which == "x" else ax.get_ylim())
    ticks = sorted(set(values)) if values else nice_ticks(lo, hi)
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(plain))
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())


def integer_axis(axis: Any) -> None:
    """Whole-number ticks (episodes, rungs): never 0.25 of an episode."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: PLC0415  lazy: matplotlib

    axis.set_major_locator(MaxNLocator(integer=True))
    axis.set_major_formatter(FuncFormatter(lambda v, _p: f"{round(v)}"))


OFFSETS = [(5, 4), (5, -12), (-5, 4), (-5, -12), (9, -4), (-9, -4), (0, 10), (0, -18), (14, 12), (-14, 12),
           (14, -22), (-14, -22), (0, 22), (0, -30), (22, -4), (-22, -4)]


def place_labels(ax: Any, points: Sequence[tuple[float, float]], names: Sequence[str], *, fontsize: float = 7,
                 color: str = "black") -> int:
    """Annotate each point with its name at the first nearby offset where the label overlaps no label placed
    before and stays inside the axes; returns how many labels could only be placed overlapping (0 when clean).
    Call it after the figure's layout is final (``tight_layout``), since offsets are in points."""
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    placed: list[Any] = []
    overlapping = 0
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    for i in order:
        x, y = points[i]
        for k, (dx, dy) in enumerate(OFFSETS):
            text = ax.annotate(names[i], (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                               ha="left" if dx > 0 else ("right" if dx < 0 else "center"), va="bottom", color=color)
            box = text.get_window_extent(renderer).expanded(1.04, 1.15)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(b) for b in placed):
                placed.append(box)
                break
            if k == len(OFFSETS) - 1:  # nowhere free: keep the first choice, counted
                text.remove()
                text = ax.annotate(names[i], (x, y), xytext=OFFSETS[0], textcoords="offset points",
                                   fontsize=fontsize, color=color)
                placed.append(text.get_window_extent(renderer))
                overlapping += 1
                break
            text.remove()
    return overlapping


def tick_labels(ax: Any) -> dict[str, list[str]]:
    """The drawn tick labels of both axes (for the PNG's info chunk: tests check they are plain numbers)."""
    ax.figure.canvas.draw()
    return {"xticks": [t.get_text() for t in ax.get_xticklabels() if t.get_text()],
            "yticks": [t.get_text() for t in ax.get_yticklabels() if t.get_text()]}
