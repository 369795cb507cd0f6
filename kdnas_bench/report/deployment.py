"""The deployment matrix: for each device × backend (each fitted predictor), the best compared student under a
latency budget (and optionally a memory budget), with its latency (predicted, and measured on this machine),
its peak memory (predicted by the memory model, and measured here in a fresh process) and its task metric in
the backend's precision when it was measured (an int8 backend shows the int8 dev metric of the student's
quantized model, from ``distill --quantize int8`` or ``search --final`` on an int8 backend).

Feasible: predicted upper latency bound ≤ ``budget_ms`` (what the search holds against a hard budget) and,
with ``budget_mb``, predicted peak memory ≤ it. Best: the highest metric among the feasible students with a
known metric; ties and unknown metrics go to the faster student."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import KdnasError
from .compare import CompareResult, CompareRow


@dataclass(frozen=True)
class MatrixCell:
    device_id: str
    backend: str
    threads: int
    precision: str
    feasible: int  # students within the budget(s)
    student: str | None = None
    arch: dict[str, int] | None = None
    latency_ms: float | None = None
    latency_ms_high: float | None = None
    measured_ms: float | None = None
    peak_mb: float | None = None  # predicted (memory model)
    measured_peak_mb: float | None = None
    metric: float | None = None
    metric_name: str | None = None
    metric_precision: str | None = None  # the precision the metric was measured in ("fp32", "int8")
    note: str | None = None  # why the cell is empty other than the budget
    memory_method: int | None = None  # the measuring method of the memory model's rows (predicted peak)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _metric(row: CompareRow, student: Any, precision: str) -> tuple[float | None, str | None]:
    """The metric in the backend's precision when known (int8: the quantized model's), else the fp32 one."""
    if precision == "int8" and student.extra.get("int8_metric") is not None:
        return float(student.extra["int8_metric"]), "int8"
    return row.metric, ("fp32" if row.metric is not None else None)


def deployment_matrix(result: CompareResult, budget_ms: float, budget_mb: float | None = None,
                      measure_memory: Callable[[Any, str, int], float | None] | None = None) -> list[MatrixCell]:
    """One cell per predictor of ``result``. ``measure_memory(arch, backend, threads)`` measures the chosen
    student's peak memory (MiB) on this machine; it is called only for predictors of this machine."""
    from ..profiling.backends import BACKENDS

    if not budget_ms > 0 or (budget_mb is not None and not budget_mb > 0):
        raise KdnasError("the deployment matrix needs positive budgets")
    students = {s.name: s for s in result.students}
    cells = []
    for p in result.predictors:
        label = f"{p.device_id} / {p.backend} / {p.threads}t"
        model = result.models.get(label)
        rows = [r for r in result.rows if (r.device_id, r.backend, r.threads) == (p.device_id, p.backend, p.threads)]
        peak: dict[str, float] = {}
        if model is not None and getattr(model, "memory", None):
            mb = model.predict_memory_mb([(students[r.student].arch, result.shape) for r in rows])
            peak = {r.student: float(v) for r, v in zip(rows, np.asarray(mb), strict=True)}
        precision = BACKENDS[p.backend].precision if p.backend in BACKENDS else "fp32"
        if budget_mb is not None and not peak:
            cells.append(MatrixCell(p.device_id, p.backend, p.threads, precision, 0,
                                    note="no memory model (profile with --memory, then fit)"))
            continue
        ok = [r for r in rows if r.latency_ms_high <= budget_ms
              and (budget_mb is None or (r.student in peak and peak[r.student] <= budget_mb))]
        if not ok:
            cells.append(MatrixCell(p.device_id, p.backend, p.threads, precision, 0))
            continue

        def key(r: CompareRow, precision: str = precision) -> tuple[float, float]:
            m, _ = _metric(r, students[r.student], precision)
            return (m if m is not None else -np.inf, -r.latency_ms)

        best = max(ok, key=key)
        metric, metric_precision = _metric(best, students[best.student], precision)
        measured_peak = None
        if p.local and measure_memory is not None:
            measured_peak = measure_memory(students[best.student].arch, p.backend, p.threads)
        cells.append(MatrixCell(p.device_id, p.backend, p.threads, precision, len(ok), best.student, best.arch,
                                best.latency_ms, best.latency_ms_high, best.measured_ms, peak.get(best.student),
                                measured_peak, metric, best.metric_name, metric_precision,
                                memory_method=getattr(model, "memory_method", None) if peak else None))
    return cells


def matrix_table_rows(cells: list[MatrixCell]) -> tuple[list[str], list[list[str]]]:
    """Headers and string rows (terminal, Markdown and HTML share them)."""
    def f(v: float | None, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    headers = ["device", "backend", "threads", "best student", "arch", "predicted ms (upper)", "measured ms",
               "peak MiB predicted", "peak MiB measured", "metric", "feasible"]
    rows = []
    for c in cells:
        a = c.arch
        metric = "-" if c.metric is None else f"{c.metric:.4f} {c.metric_name or ''} ({c.metric_precision})"
        rows.append([c.device_id, c.backend, str(c.threads), c.student or c.note or "none within budget",
                     "-" if a is None else f"{a['layers']}L/{a['hidden']}H/{a['heads']}A/{a['ffn']}F",
                     "-" if c.latency_ms is None else f"{c.latency_ms:.2f} ({c.latency_ms_high:.2f})",
                     f(c.measured_ms, ".2f"),
                     f(c.peak_mb, ".1f") + (f" (m{c.memory_method})" if c.memory_method and c.peak_mb is not None else ""),
                     f(c.measured_peak_mb, ".1f"), metric,
                     str(c.feasible)])
    return headers, rows


def matrix_png(cells: list[MatrixCell], out: Any, *, budget_ms: float, budget_mb: float | None) -> Any:
    """One PNG: devices as rows, backends as columns; each cell the best student with its latency, memory and
    metric, coloured by the metric (grey: none within the budget)."""
    from pathlib import Path

    from .plots import _plt, save

    plt = _plt()
    devices = sorted({c.device_id for c in cells})
    columns = sorted({(c.backend, c.threads) for c in cells})
    fig, ax = plt.subplots(figsize=(2.3 * len(columns) + 1.5, 1.3 * len(devices) + 1.2))
    known = [c.metric for c in cells if c.metric is not None]
    lo, hi = (min(known), max(known)) if known else (0.0, 1.0)
    cmap = plt.get_cmap("viridis")
    for c in cells:
        x, y = columns.index((c.backend, c.threads)), devices.index(c.device_id)
        shade = 0.5 if hi == lo else (c.metric - lo) / (hi - lo) if c.metric is not None else None
        ax.add_patch(plt.Rectangle((x, y), 1, 1, color=cmap(0.25 + 0.6 * shade) if shade is not None else "0.85"))
        if c.student is None:
            text = "no memory\nmodel" if c.note else "none within\nthe budget"
        else:
            ms = c.measured_ms if c.measured_ms is not None else c.latency_ms
            mb = c.measured_peak_mb if c.measured_peak_mb is not None else c.peak_mb
            text = (f"{c.student}\n{ms:.1f} ms{' (pred.)' if c.measured_ms is None else ''}"
                    + ("" if mb is None else f" · {mb:.0f} MiB")
                    + ("" if c.metric is None else f"\n{c.metric:.3f} ({c.metric_precision})"))
        ax.text(x + 0.5, y + 0.5, text, ha="center", va="center", fontsize=7)
    ax.set_xlim(0, len(columns))
    ax.set_ylim(0, len(devices))
    ax.set_xticks([i + 0.5 for i in range(len(columns))], [f"{b}\n{t} thread(s)" for b, t in columns], fontsize=7)
    ax.set_yticks([i + 0.5 for i in range(len(devices))], devices, fontsize=7)
    ax.set_xlabel("backend")
    ax.set_ylabel("device")
    budget = f"≤ {budget_ms:g} ms" + ("" if budget_mb is None else f", ≤ {budget_mb:g} MiB")
    ax.set_title(f"deployment matrix: best student {budget} (measured where this machine)", fontsize=9)
    fig.tight_layout()
    path = Path(out) / "deployment-matrix.png"
    return save(fig, path, {"kind": "deployment-matrix", "cells": len(cells), "devices": len(devices),
                            "backends": len(columns), "budget_ms": budget_ms, "budget_mb": budget_mb})
