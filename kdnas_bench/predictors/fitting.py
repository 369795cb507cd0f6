"""Fitting a predictor: from scratch (held-out split, k-fold CV, final fit) or by few-shot transfer, with the
metadata that goes beside it; :func:`fit_and_save` fits one profile dataset and writes its folder."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import paths
from ..errors import KdnasError, PredictorError
from ..keys import DatasetKey
from ..paths import default_predictors, default_store
from ..profiling.canary import newest_protocol, protocols
from .drift import normalise_rows
from .evaluate import coverage, holdout_split, metrics
from .features import featurize
from .files import META_FILE
from .identity import machine_meta
from .io import library_versions, read_folder, rows_sha256, save_folder
from .latency import LatencyPredictor
from .lookup import load_predictor, predictor_dir
from .memory import MIN_ROWS as MEMORY_MIN_ROWS
from .memory import MemoryModel, fit_memory, memory_rows, save_memory
from .rows import load_rows, select_rows
from .transfer import TransferPredictor, select_samples

MIN_ROWS = 10
PredictorKey = DatasetKey


def _display_path(path: Path) -> str:
    """``path`` relative to the checkout when it is inside it (so committed metadata has no home dirs)."""
    root = paths.project_root()
    try:
        return str(Path(path).resolve().relative_to(root)) if root is not None else str(path)
    except ValueError:
        return str(path)


def _base_meta(key: PredictorKey, df: pd.DataFrame, store: Path) -> dict[str, Any]:
    return {
        "device_id": key.device_id,
        "backend": key.backend,
        "threads": key.threads,
        "rows": len(df),
        "data": {
            "store": _display_path(store),
            "rows_sha256": rows_sha256(df["row_id"], df["median_ms_raw"] if "median_ms_raw" in df else df["median_ms"]),
            "first_timestamp": str(df["timestamp"].min()) if "timestamp" in df else None,
            "last_timestamp": str(df["timestamp"].max()) if "timestamp" in df else None,
            "noisy_rows": int(df["noisy"].fillna(False).sum()) if "noisy" in df else None,
            "median_cv": float(df["cv"].median()) if "cv" in df else None,
        },
        "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": library_versions(),
    }


def _interval_meta(alpha: float, q: float, cov_heldout: float | None, cov_cv: float | None) -> dict[str, Any]:
    return {"method": "split-conformal on out-of-fold |log residual|", "alpha": alpha, "nominal": 1 - alpha,
            "log_halfwidth": q, "factor": float(np.exp(q)), "coverage_heldout": cov_heldout, "coverage_cv": cov_cv}


def fit_scratch(df: pd.DataFrame, *, params: dict[str, Any] | None = None, holdout: float = 0.2,
                seed: int = 0, loaded: pd.DataFrame | None = None) -> tuple[LatencyPredictor, dict[str, Any]]:
    """Held-out evaluation (train on 1 - ``holdout``), then the final fit on every row with k-fold CV.
    ``loaded`` rows (excluded from fitting) are predicted by the held-out model and reported apart.
    Returns the final predictor and its ``metrics`` / ``interval`` metadata."""
    if len(df) < MIN_ROWS:
        raise PredictorError(f"need at least {MIN_ROWS} ok profile rows to fit, have {len(df)}")
    proto = LatencyPredictor(**(params or {}), seed=seed)
    y = df["median_ms"].to_numpy(np.float64)
    train, test = holdout_split(len(df), holdout, seed)
    held = proto.clone().fit(df.iloc[train], y[train])
    pi = held.predict_interval(df.iloc[test])
    m_held = metrics(y[test], pi.mid)
    cov_held = coverage(y[test], pi.low, pi.high)
    final = proto.clone().fit(df, y)
    m_cv = metrics(y, final.oof_ms_)
    cov_cv = coverage(y, final.oof_ms_ * np.exp(-final.q_), final.oof_ms_ * np.exp(final.q_))
    m_held["interval_coverage"] = cov_held
    m_cv["interval_coverage"] = cov_cv
    m_loaded = None
    if loaded is not None and len(loaded):
        yl = loaded["median_ms"].to_numpy(np.float64)
        pl = held.predict_interval(loaded)
        m_loaded = {**metrics(yl, pl.mid), "interval_coverage": coverage(yl, pl.low, pl.high),
                    "median_ratio": float(np.median(yl / pl.mid))}
    info = {
        "metrics": {"heldout": m_held, "cv": m_cv, "loaded_rows": m_loaded},
        "evaluation": {"holdout_fraction": holdout, "heldout_rows": len(test), "cv_folds": proto.cv_folds,
                       "seed": seed},
        "interval": _interval_meta(final.alpha, final.q_, cov_held, cov_cv),
    }
    return final, info


def fit_transfer(source: LatencyPredictor, df: pd.DataFrame, samples: int, *, seed: int = 0,
                 method: str = "rebase") -> tuple[TransferPredictor, dict[str, Any], np.ndarray]:
    """Fit on ``samples`` rows of ``df`` (spread over the source's predicted range); the other rows are
    the held-out set. Returns the predictor, its metadata and the indices used."""
    if samples < 1:
        raise PredictorError(f"--samples must be positive, got {samples}")
    if samples > len(df):
        raise PredictorError(f"--samples {samples} but the target dataset has only {len(df)} ok rows")
    y = df["median_ms"].to_numpy(np.float64)
    used = select_samples(source, featurize(df), samples, seed)
    rest = np.setdiff1d(np.arange(len(df)), used)
    model = TransferPredictor(source, method=method, seed=seed).fit(df.iloc[used], y[used])
    m_cv = metrics(y[used], model.oof_ms_) if samples >= 2 else None
    if m_cv is not None:
        m_cv["interval_coverage"] = coverage(y[used], model.oof_ms_ * np.exp(-model.q_),
                                             model.oof_ms_ * np.exp(model.q_))
    m_held = None
    if len(rest):
        pi = model.predict_interval(df.iloc[rest])
        m_held = metrics(y[rest], pi.mid)
        m_held["interval_coverage"] = coverage(y[rest], pi.low, pi.high)
    info = {
        "metrics": {"heldout": m_held, "cv": m_cv},
        "evaluation": {"heldout_rows": len(rest), "cv": "leave-one-out up to 20 rows, else 10-fold",
                       "seed": seed},
        "interval": _interval_meta(model.alpha, model.q_, m_held["interval_coverage"] if m_held else None,
                                   m_cv["interval_coverage"] if m_cv else None),
    }
    return model, info, used


def fit_and_save(device_id: str, backend: str, threads: int = 1, *, store: Path | None = None,
                 out: Path | None = None, from_key: PredictorKey | None = None, samples: int | None = None,
                 source_root: Path | None = None, params: dict[str, Any] | None = None, seed: int = 0,
                 max_load: float | str | None = "auto", method: str = "rebase", drift: str = "canary",
                 reference_ms: float | None = None) -> tuple[Path, dict[str, Any]]:
    """Fit one dataset (from scratch, or by transfer from ``from_key`` with ``samples`` rows) and write
    it to ``out/<device>/<backend>-t<threads>/``. Returns the folder and the metadata written.

    ``max_load``: fit and evaluate on rows measured at a load average of at most this (``"auto"``:
    threads + 0.75, GPU backends host cores - 1; ``None``: every row). If fewer than 100 rows qualify, every row is used.

    ``drift="canary"``: rows measured with the canary are drift-normalised (latency at the dataset's
    reference canary speed, see :mod:`kdnas_bench.profiling.canary`); ``"none"`` fits the raw medians.
    ``reference_ms``: that reference (default: the median canary of the rows fitted)."""
    store = Path(store or default_store())
    out = Path(out or default_predictors(writable=True))
    key = PredictorKey(device_id, backend, int(threads))
    stored = load_rows(device_id, backend, threads, store)
    all_rows, other_protocols = newest_protocol(stored)  # never mix canary protocols in one fit
    df, loaded, selection = select_rows(all_rows, threads, max_load)
    df, loaded, drift_info = normalise_rows(df, loaded, drift, reference_ms)
    if from_key is None:
        if samples is not None and samples < len(df):
            df = df.iloc[np.sort(np.random.default_rng(seed).choice(len(df), samples, replace=False))]
            df = df.reset_index(drop=True)
        model, info = fit_scratch(df, params=params, seed=seed, loaded=loaded)
        files, state = model.to_state()
        meta = {**_base_meta(key, df, store), "model": {"type": "scratch", **state}, **info, "transfer": None}
    else:
        src = load_predictor(from_key.device_id, from_key.backend, from_key.threads, root=source_root or out)
        if not isinstance(src.model, LatencyPredictor):
            raise PredictorError(f"the source predictor {from_key} is itself a transfer; transfer from a "
                                 "predictor fitted from scratch")
        if samples is None:
            raise PredictorError("--from-device needs --samples K (the rows of the new device to fit on)")
        model_t, info, used = fit_transfer(src.model, df, samples, seed=seed, method=method)
        files, state = src.model.to_state()
        t_files, t_state = model_t.to_state()
        meta = {**_base_meta(key, df.iloc[used], store), "model": {"type": "transfer", **state}, **info}
        meta["transfer"] = {
            "source": {"device_id": from_key.device_id, "backend": from_key.backend, "threads": from_key.threads,
                       "rows": src.meta.get("rows"), "rows_sha256": (src.meta.get("data") or {}).get("rows_sha256")},
            "samples": int(samples), **t_state,
            "selection": "one row per stratum of the source's predicted latency",
        }
        files |= t_files
    meta["data"]["selection"] = selection
    if other_protocols:
        meta["data"]["protocol"] = {
            "interleave": str(protocols(all_rows)[0]), "rows_left_out": other_protocols,
            "rule": "only the rows timed with the canary protocol of the dataset's newest row"}
    meta["drift"] = drift_info
    meta["machine"] = machine_meta(all_rows, drift_info.get("reference_canary_ms"))
    try:
        mem = fit_memory_if_measured(stored, seed)  # memory does not depend on the canary: every row
    except KdnasError as exc:  # too few rows of the newest memory method: the latency fit goes on
        mem = None
        meta["memory_note"] = f"no memory model fitted: {exc}"
    if mem:
        meta["memory"] = {t: m.metrics for t, m in mem.items()}
    folder = save_folder(predictor_dir(out, key), files, meta)
    if mem:
        save_memory(folder, mem, {"device_id": device_id, "backend": backend, "threads": int(threads)})
    return folder, meta


def fit_memory_only(device_id: str, backend: str, threads: int = 1, *, store: Path | None = None,
                    out: Path | None = None, seed: int = 0) -> tuple[Path, dict[str, Any]]:
    """Fit the memory model of an existing predictor (``memory.json`` and the ``memory`` entry of its
    ``meta.json``) from the rows that carry memory; its latency model is left as it is."""
    out = Path(out or default_predictors(writable=True))
    key = PredictorKey(device_id, backend, int(threads))
    folder = predictor_dir(out, key)
    _, meta = read_folder(folder)  # an existing, valid predictor
    mem = fit_memory_if_measured(load_rows(device_id, backend, threads, Path(store or default_store())), seed)
    if not mem:
        raise PredictorError(f"no rows of {key} carry memory (at least {MEMORY_MIN_ROWS} needed): profile with --memory")
    save_memory(folder, mem, {"device_id": device_id, "backend": backend, "threads": int(threads)})
    meta["memory"] = {t: m.metrics for t, m in mem.items()}
    path = folder / META_FILE
    tmp = folder / f".{META_FILE}.tmp"
    tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return folder, meta["memory"]


def fit_memory_if_measured(rows: pd.DataFrame, seed: int = 0) -> dict[str, MemoryModel] | None:
    """The memory models of a dataset whose rows carry memory (profiled with ``--memory``), else ``None``.
    Every row of the newest memory method is used (memory does not depend on the machine's load); a
    :class:`KdnasError` when there would be enough rows only by mixing methods."""
    if len(memory_rows(rows)) < MEMORY_MIN_ROWS:
        return None
    return fit_memory(rows, seed=seed)
