"""Finding and loading fitted predictors: the folders under a predictors root, one per (device, backend,
threads), and :class:`Predictor`, a loaded one with its metadata."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import KdnasError, PredictorError, did_you_mean
from ..keys import DatasetKey
from ..paths import default_predictors
from . import calibrate as calibrate_mod
from .calibrate import Calibration, apply
from .drift import device_floor
from .features import CONFIG_KEYS, config_columns, features_from_columns
from .files import META_FILE
from .identity import fingerprint_warning, warn_once
from .io import read_folder
from .latency import LatencyPredictor, Prediction, interval
from .memory import MemoryModel, load_memory
from .transfer import TransferPredictor

PredictorKey = DatasetKey
SPEEDS = ("reference", "now")  # what `--speed` takes: the profile's reference speed, or this machine's now


@dataclass
class Predictor:
    """A loaded predictor: its key, its metadata and the model (from scratch or transferred)."""

    key: PredictorKey
    meta: dict[str, Any]
    model: LatencyPredictor | TransferPredictor
    path: Path | None = None
    memory: dict[str, MemoryModel] | None = None  # memory.json: peak RSS and weight bytes (profiled with --memory)
    calibration: Calibration | None = None  # set: latencies at the machine's speed when it was measured

    def with_calibration(self, calibration: Calibration | None) -> Predictor:
        """This predictor with its latencies scaled by ``calibration`` (``None``: at the reference speed)."""
        return replace(self, calibration=calibration)

    def at_speed_now(self, seconds: float | None = None, bursts: int | None = None) -> Predictor:
        """This predictor calibrated to this machine's speed now: the canary is timed for ``seconds`` (default
        3) in ``bursts`` and the latencies scaled by canary_now / reference (see :mod:`.calibrate`)."""
        return self.with_calibration(calibrate_mod.measure_calibration(self, seconds=seconds, bursts=bursts))

    @property
    def memory_method(self) -> int | None:
        """The memory-measuring method of the rows the memory model was fitted on (``None``: no model)."""
        return next(iter(self.memory.values())).method if self.memory else None

    def predict_memory_mb(self, configs: Any) -> np.ndarray | None:
        """Predicted peak resident memory (MiB) of a forward pass per config; ``None`` without a memory model."""
        if not self.memory or "peak_rss_bytes" not in self.memory:
            return None
        return self.memory["peak_rss_bytes"].predict_mb(pd.DataFrame(config_columns(configs)))

    def predict(self, configs: Any) -> np.ndarray:
        mid = self.model.predict(configs)
        return mid * self.calibration.factor if self.calibration is not None else mid

    def predict_interval(self, configs: Any) -> Prediction:
        """Latencies in ms, vectorised: unpacks as ``low, mid, high``; ``.out_of_range`` flags configs
        outside the training ranges. ``configs``: a DataFrame or mapping of columns layers, hidden,
        heads, ffn, seq, batch; a list of such dicts; or a list of (Arch, Shape). Calibrated: at the
        measured speed, the interval widened by the factor's uncertainty."""
        return apply(self.model.predict_interval(configs), self.calibration)

    def frame(self, configs: Any) -> pd.DataFrame:
        """One row per config, in input order: layers, hidden, heads, ffn, seq, batch, latency_ms,
        latency_ms_low, latency_ms_high, out_of_range (the ``kdnas-bench predict --json`` keys)."""
        cols = config_columns(configs)
        pred = apply(interval(self.model, features_from_columns(cols)), self.calibration)
        out = pd.DataFrame({k: cols[k] for k in CONFIG_KEYS})
        out["latency_ms"], out["latency_ms_low"], out["latency_ms_high"] = pred.mid, pred.low, pred.high
        out["out_of_range"] = pred.out_of_range
        if self.calibration is not None:
            out["speed_factor"], out["speed_factor_rel_sd"] = self.calibration.factor, self.calibration.rel_sd
        if self.memory:
            out["peak_mb"] = self.memory["peak_rss_bytes"].predict_mb(out)
            out["weight_mb"] = self.memory["weight_bytes"].predict_mb(out)
            out["memory_method"] = self.memory_method
        return out


def predictor_dir(root: Path, key: PredictorKey) -> Path:
    return Path(root) / key.relpath


def fitted_keys(root: Path) -> list[PredictorKey]:
    """Every (device, backend, threads) with a ``meta.json`` under ``root``, sorted."""
    keys = []
    for meta in sorted(Path(root).glob(f"*/*-t*/{META_FILE}")):
        backend, _, threads = meta.parent.name.rpartition("-t")
        if backend and threads.isdigit():
            keys.append(PredictorKey(meta.parent.parent.name, backend, int(threads)))
    return keys


def resolve_key(root: Path, device_id: str, backend: str | None, threads: int | None) -> PredictorKey:
    """The one fitted predictor matching the request, or a PredictorError listing what exists."""
    keys = fitted_keys(root)
    if not keys:
        raise PredictorError(f"no fitted predictors in {root}; run `kdnas-bench fit --device ID --backend B`")
    devices = sorted({k.device_id for k in keys})
    if device_id not in devices:
        raise PredictorError(f"unknown device id '{device_id}'{did_you_mean(device_id, devices)} "
                             f"(known: {', '.join(devices)})")
    match = [k for k in keys if k.device_id == device_id and (backend is None or k.backend == backend)
             and (threads is None or k.threads == threads)]
    if len(match) == 1:
        return match[0]
    have = ", ".join(f"{k.backend} t{k.threads}" for k in keys if k.device_id == device_id)
    if not match:
        raise PredictorError(f"no predictor for {device_id} backend {backend or 'any'} threads "
                             f"{threads if threads is not None else 'any'} (fitted: {have}; pass --backend and "
                             "--threads of one of them)")
    raise PredictorError(f"several predictors for {device_id} ({have}); pass --backend and --threads")


def load_folder(folder: Path) -> Predictor:
    """The predictor in ``folder`` (from scratch, or a transfer on top of its source's state)."""
    folder = Path(folder)
    files, meta = read_folder(folder)
    try:
        key = PredictorKey(str(meta["device_id"]), str(meta["backend"]), int(meta["threads"]))
        state = meta["model"]
        kind = state["type"]
    except (KeyError, TypeError, ValueError) as exc:
        raise PredictorError(f"corrupt predictor metadata {folder}: missing {exc}") from None
    base = LatencyPredictor.from_state(files, state, str(folder))
    try:
        memory = load_memory(folder)
    except KdnasError as exc:
        raise PredictorError(str(exc)) from None
    if kind == "scratch":
        return Predictor(key, meta, base, folder, memory)
    if kind != "transfer":
        raise PredictorError(f"corrupt predictor metadata {folder}: unknown model type {kind!r}")
    try:
        seed = int(meta["evaluation"]["seed"])
        t_state = meta["transfer"]
    except (KeyError, TypeError, ValueError) as exc:
        raise PredictorError(f"corrupt predictor metadata {folder}: transfer {exc}") from None
    return Predictor(key, meta, TransferPredictor.from_state(base, files, t_state, seed=seed, where=str(folder)), folder,
                     memory)


def load_predictor(device_id: str, backend: str | None = None, threads: int | None = None,
                   root: Path | str | None = None, *, speed: str = "reference") -> Predictor:
    """The fitted predictor for a device (backend / threads may be left out when only one matches).
    ``speed="now"``: calibrated to this machine's speed now (:meth:`Predictor.at_speed_now`); ``"reference"``:
    at its profile's reference speed. Used on a machine with its device id but another CPU fingerprint, it
    warns once (:class:`~kdnas_bench.predictors.identity.MachineWarning`)."""
    if speed not in SPEEDS:
        raise PredictorError(f"unknown speed {speed!r} (choose from {', '.join(SPEEDS)})")
    root = Path(root or default_predictors())
    key = resolve_key(root, device_id, backend, threads)
    pred = load_folder(predictor_dir(root, key))
    warn_once(key, "fingerprint", fingerprint_warning(key, pred.meta))
    return pred.at_speed_now() if speed == "now" else pred


def list_predictors(root: Path | str | None = None, store: Path | str | None = None) -> list[dict[str, Any]]:
    """Summary of every fitted predictor (``kdnas-bench predictors --json``). Metrics are the held-out
    ones, shown beside the device's noise floor (``floor``, from the profile store); a predictor that
    cannot be read is listed with its ``error``."""
    root = Path(root or default_predictors())
    out = []
    for key in fitted_keys(root):
        entry: dict[str, Any] = {"device_id": key.device_id, "backend": key.backend, "threads": key.threads}
        try:
            _, meta = read_folder(predictor_dir(root, key))
        except PredictorError as exc:
            out.append({**entry, "rows": None, "metrics": None, "error": str(exc)})
            continue
        held = (meta.get("metrics") or {}).get("heldout") or {}
        entry["rows"] = meta.get("rows")
        entry["metrics"] = {k: held.get(k) for k in ("within_5pct", "within_10pct", "within_15pct", "mape", "rmspe",
                                                       "kendall_tau", "interval_coverage")}
        entry["heldout_rows"] = held.get("rows")
        entry["type"] = (meta.get("model") or {}).get("type")
        entry["transfer_from"] = (meta.get("transfer") or {}).get("source")
        entry["interval_factor"] = (meta.get("interval") or {}).get("factor")
        entry["fitted_at"] = meta.get("fitted_at")
        entry["drift"] = (meta.get("drift") or {}).get("mode", "none")
        entry["floor"] = device_floor(key, store)
        peak = (meta.get("memory") or {}).get("peak_rss_bytes") or {}
        mem = peak.get("heldout")
        entry["memory_within_10pct"] = mem.get("within_10pct") if mem else None  # the memory model, held-out archs
        entry["memory_method"] = peak.get("method", 1) if mem else None  # fitted before methods were recorded: 1
        out.append(entry)
    return out
