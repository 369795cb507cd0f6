"""Students side by side across devices: for each student x fitted predictor (device, backend, threads) the
predicted latency with its interval, the measured latency when that device is this machine, the speedup
against a reference student, params and FLOPs, and the task metric when one is known.

    >>> result = compare(resolve_students("bert-base,minilm-l6,tinybert-4l"), shape=Shape(1, 128))
    >>> result.rows[0].to_dict()["latency_ms"]

What ``kdnas-bench compare`` asks is a :class:`~.comparing.CompareRequest` and :func:`~.comparing.run_compare`
answers it (this module's :func:`compare` and the deployment matrix); the CLI only renders the
:class:`CompareResult`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import KdnasError, PredictorError
from ..models import count_params, flops
from ..profiling import device as device_mod
from ..profiling.backends import cpu_backends
from ..profiling.measure import measure_latency
from ..space import Arch, Shape
from .students import Student

CPU_BACKENDS = cpu_backends()
SEQS = (16, 32, 64, 128, 256)
DEFAULT_SHAPE = Shape(1, 128)


@dataclass
class CompareRow:
    student: str
    device_id: str
    backend: str
    threads: int
    latency_ms: float
    latency_ms_low: float
    latency_ms_high: float
    measured_ms: float | None
    speedup: float | None  # reference latency / this latency, same device (predicted; measured_speedup below)
    params: int
    flops: int
    arch: dict[str, int]
    seq: int
    batch: int
    out_of_range: bool
    metric: float | None = None
    metric_name: str | None = None
    measured_cv: float | None = None
    measured_speedup: float | None = None
    reference: str | None = None
    source: str = ""
    speed_factor: float | None = None  # --speed now: the predictions are at this machine's speed (factor × reference)
    speed_factor_rel_sd: float | None = None
    trivial: float | None = None  # the task's trivial score (a constant answer) of ``metric_name``, when recorded

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PredictorInfo:
    device_id: str
    backend: str
    threads: int
    label: str
    within_10pct: float | None
    transfer: bool
    local: bool  # this machine, a backend we can run here: measured


@dataclass
class CompareResult:
    rows: list[CompareRow]
    students: list[Student]
    predictors: list[PredictorInfo]
    shape: Shape
    reference: str
    this_device: str
    seq_sweep: dict[str, dict[str, list[tuple[int, float, float, float]]]] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict, repr=False)  # predictor label -> loaded Predictor
    measured: bool = True  # whether measuring was asked for
    matrix: list[Any] = field(default_factory=list)  # deployment matrix cells (compare --budget-ms), each with its budget
    matrix_budget: tuple[tuple[float, ...], float | None] | None = None  # (ms budgets, MiB or None)

    def to_dict(self) -> dict[str, Any]:
        return {"shape": {"batch": self.shape.batch, "seq": self.shape.seq}, "reference": self.reference,
                "this_device": self.this_device,
                "predictors": [asdict(p) for p in self.predictors], "rows": [r.to_dict() for r in self.rows]}


def speed_notes(result: CompareResult) -> list[str]:
    """With ``speed="now"``: for each predictor, the speed its predictions are at (one line each)."""
    notes = []
    for p in result.models.values():
        note = p.calibration.describe() if p.calibration else "at its reference speed (not calibrated: another " \
            "machine's predictor, or fitted on raw medians)"
        notes.append(f"{p.key}: {note}")
    return notes


def predictor_label(device_id: str, backend: str, threads: int) -> str:
    return f"{device_id} / {backend} / {threads}t"


def _load_predictors(root: Path | None, devices: list[str] | None) -> list[Any]:
    from ..predictors import registry  # noqa: PLC0415  lazy: pandas (via predictors.registry)

    listed = registry.list_predictors(root)
    if not listed:
        raise KdnasError(f"no fitted predictors in {root or 'the default predictors folder'}: run `kdnas-bench fit`")
    known = sorted({p["device_id"] for p in listed})
    if devices:
        unknown = [d for d in devices if d not in known]
        if unknown:
            raise KdnasError(f"no predictor for device {', '.join(unknown)} (have: {', '.join(known)})")
    out = []
    for p in listed:
        if devices and p["device_id"] not in devices:
            continue
        if p.get("error"):
            raise KdnasError(p["error"])
        out.append(registry.load_predictor(p["device_id"], p["backend"], p["threads"], root=root))
    return out


def compare(students: list[Student], *, shape: Shape = DEFAULT_SHAPE, devices: list[str] | None = None,
            reference: str | None = None, measure: bool = True, predictors_root: Path | None = None,
            seqs: tuple[int, ...] = SEQS, on_measure: Callable[[int, int, str, str], None] | None = None,
            speed: str = "reference") -> CompareResult:
    """Predict (and, on this machine, measure) every student on every fitted predictor.

    ``reference``: the student speedups are against (default: the teacher when a search run supplied one,
    else the first student). ``measure``: time the students on this machine's CPU backends (torch eager,
    ONNX Runtime) with the project's timing primitive; ``on_measure(done, total, student, predictor)`` is called
    before each measurement (for progress with an ETA). ``speed="now"``: this machine's predictors are calibrated
    to its speed now (the canary timed a few seconds; other devices' stay at their reference speed)."""
    if not students:
        raise KdnasError("no students to compare")
    names = [s.name for s in students]
    if reference is None:
        reference = "teacher" if "teacher" in names else names[0]
    elif reference not in names:
        raise KdnasError(f"reference {reference!r} is not among the students ({', '.join(names)})")
    this = device_mod.hardware(with_gpu=False).device_id
    preds = _load_predictors(predictors_root, devices)
    if speed == "now":
        preds = [_at_speed_now(p) if p.key.device_id == this and p.key.backend in CPU_BACKENDS else p for p in preds]
    rows: list[CompareRow] = []
    infos: list[PredictorInfo] = []
    sweep: dict[str, dict[str, list[tuple[int, float, float, float]]]] = {}
    n_local = sum(measure and p.key.device_id == this and p.key.backend in CPU_BACKENDS for p in preds)
    done = 0
    for p in preds:
        key = p.key
        local = measure and key.device_id == this and key.backend in CPU_BACKENDS
        held = (p.meta.get("metrics") or {}).get("heldout") or {}
        label = predictor_label(key.device_id, key.backend, key.threads)
        infos.append(PredictorInfo(key.device_id, key.backend, key.threads, label, held.get("within_10pct"),
                                   (p.meta.get("model") or {}).get("type") == "transfer", local))
        pred = p.predict_interval([(s.arch, shape) for s in students])
        low, mid, high = (np.asarray(v, dtype=float) for v in pred)
        oor = np.asarray(pred.out_of_range, dtype=bool)
        measured: dict[str, dict[str, Any]] = {}
        if local:
            for s in students:
                if on_measure:
                    on_measure(done, n_local * len(students), s.name, label)
                measured[s.name] = measure_latency(s.arch, shape, key.backend, key.threads)
                done += 1
        ref_i = names.index(reference)
        ref_meas = (measured.get(reference) or {}).get("measured_latency_ms")
        for i, s in enumerate(students):
            m = measured.get(s.name) or {}
            meas = m.get("measured_latency_ms")
            rows.append(CompareRow(
                student=s.name, device_id=key.device_id, backend=key.backend, threads=key.threads,
                latency_ms=float(mid[i]), latency_ms_low=float(low[i]), latency_ms_high=float(high[i]),
                measured_ms=meas, speedup=float(mid[ref_i] / mid[i]),
                params=count_params(s.arch), flops=flops(s.arch, shape).total, arch=s.arch.to_dict(),
                seq=shape.seq, batch=shape.batch, out_of_range=bool(oor[i]), metric=s.metric,
                metric_name=s.metric_name, measured_cv=m.get("measured_cv"),
                measured_speedup=(ref_meas / meas) if (ref_meas and meas) else None,
                reference=reference, source=s.source,
                speed_factor=p.calibration.factor if p.calibration else None,
                speed_factor_rel_sd=p.calibration.rel_sd if p.calibration else None, trivial=s.extra.get("trivial")))
        sweep[label] = seq_sweep(p, [s.arch for s in students], names, shape.batch, seqs)
    return CompareResult(rows, students, infos, shape, reference, this, sweep,
                         {predictor_label(p.key.device_id, p.key.backend, p.key.threads): p for p in preds}, measure)


def _at_speed_now(predictor: Any) -> Any:
    """This machine's predictor at its speed now; one fitted on raw medians (no canary reference) stays as it is."""
    try:
        return predictor.at_speed_now()
    except PredictorError:
        return predictor


def seq_sweep(predictor: Any, archs: list[Arch], names: list[str], batch: int,
              seqs: tuple[int, ...]) -> dict[str, list[tuple[int, float, float, float]]]:
    """Predicted (seq, low, mid, high) per student: the latency-vs-sequence-length curves."""
    configs = [(a, Shape(batch, s)) for a in archs for s in seqs]
    low, mid, high = (np.asarray(v, dtype=float) for v in predictor.predict_interval(configs))
    out: dict[str, list[tuple[int, float, float, float]]] = {}
    for i, name in enumerate(names):
        out[name] = [(s, float(low[i * len(seqs) + j]), float(mid[i * len(seqs) + j]), float(high[i * len(seqs) + j]))
                     for j, s in enumerate(seqs)]
    return out


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower x = latency, higher y = metric),
    sorted by x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best = -np.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front
