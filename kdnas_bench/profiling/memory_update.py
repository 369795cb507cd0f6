"""``remeasure --memory-only``: measure the memory columns of stored rows again with the current method
(:data:`.memory.METHOD`), leaving every latency column as it was.

Which rows: the ok rows whose memory was measured with another method (``stale``), and with
``include_unmeasured`` also the ok rows without memory, stale rows first, each in stored order. Rows
that already carry the current method are never measured again, so an interrupted run is resumed by
running it again. Every ``batch`` rows, the new copies are appended to the dataset
(:meth:`.store.Dataset.revise`: readers see the newest copy, at the row's place); at the end the dataset
is compacted into one file. A row whose measurement fails keeps what it had (its stored memory, if any)
and is reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import KdnasError
from ..space import Arch, Shape
from .memory import COLUMNS, METHOD, MemoryProbe, MemoryResult
from .store import SCHEMA, Dataset

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class MemoryUpdate:
    """What a memory-only re-measurement did."""

    method: int
    selected: int  # rows chosen this run (after --samples)
    pending: int  # rows still needing the current method before this run (stale + unmeasured when asked)
    measured: int
    failed: int
    seconds: float
    errors: list[str] = field(default_factory=list)  # the first few failures
    peak_ratio_median: float | None = None  # new / stored peak over the re-measured stale rows
    rows_by_method: dict[str, int] = field(default_factory=dict)  # ok rows per memory method afterwards

    def __post_init__(self) -> None:
        if min(self.selected, self.pending, self.measured, self.failed) < 0 or self.measured + self.failed > self.selected:
            raise KdnasError(f"inconsistent memory update counts {self}")

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "selected": self.selected, "pending": self.pending, "measured": self.measured,
                "failed": self.failed, "seconds": self.seconds, "errors": self.errors,
                "peak_ratio_median": self.peak_ratio_median, "rows_by_method": self.rows_by_method}


def pending_rows(table: pa.Table, include_unmeasured: bool) -> list[int]:
    """Indices of the ok rows to measure: other-method memory first, then (when asked) no memory."""
    d = table.select(["status", "peak_rss_bytes", "memory_method"]).to_pydict()
    stale, missing = [], []
    for i, (status, peak, method) in enumerate(zip(d["status"], d["peak_rss_bytes"], d["memory_method"], strict=True)):
        if status != "ok":
            continue
        if peak is None:
            missing.append(i)
        elif method != METHOD:
            stale.append(i)
    return stale + (missing if include_unmeasured else [])


def _revised(table: pa.Table, idx: list[int], results: list[MemoryResult]) -> pa.Table:
    """The rows ``idx`` of ``table`` with their memory columns replaced by ``results``."""
    sub = table.take(idx)
    values: dict[str, list[Any]] = {c: [getattr(r, c) for r in results] for c in COLUMNS}
    values["memory_error"] = [None] * len(results)
    values["memory_method"] = [METHOD] * len(results)
    for name, vals in values.items():
        f = SCHEMA.field(name)
        sub = sub.set_column(sub.schema.get_field_index(name), f, pa.array(vals, f.type))
    return sub


def _methods(table: pa.Table) -> dict[str, int]:
    d = table.select(["status", "memory_method"]).to_pydict()
    out: dict[str, int] = {}
    for status, method in zip(d["status"], d["memory_method"], strict=True):
        if status == "ok":
            key = "none" if method is None else str(method)
            out[key] = out.get(key, 0) + 1
    return out


def remeasure_memory(dataset: Dataset, probe: MemoryProbe, *, include_unmeasured: bool = False,
                     limit: int | None = None, batch: int = 10, progress: ProgressFn | None = None) -> MemoryUpdate:
    """Re-measure the memory of the dataset's pending rows (at most ``limit``) with ``probe``."""
    if batch < 1 or (limit is not None and limit < 1):
        raise KdnasError("batch and limit must be positive")
    started = time.perf_counter()
    errors: list[str] = []
    ratios: list[float] = []
    measured = failed = 0
    with dataset.writer():
        table = dataset.read_table()
        todo = pending_rows(table, include_unmeasured)
        pending = len(todo)
        todo = todo[:limit] if limit is not None else todo
        cols = table.select(["layers", "hidden", "heads", "ffn", "batch", "seq", "peak_rss_bytes"]).to_pydict()
        done_idx: list[int] = []
        done_res: list[MemoryResult] = []
        for n, i in enumerate(todo, 1):
            arch = Arch(cols["layers"][i], cols["hidden"][i], cols["heads"][i], cols["ffn"][i])
            try:
                res = probe.measure(arch, Shape(cols["batch"][i], cols["seq"][i]))
            except KdnasError as exc:
                failed += 1
                if len(errors) < 5:
                    errors.append(f"{arch} {cols['batch'][i]}x{cols['seq'][i]}: {exc}")
            else:
                measured += 1
                done_idx.append(i)
                done_res.append(res)
                if cols["peak_rss_bytes"][i]:
                    ratios.append(res.peak_rss_bytes / cols["peak_rss_bytes"][i])
            if len(done_idx) >= batch or (n == len(todo) and done_idx):
                dataset.revise(_revised(table, done_idx, done_res))
                done_idx, done_res = [], []
            if progress is not None:
                progress(n, len(todo))
        if measured:
            dataset.compact()
        after = _methods(dataset.read_table())
    return MemoryUpdate(METHOD, len(todo), pending, measured, failed, time.perf_counter() - started, errors,
                        float(np.median(ratios)) if ratios else None, after)
