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
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import KdnasError
from ..profiling.backends import BACKENDS
from ..space import arch_text
from .compare import CompareResult, CompareRow
from .plots import _plt, save


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
    budget_ms: float | None = None

    @property
    def chosen_by(self) -> str:
        """Why this student: the best known metric, or (no metric known) the fastest within the budget."""
        return "metric" if self.metric is not None else "fastest"

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
                                    note="no memory model (profile with --memory, then fit)", budget_ms=budget_ms))
            continue
        ok = [r for r in rows if r.latency_ms_high <= budget_ms
              and (budget_mb is None or (r.student in peak and peak[r.student] <= budget_mb))]
        if not ok:
            cells.append(MatrixCell(p.device_id, p.backend, p.threads, precision, 0, budget_ms=budget_ms))
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
                                memory_method=getattr(model, "memory_method", None) if peak else None,
                                budget_ms=budget_ms))
    return cells


def matrix_table_rows(cells: list[MatrixCell]) -> tuple[list[str], list[list[str]]]:
    """Headers and string rows (terminal, Markdown and HTML share them)."""
    def f(v: float | None, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    budgets = len({c.budget_ms for c in cells}) > 1
    headers = ["device", "backend", "threads", *(["budget ms"] if budgets else []), "student", "chosen by",
               "predicted ms (upper)", "measured ms", "metric", "arch", "peak MiB predicted", "peak MiB measured",
               "feasible"]
    rows = []
    for c in cells:
        a = c.arch
        metric = "-" if c.metric is None else f"{c.metric:.4f} {c.metric_name or ''} ({c.metric_precision})"
        chosen = "-" if c.student is None else (f"best {c.metric_name or 'metric'}" if c.chosen_by == "metric"
                                                else "fastest (no metric)")
        rows.append([c.device_id, c.backend, str(c.threads), *([f"{c.budget_ms:g}"] if budgets else []),
                     c.student or c.note or "none within budget", chosen,
                     "-" if c.latency_ms is None else f"{c.latency_ms:.2f} ({c.latency_ms_high:.2f})",
                     f(c.measured_ms, ".2f"), metric,
                     "-" if a is None else arch_text(a),
                     f(c.peak_mb, ".1f") + (f" (m{c.memory_method})" if c.memory_method and c.peak_mb is not None else ""),
                     f(c.measured_peak_mb, ".1f"), str(c.feasible)])
    return headers, rows


def matrix_png(cells: list[MatrixCell], out: Any, *, budget_ms: float, budget_mb: float | None,
               shape: Any = None, name: str = "deployment-matrix.png", labels: dict[str, str] | None = None) -> Any:
    """One PNG, an annotated heatmap: devices as rows, backends as columns; each cell the chosen student with
    its latency, memory and metric. Coloured by the task metric (with a colour bar naming it); when no metric
    is known, by latency (the fastest student under the budget is chosen). A legend explains the cells without
    a colour: grey, no student within the budget; hatched, a device × backend that was not profiled (no
    predictor). ``labels`` renames students in the cells (e.g. a teacher folder's name to "teacher")."""
    from matplotlib.colors import Normalize  # noqa: PLC0415  lazy: matplotlib

    plt = _plt()
    devices = sorted({c.device_id for c in cells})
    columns = sorted({(c.backend, c.threads) for c in cells})
    by_metric = any(c.metric is not None for c in cells)
    names = sorted({f"{c.metric_name or 'metric'} ({c.metric_precision})" for c in cells if c.metric is not None})
    grid = np.full((len(devices), len(columns)), np.nan)
    for c in cells:
        v = _cell_value(c, by_metric)
        if v is not None:
            grid[devices.index(c.device_id), columns.index((c.backend, c.threads))] = v
    fig, ax = plt.subplots(figsize=(min(11.0, max(6.5, 1.75 * len(columns) + 3.0)), 1.2 * len(devices) + 2.6))
    cmap = plt.get_cmap("viridis" if by_metric else "viridis_r").with_extremes(bad=EMPTY_GREY)
    finite = grid[np.isfinite(grid)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5 * max(abs(lo), 1e-3), hi + 0.5 * max(abs(hi), 1e-3)
    norm = Normalize(lo, hi)
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm, aspect="auto")
    bar_label = ("task metric: " + ", ".join(names)) if by_metric else "latency (ms), measured here else predicted"
    fig.colorbar(im, ax=ax, label=bar_label, fraction=0.046, pad=0.03)
    texts: list[str] = []
    for c in cells:
        y, x = devices.index(c.device_id), columns.index((c.backend, c.threads))
        v = _cell_value(c, by_metric)
        r, g, b, _ = cmap(norm(v)) if v is not None else (0.9, 0.9, 0.9, 1)
        colour = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
        texts.append(_cell_text(c, labels or {}))
        ax.text(x, y, texts[-1], ha="center", va="center", fontsize=8.5, color=colour)
    missing = _hatch_missing(ax, cells, devices, columns)
    _axes_text(ax, devices, columns)
    _legend(ax, missing > 0, any(c.student is None for c in cells))
    budget = f"{budget_ms:g} ms" + ("" if budget_mb is None else f" and {budget_mb:g} MiB")
    at = "" if shape is None else f", batch {shape.batch} × seq {shape.seq}"
    chosen = (f"the student with the best {', '.join(sorted({c.metric_name or 'metric' for c in cells if c.metric is not None}))}"
              if by_metric else "the fastest student (no task metric known)")
    ax.set_title(f"Deployment matrix: {chosen}\nwithin {budget} (predicted upper bound){at}", fontsize=11)
    fig.tight_layout()
    path = Path(out) / name
    return save(fig, path, {"kind": "deployment-matrix", "cells": len(cells), "devices": len(devices),
                            "backends": len(columns), "budget_ms": budget_ms, "budget_mb": budget_mb,
                            "colour": "metric" if by_metric else "latency", "colorbar": bar_label,
                            "metric": names or None, "seq": None if shape is None else shape.seq,
                            "batch": None if shape is None else shape.batch, "not_measured": missing,
                            "cell_texts": texts})


EMPTY_GREY = "0.86"  # a cell with no student within the budget


def _cell_value(c: MatrixCell, by_metric: bool) -> float | None:
    if c.student is None:
        return None
    if by_metric:
        return c.metric
    return c.measured_ms if c.measured_ms is not None else c.latency_ms


def _cell_text(c: MatrixCell, labels: dict[str, str]) -> str:
    """The chosen student, its latency (measured or predicted), peak memory and metric, one per line."""
    if c.student is None:
        return "no memory\nmodel" if c.note else "none within\nthe budget"
    ms = c.measured_ms if c.measured_ms is not None else c.latency_ms
    mb = c.measured_peak_mb if c.measured_peak_mb is not None else c.peak_mb
    lines = [labels.get(c.student, c.student), f"{ms:.1f} ms {'measured' if c.measured_ms is not None else 'predicted'}"]
    if mb is not None:
        lines.append(f"{mb:.0f} MiB")
    if c.metric is not None:
        lines.append(f"{c.metric_name or 'metric'} {c.metric:.3f}")
        if c.metric_precision not in (None, "fp32"):
            lines[-1] += f"\n(of the {c.metric_precision} model)"
    return "\n".join(lines)


def _hatch_missing(ax: Any, cells: list[MatrixCell], devices: list[str], columns: list[tuple[str, int]]) -> int:
    """Hatch the device × backend pairs without a predictor (never profiled); how many there were."""
    from matplotlib.patches import Rectangle  # noqa: PLC0415  lazy: matplotlib

    have = {(c.device_id, c.backend, c.threads) for c in cells}
    missing = 0
    for y, d in enumerate(devices):
        for x, (b, t) in enumerate(columns):
            if (d, b, t) not in have:
                missing += 1
                ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor="white", edgecolor="0.7", hatch="///",
                                       linewidth=0))
    return missing


def _axes_text(ax: Any, devices: list[str], columns: list[tuple[str, int]]) -> None:
    def column(backend: str, threads: int) -> str:
        return backend if "cuda" in backend else f"{backend}\n{threads} thread{'s' if threads > 1 else ''}"

    ax.set_xticks(range(len(columns)), [column(b, t) for b, t in columns], fontsize=9)
    ax.set_yticks(range(len(devices)), devices, fontsize=9)
    ax.set_xticks(np.arange(-0.5, len(columns)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(devices)), minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="minor", length=0)
    ax.set_xlabel("backend")
    ax.set_ylabel("device")


def _legend(ax: Any, missing: bool, empty: bool) -> None:
    from matplotlib.patches import Patch  # noqa: PLC0415  lazy: matplotlib

    handles = []
    if empty:
        handles.append(Patch(facecolor=EMPTY_GREY, edgecolor="0.6", label="no student within the budget"))
    if missing:
        handles.append(Patch(facecolor="white", edgecolor="0.6", hatch="///",
                             label="not measured (this device × backend was not profiled)"))
    if handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=len(handles), frameon=False,
                  fontsize=9)
