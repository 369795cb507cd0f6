"""Progress of long steps, readable in a terminal and in a log.

In a terminal the long loops draw rich progress bars. When the output is not a terminal (``nox -s quickstart``, CI
logs, ``… | tee log``) a bar draws nothing until the end, so :class:`LineProgress` prints instead one plain line
every ``KDNAS_PROGRESS_SECONDS`` (default 15) seconds, and one at the end::

    supernet sst2: 120/500 (24%) · 1m12s elapsed · ETA 3m48s · loss 0.4210 · 212 ex/s

It has the subset of ``rich.progress.Progress``'s interface that the loops use (a context manager, ``add_task``,
``update``, ``advance``), so a loop swaps one for the other in one line (see :func:`progress_for`)."""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text


def every_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get("KDNAS_PROGRESS_SECONDS", "15")))
    except ValueError:
        return 15.0


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    s = round(max(0.0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _field(name: str, value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # nan: not known yet
            return ""
        return f"{name} {value:.4f}" if name == "loss" else (f"{value:.0f} ex/s" if name == "rate" else f"{name} {value:.4g}")
    text = Text.from_markup(str(value)).plain.strip() if value is not None else ""
    return text


class LineProgress:
    """Plain progress lines for logs: done/total, elapsed, ETA and the task's fields, at most every ``every`` s."""

    def __init__(self, description: str = "", *, out: TextIO | None = None, every: float | None = None) -> None:
        self.description = description
        self.out = out
        self.every = every_seconds() if every is None else every
        self.tasks: dict[int, dict[str, Any]] = {}

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:  # the last line, when there is progress it has not told yet
            for task_id, t in self.tasks.items():
                if t["printed_at"] != t["completed"] and t["completed"] > t["start_completed"]:
                    self._line(task_id)

    def add_task(self, description: str, total: float | None = None, completed: float = 0, **fields: Any) -> int:
        task_id = len(self.tasks)
        now = time.monotonic()
        self.tasks[task_id] = {"description": description or self.description, "total": total, "completed": completed,
                               "start_completed": completed, "started": now, "last": now, "printed_at": None,
                               "fields": fields}
        return task_id

    def update(self, task_id: int, *, completed: float | None = None, advance: float | None = None,
               total: float | None = None, description: str | None = None, **fields: Any) -> None:
        t = self.tasks[task_id]
        if completed is not None:
            t["completed"] = completed
        if advance is not None:
            t["completed"] += advance
        if total is not None:
            t["total"] = total
        if description is not None:
            t["description"] = description
        t["fields"].update(fields)
        now = time.monotonic()
        if now - t["last"] >= self.every:
            self._line(task_id)

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def _line(self, task_id: int) -> None:
        t = self.tasks[task_id]
        now = time.monotonic()
        t["last"], t["printed_at"] = now, t["completed"]
        done, total, elapsed = t["completed"], t["total"], now - t["started"]
        parts = [f"{t['description']}: {done:g}" + (f"/{total:g} ({done / total:.0%})" if total else "")]
        parts.append(f"{duration(elapsed)} elapsed")
        fresh = done - t["start_completed"]
        if total and fresh > 0 and done < total:
            parts.append(f"ETA {duration(elapsed / fresh * (total - done))}")
        parts += [p for p in (_field(k, v) for k, v in t["fields"].items()) if p]
        print(" · ".join(parts), file=self.out or sys.stderr, flush=True)


def progress_for(enabled: bool, rich_progress: Any, description: str = "") -> Any:
    """``rich_progress`` in a terminal (stderr), :class:`LineProgress` when enabled but not in a terminal."""
    if enabled and not sys.stderr.isatty():
        return LineProgress(description)
    return rich_progress


def progress_bar(enabled: bool, description: str, total: int) -> Any:
    """A training loop's bar (loss and examples per second in its fields) on stderr; a plain line every ~15 s
    instead when stderr is not a terminal (see :func:`progress_for`). ``total`` is the number of steps the loop
    gives the task it adds."""
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[rate]:.0f} ex/s"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=True, disable=not enabled,
    )
    return progress_for(enabled, progress, description)


def quiet_third_party() -> None:
    """No third-party progress bars in our output (transformers' "Writing model shards", hub downloads)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging  # noqa: PLC0415  lazy: transformers

        hf_logging.disable_progress_bar()
