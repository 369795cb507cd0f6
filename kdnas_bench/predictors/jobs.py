"""The predictor verbs as library calls, each on its typed request (:mod:`.requests`): :func:`run_fit` (``fit``),
:func:`run_predict` (``predict``) and :func:`list_predictor_entries` (``predictors``). They report through
``on_event(kind, data)`` (as :func:`kdnas_bench.search.run_search` does) and return plain results; the command line
only renders them.

    >>> fitted = run_fit(FitRequest("my-device", store="profiles", out="/tmp/preds"))
    >>> fitted.meta["metrics"]["heldout"]["within_10pct"]
    >>> run_predict(PredictRequest("my-device", archs=(Arch(4, 312, 12, 1200),), predictors="/tmp/preds")).frame
    >>> [e["speed_now"]["available"] for e in list_predictor_entries(PredictorsRequest(predictors="/tmp/preds"))]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import KdnasError
from ..filechecks import read_configs_file
from ..keys import DatasetKey
from ..paths import default_predictors
from ..profiling.requests import EventFn, no_events
from ..validate import check_writable
from .calibrate import reference_of
from .files import META_FILE
from .fitting import fit_and_save, fit_memory_only
from .io import PredictorKey
from .lookup import Predictor, list_predictors, load_predictor, predictor_dir
from .requests import FitRequest, PredictorsRequest, PredictRequest

RANGE_KEYS = ("layers", "hidden", "heads", "ffn", "seq", "batch", "tokens")


@dataclass(frozen=True)
class FitResult:
    """A fitted predictor: its ``folder`` and the ``meta`` written (``memory_only``: the memory models only)."""

    folder: Path
    meta: dict[str, Any]
    source: PredictorKey | None = None
    memory_only: bool = False

    def to_json(self) -> dict[str, Any]:
        """What ``fit --json`` prints."""
        return {**self.meta, "path": str(self.folder)}


def _check_out(req: FitRequest) -> PredictorKey | None:
    """The transfer's source key; refuses a source that is the dataset being fitted in the same folder, and an
    output folder that cannot be written."""
    source = PredictorKey(*req.source) if req.source is not None else None
    if source is not None:
        target = req.out or default_predictors(writable=True)
        same_root = Path(req.source_root or target).resolve() == Path(target).resolve()
        if source == PredictorKey(req.device_id, req.backend, req.threads) and same_root:
            # recalibrating a predictor to fresh rows of its own device is fine, but not in place
            raise KdnasError("--from-device/--from-backend/--from-threads name the dataset being fitted "
                             "(to recalibrate it on fresh rows, write to another --out)")
    check_writable("--out", req.out or default_predictors(writable=True))
    return source


def run_fit(req: FitRequest, on_event: EventFn | None = None) -> FitResult:
    """Fit the predictor ``req`` names (held-out split, 5-fold CV, final fit) and save it. Events: ``fitting``
    before the fit and ``fitted`` after it (not with ``memory_only``, which is quick)."""
    emit = on_event or no_events
    source = _check_out(req)
    store, out = Path(req.store) if req.store else None, Path(req.out) if req.out else None
    if req.memory_only:
        folder, mem = fit_memory_only(req.device_id, req.backend, req.threads, store=store, out=out, seed=req.seed)
        return FitResult(folder, mem, None, memory_only=True)
    emit("fitting", {})
    try:
        folder, meta = fit_and_save(
            req.device_id, req.backend, req.threads, store=store, out=out, from_key=source, samples=req.samples,
            source_root=Path(req.source_root) if req.source_root else None, seed=req.seed, max_load=req.load_limit,
            method=req.transfer_method, drift=req.drift, reference_ms=req.reference_ms,
        )
    finally:
        emit("fitted", {})
    return FitResult(folder, meta, source)


@dataclass(frozen=True)
class PredictResult:
    """Predictions, one row per config in input order (``frame``: the ``predict --json`` keys), and the
    ``predictor`` that made them (calibrated with ``speed="now"``)."""

    frame: pd.DataFrame
    predictor: Predictor

    @property
    def out_of_range(self) -> int:
        return int(self.frame["out_of_range"].sum())


def run_predict(req: PredictRequest, on_event: EventFn | None = None) -> PredictResult:
    """Predict the latency of ``req``'s configs. Events: with ``speed="now"``, ``calibrating`` before the canary is
    timed and ``calibrated`` (``calibration``) after; ``out_of_range`` (``count``, ``total``, ``ranges``: the
    training range of each of :data:`RANGE_KEYS`) when some configs lie outside the training ranges."""
    emit = on_event or no_events
    configs: list[Any] = req.arch_configs() if req.archs else read_configs_file(Path(str(req.configs)))
    predictor = load_predictor(req.device_id, req.backend, req.threads,
                               root=Path(req.predictors) if req.predictors else None)
    if req.speed == "now":
        emit("calibrating", {})
        try:
            predictor = predictor.at_speed_now()
        finally:
            emit("calibrating_done", {})
        emit("calibrated", {"calibration": predictor.calibration})
    result = PredictResult(predictor.frame(configs), predictor)
    if result.out_of_range:
        ranges = predictor.model.ranges_
        emit("out_of_range", {"count": result.out_of_range, "total": len(result.frame),
                              "ranges": {k: (int(ranges[k][0]), int(ranges[k][1])) for k in RANGE_KEYS}})
    return result


def speed_now_status(key: DatasetKey, meta: dict[str, Any] | None, error: str | None = None) -> dict[str, Any]:
    """Whether a predictor can answer ``--speed now`` (``available``), why (``reason``) and, when it cannot, what to
    run on its machine for one that can (``run``: the commands, in order)."""
    if meta is None:
        return {"available": False, "reason": f"the predictor cannot be read: {error}", "run": None}
    try:
        ref = reference_of(meta, "it")
    except KdnasError as exc:
        where = f"--backend {key.backend} --threads {key.threads}"
        return {"available": False, "reason": str(exc).removeprefix("it was ").split(";")[0],
                "run": [f"kdnas-bench profile {where}", f"kdnas-bench fit --device {key.device_id} {where}"]}
    return {"available": True, "reason": f"fitted on canary-normalised rows (reference canary {ref:.3f} ms); "
            f"on {key.device_id} only", "run": None}


def _meta(folder: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return meta if isinstance(meta, dict) else None


def list_predictor_entries(req: PredictorsRequest) -> list[dict[str, Any]]:
    """Every fitted predictor (:func:`~kdnas_bench.predictors.lookup.list_predictors`), each with ``speed_now``
    (:func:`speed_now_status`)."""
    root = Path(req.predictors) if req.predictors else None
    entries = list_predictors(root, Path(req.store) if req.store else None)
    for e in entries:
        key = DatasetKey(e["device_id"], e["backend"], e["threads"])
        meta = None if e.get("error") else _meta(predictor_dir(root or default_predictors(), key))
        e["speed_now"] = speed_now_status(key, meta, e.get("error") or "its meta.json cannot be read")
    return entries
