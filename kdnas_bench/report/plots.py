"""matplotlib PNGs for compare and report. Each PNG carries a ``kdnas`` text chunk (JSON: title, axis labels,
series and point counts) so a test, or a user's script, can check what a plot shows without reading pixels."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import KdnasError
from .axes import integer_axis, place_labels, plain_log_axis, tick_labels
from .compare import CompareResult, pareto_front

DPI = 110


def _plt() -> Any:
    import matplotlib  # noqa: PLC0415  lazy: matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415  lazy: matplotlib

    return plt


def _finish(ax: Any, xlabel: str, ylabel: str, title: str, xvalues: Sequence[float] | None = None) -> None:
    """Log axes with plain tick labels, labels, grid, legend and a tight layout: the end of the latency plots."""
    ax.set_yscale("log")
    plain_log_axis(ax, "y")
    if ax.get_xscale() == "log":
        plain_log_axis(ax, "x", xvalues)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3, which="major")
    ax.legend(fontsize=7)
    ax.figure.tight_layout()


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def save(fig: Any, path: Path, info: dict[str, Any]) -> Path:
    """Save ``fig`` as PNG with ``info`` (plus its axes' labels) in the PNG's ``kdnas`` text chunk."""
    plt = _plt()
    axes = [{"title": ax.get_title(), "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
             "xscale": ax.get_xscale(), "yscale": ax.get_yscale(), **tick_labels(ax),
             "legend": [t.get_text() for t in ax.get_legend().get_texts()] if ax.get_legend() else []}
            for ax in fig.axes if ax.get_visible()]
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, metadata={"kdnas": json.dumps({**info, "axes": axes})})
    plt.close(fig)
    return path


def read_info(path: Path) -> dict[str, Any]:
    """The ``kdnas`` chunk of a PNG written by :func:`save`, with its pixel ``size``."""
    with Image.open(path) as img:
        text = getattr(img, "text", {}) or {}
        return {**json.loads(text.get("kdnas", "{}")), "size": list(img.size), "format": img.format}


def _metric_axis(result: CompareResult) -> tuple[str, dict[str, float]] | None:
    """The y axis of the Pareto plots: the students' task metric, or None when no student has one."""
    metrics = {s.name: float(s.metric) for s in result.students if s.metric is not None}
    if len(metrics) < 2:  # a front needs at least two students with a known metric
        return None
    names = {s.metric_name for s in result.students if s.metric is not None}
    return f"task metric ({', '.join(sorted(n for n in names if n)) or 'metric'})", metrics


PER_ROW = 2  # Pareto panels per row: readable inside the HTML report at 1400 px


def pareto_pngs(result: CompareResult, out: Path) -> list[Path]:
    """Per device, a grid of panels (one per backend/threads predictor, two per row): task metric against
    predicted latency with the Pareto front. None when fewer than two students have a known metric (a front of
    params against latency would tell nothing)."""
    axis = _metric_axis(result)
    if axis is None:
        return []
    ylabel, yvals = axis
    plt = _plt()
    paths = []
    for device in sorted({p.device_id for p in result.predictors}):
        preds = [p for p in result.predictors if p.device_id == device]
        ncols = min(PER_ROW, len(preds))
        nrows = -(-len(preds) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(6.0 * ncols, 4.6 * nrows), squeeze=False)
        series, labelled = [], []
        for k, ax in enumerate(axes.flat):
            if k >= len(preds):
                ax.set_visible(False)
                continue
            p = preds[k]
            rows = [r for r in result.rows if (r.device_id, r.backend, r.threads) == (device, p.backend, p.threads)
                    and r.student in yvals]
            xs = [r.latency_ms for r in rows]
            ys = [yvals[r.student] for r in rows]
            err = np.array([[r.latency_ms - r.latency_ms_low for r in rows], [r.latency_ms_high - r.latency_ms for r in rows]])
            ax.errorbar(xs, ys, xerr=err, fmt="o", color="tab:blue", ecolor="tab:gray", capsize=3,
                        label="students (90 % interval)")
            front = pareto_front(list(zip(xs, ys, strict=True)))
            if front:
                ax.step([xs[i] for i in front], [ys[i] for i in front], where="post", color="tab:red", lw=1.2,
                        label="Pareto front")
            others = [r.student for r in result.rows
                      if (r.device_id, r.backend, r.threads) == (device, p.backend, p.threads) and r.student not in yvals]
            ax.set_xscale("log")
            lo, hi = min(r.latency_ms_low for r in rows), max(r.latency_ms_high for r in rows)
            ax.set_xlim(lo / 1.25, hi * 1.25)
            ypad = 0.15 * (max(ys) - min(ys) or 0.05)
            ax.set_ylim(min(ys) - ypad, max(ys) + 2 * ypad)
            plain_log_axis(ax, "x")
            ax.set_title(f"{p.backend}, {p.threads} thread{'s' if p.threads > 1 else ''}"
                         + (f" ({len(others)} without a metric not shown)" if others else ""), fontsize=9)
            ax.set_xlabel(f"predicted latency (ms), batch {result.shape.batch} x seq {result.shape.seq}")
            ax.set_ylabel(ylabel)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7, loc="lower right")
            labelled.append((ax, list(zip(xs, ys, strict=True)), [r.student for r in rows]))
            series.append({"predictor": p.label, "points": len(rows), "front": [rows[i].student for i in front],
                           "no_metric": others})
        fig.suptitle(f"Pareto front on {device}: task metric vs predicted latency", fontsize=10)
        fig.tight_layout()
        overlaps = sum(place_labels(ax, pts, names) for ax, pts, names in labelled)
        paths.append(save(fig, out / f"pareto-{slug(device)}.png",
                          {"kind": "pareto", "device_id": device, "series": series, "grid": [nrows, ncols],
                           "label_overlaps": overlaps}))
    return paths


def seq_pngs(result: CompareResult, out: Path) -> list[Path]:
    """Per predictor: predicted latency against sequence length, one line (with its interval band) per student."""
    plt = _plt()
    paths = []
    for p in result.predictors:
        curves = result.seq_sweep.get(p.label) or {}
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for name, pts in curves.items():
            seq = [q[0] for q in pts]
            ax.plot(seq, [q[2] for q in pts], marker="o", ms=3, label=name)
            ax.fill_between(seq, [q[1] for q in pts], [q[3] for q in pts], alpha=0.15)
        ax.set_xscale("log", base=2)
        seqs = sorted({q[0] for pts in curves.values() for q in pts})
        _finish(ax, f"sequence length (batch {result.shape.batch})", "predicted latency (ms)",
                f"latency vs sequence length: {p.label}", xvalues=seqs)
        paths.append(save(fig, out / f"seq-{slug(p.label)}.png",
                          {"kind": "latency-vs-seq", "predictor": p.label, "lines": len(curves),
                           "points_per_line": len(next(iter(curves.values()), []))}))
    return paths


def pred_vs_measured_pngs(result: CompareResult, out: Path, store: Path | None = None) -> list[Path]:
    """Per predictor: predicted against measured latency over its device's profile rows (when the store has
    them; in-sample: the predictor was fitted on them, so the plot says so and quotes its held-out figure) and
    the students measured now (stars: held-out by construction), with the y = x line and a +-10 % band."""
    plt = _plt()
    paths = []
    for p in result.predictors:
        model = result.models.get(p.label)
        profile = None if model is None else _profile_points(model, store)
        fresh = [r for r in result.rows if (r.device_id, r.backend, r.threads) == (p.device_id, p.backend, p.threads)
                 and r.measured_ms]
        if not fresh and profile is None:
            continue
        fig, ax = plt.subplots(figsize=(5.6, 5.0))
        values: list[float] = []
        if profile is not None:
            meas, pred = profile
            ax.scatter(meas, pred, s=6, alpha=0.35, color="tab:blue",
                       label=f"profile rows, in-sample ({len(meas)}; fitted on them)")
            values += [*meas, *pred]
        if fresh:
            mx = [float(r.measured_ms) for r in fresh if r.measured_ms]
            py = [r.latency_ms for r in fresh]
            ax.errorbar(mx, py, yerr=[[r.latency_ms - r.latency_ms_low for r in fresh],
                                      [r.latency_ms_high - r.latency_ms for r in fresh]],
                        fmt="*", ms=10, color="tab:red", capsize=2,
                        label=f"students measured now, held-out ({len(fresh)})")
            values += mx + py
        lo, hi = min(values) * 0.8, max(values) * 1.25
        line = np.geomspace(lo, hi, 50)
        ax.plot(line, line, color="black", lw=0.8, label="y = x")
        ax.fill_between(line, line * 0.9, line * 1.1, color="gray", alpha=0.15, label="+-10 %")
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        _finish(ax, "measured latency (ms)", "predicted latency (ms)", f"predicted vs measured\n{p.label}")
        if p.within_10pct is not None:
            ax.text(0.98, 0.03, f"held-out split at fit time:\n{p.within_10pct:.0%} within +-10 %", ha="right",
                    va="bottom", fontsize=7, transform=ax.transAxes, bbox={"fc": "white", "ec": "0.8"})
        if fresh:
            place_labels(ax, list(zip(mx, py, strict=True)), [r.student for r in fresh])
        paths.append(save(fig, out / f"pred-vs-measured-{slug(p.label)}.png",
                          {"kind": "pred-vs-measured", "predictor": p.label, "profile_in_sample": profile is not None,
                           "heldout_within_10pct": p.within_10pct,
                           "profile_points": 0 if profile is None else len(profile[0]), "fresh_points": len(fresh)}))
    return paths


def _profile_points(pred: Any, store: Path | None) -> tuple[list[float], list[float]] | None:
    from ..predictors import registry  # noqa: PLC0415  lazy: pandas (via predictors.registry)

    try:
        df = registry.load_rows(pred.key.device_id, pred.key.backend, pred.key.threads, store)
    except KdnasError:
        return None
    if df.empty:
        return None
    cols = {k: df[k].to_numpy() for k in ("layers", "hidden", "heads", "ffn", "seq", "batch")}
    return [float(v) for v in df["median_ms"]], [float(v) for v in pred.predict(cols)]


def line_png(path: Path, xs: Sequence[float], series: Mapping[str, Sequence[float]], *, title: str, xlabel: str,
             ylabel: str, points: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
             hlines: Mapping[str, float] | None = None, integer_x: bool = False) -> Path:
    """A small line chart (used by the run report: reward curves); ``integer_x``: whole-number x ticks."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, ys in series.items():
        ax.plot(xs, ys, marker="o", ms=3, label=name)
    for name, (px, py) in (points or {}).items():
        ax.scatter(px, py, s=12, alpha=0.5, label=name)
    for name, y in (hlines or {}).items():
        ax.axhline(y, ls="--", lw=0.8, color="gray", label=name)
    if integer_x:
        integer_axis(ax.xaxis)
        if len(xs):
            ax.set_xlim(min(xs) - 0.3, max(xs) + 0.3)
            if len(set(xs)) <= 20:
                ax.set_xticks(sorted(set(xs)))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, path, {"kind": "line", "series": {k: len(v) for k, v in series.items()},
                            "scatter": {k: len(v[0]) for k, v in (points or {}).items()}})
