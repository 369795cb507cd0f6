"""Fit predictors from the profile store, save them, and load them back: the API the CLI and the search use.

    >>> from kdnas_bench.predictors import load_predictor
    >>> p = load_predictor("intel-xeon-processor-2c-cfff2f", "torch", 1)
    >>> low, mid, high = p.predict_interval(df_with_layers_hidden_heads_ffn_seq_batch)  # ms, numpy arrays
    >>> p.predict_interval([(Arch(4, 312, 12, 1200), Shape(1, 128))]).out_of_range     # array([False])
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import KdnasError
from ..paths import default_predictors, default_store
from .checks import ModelCheckError, check_model_text
from .drift import device_floor, normalise_rows
from .evaluate import coverage, holdout_split, metrics
from .features import CONFIG_KEYS, FEATURES, featurize
from .io import (
    MODEL_FILE,
    PredictorError,
    PredictorKey,
    fitted_keys,
    library_versions,
    predictor_dir,
    predictor_from_state,
    predictor_state,
    read_folder,
    resolve_key,
    rows_sha256,
    save_folder,
)
from .latency import LatencyPredictor, Prediction
from .memory import MIN_ROWS as MEMORY_MIN_ROWS
from .memory import MemoryModel, fit_memory, load_memory, memory_rows, save_memory
from .transfer import TransferPredictor, select_samples

RESIDUAL_FILE = "residual.txt"
MIN_ROWS = 10
# A row measured while other processes loaded the machine is slower than the same config on a quiet one
# (on the 2-core profiling VM: 5-8 % slower at load average 2-3.5 with one profiling thread). By default
# a predictor is fitted and evaluated on the rows whose load average before *and* after measuring was
# at most threads + LOAD_MARGIN, i.e. the profiler alone; the other rows are evaluated separately.
LOAD_MARGIN = 0.75
MIN_QUIET_ROWS = 100


@dataclass
class Predictor:
    """A loaded predictor: its key, its metadata and the model (from scratch or transferred)."""

    key: PredictorKey
    meta: dict[str, Any]
    model: LatencyPredictor | TransferPredictor
    path: Path | None = None
    memory: dict[str, MemoryModel] | None = None  # memory.json: peak RSS and weight bytes (profiled with --memory)

    def predict_memory_mb(self, configs: Any) -> np.ndarray | None:
        """Predicted peak resident memory (MiB) of a forward pass per config; ``None`` without a memory model."""
        from .features import config_columns

        if not self.memory or "peak_rss_bytes" not in self.memory:
            return None
        return self.memory["peak_rss_bytes"].predict_mb(pd.DataFrame(config_columns(configs)))

    def predict(self, configs: Any) -> np.ndarray:
        return self.model.predict(configs)

    def predict_interval(self, configs: Any) -> Prediction:
        """Latencies in ms, vectorised: unpacks as ``low, mid, high``; ``.out_of_range`` flags configs
        outside the training ranges. ``configs``: a DataFrame or mapping of columns layers, hidden,
        heads, ffn, seq, batch; a list of such dicts; or a list of (Arch, Shape)."""
        return self.model.predict_interval(configs)

    def frame(self, configs: Any) -> pd.DataFrame:
        """One row per config, in input order: layers, hidden, heads, ffn, seq, batch, latency_ms,
        latency_ms_low, latency_ms_high, out_of_range (the ``kdnas-bench predict --json`` keys)."""
        from .features import config_columns, features_from_columns, out_of_range

        cols = config_columns(configs)
        x = features_from_columns(cols)
        mid = np.exp(self.model.log_predict_features(x))
        q = self.model.q_
        out = pd.DataFrame({k: cols[k] for k in CONFIG_KEYS})
        out["latency_ms"] = mid
        out["latency_ms_low"] = mid * np.exp(-q)
        out["latency_ms_high"] = mid * np.exp(q)
        out["out_of_range"] = out_of_range(x, self.model.ranges_)
        if self.memory:
            out["peak_mb"] = self.memory["peak_rss_bytes"].predict_mb(out)
            out["weight_mb"] = self.memory["weight_bytes"].predict_mb(out)
        return out

    def records(self, configs: Any) -> list[dict[str, Any]]:
        """:meth:`frame` as a list of plain dicts."""
        f = self.frame(configs)
        return [{str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in f.to_dict("records")]


# -- reading profile rows -------------------------------------------------------------------------
def load_rows(device_id: str, backend: str, threads: int, store: Path | None = None) -> pd.DataFrame:
    """The ``ok`` rows of one dataset (a PredictorError listing the datasets if there is none)."""
    from ..profiling.store import ProfileStore

    ps = ProfileStore(store or default_store())
    found = ps.find(device_id, backend, threads)
    if not found:
        have = ", ".join(f"{d.key.device_id} {d.key.backend} t{d.key.threads}" for d in ps.datasets()) or "none"
        raise PredictorError(f"no profile dataset for {device_id} {backend} t{threads} in {ps.root} (have: {have})")
    df = found[0].read()
    df = df[(df["status"] == "ok") & np.isfinite(df["median_ms"]) & (df["median_ms"] > 0)]
    return df.reset_index(drop=True)


def quiet_mask(df: pd.DataFrame, max_load: float | None) -> np.ndarray:
    """Rows measured with a load average (before and after) of at most ``max_load`` (``None``: all rows)."""
    if max_load is None or "load_before" not in df:
        return np.ones(len(df), dtype=bool)
    load = np.fmax(df["load_before"].to_numpy(np.float64), df["load_after"].to_numpy(np.float64))
    return ~(load > max_load)  # a row without a load reading counts as quiet


def select_rows(all_rows: pd.DataFrame, threads: int, max_load: float | str | None = "auto"
                ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(rows to fit on, loaded rows left out, a summary for the metadata). ``max_load="auto"`` is
    threads + 0.75; ``None`` keeps every row; with fewer than 100 quiet rows, every row is kept."""
    limit = threads + LOAD_MARGIN if max_load == "auto" else (None if max_load is None else float(max_load))
    quiet = quiet_mask(all_rows, limit)
    found = int(quiet.sum())
    rule = "load average before and after the row <= max_load" if limit is not None else "all rows (as asked)"
    if limit is not None and found < min(MIN_QUIET_ROWS, len(all_rows)):
        rule = f"all rows: only {found} were measured at load average <= {limit:.2f}, fewer than {MIN_QUIET_ROWS}"
        limit, quiet = None, np.ones(len(all_rows), dtype=bool)
    selection = {"max_load": limit, "rows_total": len(all_rows), "rows_quiet": int(quiet.sum()),
                 "rows_loaded": int((~quiet).sum()), "quiet_rows_found": found, "rule": rule}
    return all_rows[quiet].reset_index(drop=True), all_rows[~quiet].reset_index(drop=True), selection


def _display_path(path: Path) -> str:
    """``path`` relative to the checkout when it is inside it (so committed metadata has no home dirs)."""
    from ..paths import project_root

    root = project_root()
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


# -- fitting --------------------------------------------------------------------------------------
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
    threads + 0.75; ``None``: every row). If fewer than 100 rows qualify, every row is used.

    ``drift="canary"``: rows measured with the canary are drift-normalised (latency at the dataset's
    reference canary speed, see :mod:`kdnas_bench.profiling.canary`); ``"none"`` fits the raw medians.
    ``reference_ms``: that reference (default: the median canary of the rows fitted)."""
    store = Path(store or default_store())
    out = Path(out or default_predictors())
    key = PredictorKey(device_id, backend, int(threads))
    all_rows = load_rows(device_id, backend, threads, store)
    df, loaded, selection = select_rows(all_rows, threads, max_load)
    df, loaded, drift_info = normalise_rows(df, loaded, drift, reference_ms)
    if from_key is None:
        if samples is not None and samples < len(df):
            df = df.iloc[np.sort(np.random.default_rng(seed).choice(len(df), samples, replace=False))]
            df = df.reset_index(drop=True)
        model, info = fit_scratch(df, params=params, seed=seed, loaded=loaded)
        text, state = predictor_state(model)
        meta = {**_base_meta(key, df, store), "model": {"type": "scratch", **state}, **info, "transfer": None}
        files = {MODEL_FILE: text}
    else:
        src = load_predictor(from_key.device_id, from_key.backend, from_key.threads, root=source_root or out)
        if not isinstance(src.model, LatencyPredictor):
            raise PredictorError(f"the source predictor {from_key} is itself a transfer; transfer from a "
                                 "predictor fitted from scratch")
        if samples is None:
            raise PredictorError("--from-device needs --samples K (the rows of the new device to fit on)")
        model_t, info, used = fit_transfer(src.model, df, samples, seed=seed, method=method)
        text, state = predictor_state(src.model)
        used_df = df.iloc[used]
        meta = {**_base_meta(key, used_df, store), "model": {"type": "transfer", **state}, **info}
        meta["transfer"] = {
            "source": {"device_id": from_key.device_id, "backend": from_key.backend, "threads": from_key.threads,
                       "rows": src.meta.get("rows"), "rows_sha256": (src.meta.get("data") or {}).get("rows_sha256")},
            "samples": int(samples), "method": model_t.method_, "a": model_t.a_, "b": model_t.b_,
            "base_coef": [float(v) for v in model_t.coef_], "prior": model_t.prior_,
            "log_halfwidth": model_t.q_, "selection": "one row per stratum of the source's predicted latency",
        }
        files = {MODEL_FILE: text}
        if model_t.booster_ is not None:
            files[RESIDUAL_FILE] = model_t.booster_.model_to_string()
    meta["data"]["selection"] = selection
    meta["drift"] = drift_info
    mem = fit_memory_if_measured(all_rows, seed)
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
    import json

    from .io import META_FILE

    out = Path(out or default_predictors())
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
    Every such row is used: memory does not depend on the machine's load."""
    if len(memory_rows(rows)) < MEMORY_MIN_ROWS:
        return None
    return fit_memory(rows, seed=seed)


# -- loading --------------------------------------------------------------------------------------
def load_folder(folder: Path) -> Predictor:
    folder = Path(folder)
    files, meta = read_folder(folder)
    try:
        key = PredictorKey(str(meta["device_id"]), str(meta["backend"]), int(meta["threads"]))
        state = meta["model"]
        kind = state["type"]
    except (KeyError, TypeError, ValueError) as exc:
        raise PredictorError(f"corrupt predictor metadata {folder}: missing {exc}") from None
    base = predictor_from_state(files[MODEL_FILE], state, str(folder))
    try:
        memory = load_memory(folder)
    except KdnasError as exc:
        raise PredictorError(str(exc)) from None
    if kind == "scratch":
        return Predictor(key, meta, base, folder, memory)
    if kind != "transfer":
        raise PredictorError(f"corrupt predictor metadata {folder}: unknown model type {kind!r}")
    try:
        t = meta["transfer"]
        model = TransferPredictor(base, method=str(t["method"]), prior=float(t["prior"] or 0.0),
                                  seed=int(meta["evaluation"]["seed"]))
        model.method_, model.a_, model.b_ = str(t["method"]), float(t["a"]), float(t["b"])
        model.prior_ = None if t["prior"] is None else float(t["prior"])
        model.coef_ = np.asarray(t["base_coef"], dtype=np.float64)
        if model.coef_.shape != base.coef_.shape:
            raise ValueError(f"{len(model.coef_)} coefficients for {len(base.coef_)} base terms")
        model.q_ = float(t["log_halfwidth"]) if t["log_halfwidth"] is not None else float("inf")
        model.ranges_, model.n_rows_ = base.ranges_, int(t["samples"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PredictorError(f"corrupt predictor metadata {folder}: transfer {exc}") from None
    model.booster_ = None
    if RESIDUAL_FILE in files:
        import lightgbm as lgb

        try:
            check_model_text(files[RESIDUAL_FILE], str(folder / RESIDUAL_FILE), n_features=len(FEATURES))
            model.booster_ = lgb.Booster(model_str=files[RESIDUAL_FILE])
        except ModelCheckError as exc:
            raise PredictorError(str(exc)) from None
        except Exception as exc:
            raise PredictorError(f"corrupt predictor model {folder / RESIDUAL_FILE}: {str(exc)[:200]}") from None
    return Predictor(key, meta, model, folder, memory)


def load_predictor(device_id: str, backend: str | None = None, threads: int | None = None,
                   root: Path | str | None = None) -> Predictor:
    """The fitted predictor for a device (backend / threads may be left out when only one matches)."""
    root = Path(root or default_predictors())
    key = resolve_key(root, device_id, backend, threads)
    return load_folder(predictor_dir(root, key))


def known_devices(root: Path | str | None = None) -> list[str]:
    from .io import known_devices as _known

    return _known(Path(root or default_predictors()))


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
        mem = ((meta.get("memory") or {}).get("peak_rss_bytes") or {}).get("heldout")
        entry["memory_within_10pct"] = mem.get("within_10pct") if mem else None  # the memory model, held-out archs
        out.append(entry)
    return out
