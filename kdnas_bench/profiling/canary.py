"""The canary: a small fixed config timed interleaved with every profiled config (GUIDE §2 rule 9).

A shared VM's speed drifts by ±20 % over seconds, invisibly to load average and steal time. The drift
is common to whatever runs in the same seconds, so each row stores the canary's median measured
interleaved with it, and ``ratio = median_ms / canary_ms`` is what transfers across minutes. A
predictor learns the *drift-normalised* latency ``ratio × reference`` (``reference``: the median canary
time over the dataset, stored in the predictor's metadata), i.e. the latency at the device's reference
speed.

Torch-free: the predictors import :func:`normalise` and :func:`drift_summary`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..space import Arch, Shape

CANARY_ARCH = Arch(2, 256, 4, 1024)
CANARY_SHAPE = Shape(1, 32)
CANARY = {**CANARY_ARCH.to_dict(), "batch": CANARY_SHAPE.batch, "seq": CANARY_SHAPE.seq}
# a row is flagged when the canary's median moved by more than this between the row's two halves,
# or when the canary itself was noisy (IQR / median above FLAG_IQR)
FLAG_SHIFT = 0.05
FLAG_IQR = 0.15


def flag(canary_shift: float, canary_iqr_ratio: float) -> bool:
    return abs(canary_shift) > FLAG_SHIFT or canary_iqr_ratio > FLAG_IQR


def has_canary(df: pd.DataFrame) -> np.ndarray:
    if "canary_ms" not in df:
        return np.zeros(len(df), dtype=bool)
    c = pd.to_numeric(df["canary_ms"], errors="coerce").to_numpy(np.float64)
    return np.isfinite(c) & (c > 0)


def protocols(df: pd.DataFrame) -> np.ndarray:
    """How each row's canary was interleaved: ``"burst"``, ``"call"``, ``"chunk"``, ``"unrecorded"`` (a canary
    time without its mode) or ``"none"`` (no canary)."""
    timed = has_canary(df)
    mode = df["interleave"].astype(object).to_numpy() if "interleave" in df else np.full(len(df), None, dtype=object)
    return np.where(timed & pd.notna(mode), mode, np.where(timed, "unrecorded", "none")).astype(str)


def newest_protocol(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The rows timed with the canary protocol of the dataset's newest row, and the count of the rows left out
    per other protocol (empty when every row shares one). A canary timed call by call runs on caches the row
    has just evicted and a burst canary does not, so their canary times, and the medians normalised by them,
    differ with the row's size (up to 1.5×): one predictor must not learn from both. Re-profiling a dataset
    with the current protocol thus supersedes its older rows for fitting, without deleting them."""
    if not len(df):
        return df, {}
    modes = protocols(df)
    stamps = pd.to_datetime(df["timestamp"], utc=True).reset_index(drop=True) if "timestamp" in df else None
    has_stamps = stamps is not None and bool(stamps.notna().any())
    newest = int(stamps.fillna(stamps.min()).to_numpy().argmax()) if stamps is not None and has_stamps else len(df) - 1
    keep = modes == modes[newest]
    if keep.all():
        return df, {}
    left = pd.Series(modes[~keep]).value_counts()
    return df[keep].reset_index(drop=True), {str(k): int(v) for k, v in left.items()}


def reference_ms(df: pd.DataFrame) -> float | None:
    """The device's reference canary time: the median canary over the rows (``None`` without canary)."""
    mask = has_canary(df)
    if not mask.any():
        return None
    return float(np.median(df.loc[mask, "canary_ms"].to_numpy(np.float64)))


def normalise(df: pd.DataFrame, reference: float | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Rows with ``median_ms`` replaced by the latency at the reference canary speed
    (``median_ms × reference / canary_ms``); the measured value is kept in ``median_ms_raw``. Rows
    without a canary are left as measured. Returns the rows and a summary for the predictor metadata."""
    out = df.copy()
    out["median_ms_raw"] = out["median_ms"]
    mask = has_canary(df)
    ref = reference if reference is not None else reference_ms(df)
    if ref is None or not mask.any():
        return out, {"mode": "none", "reason": "no row has a canary time", "rows_normalised": 0}
    scale = np.ones(len(df))
    scale[mask] = ref / df.loc[mask, "canary_ms"].to_numpy(np.float64)
    out["median_ms"] = out["median_ms"].to_numpy(np.float64) * scale
    info = {
        "mode": "canary",
        "canary": CANARY,
        "reference_canary_ms": ref,
        "rows_normalised": int(mask.sum()),
        "rows_without_canary": int((~mask).sum()),
        "interleave": sorted(str(v) for v in df.loc[mask, "interleave"].dropna().unique()) if "interleave" in df else [],
        "note": "predictions are latencies at the reference canary speed; multiply by canary_now / reference "
                "for the machine's speed now",
    }
    return out, info


def drift_summary(df: pd.DataFrame) -> dict[str, Any] | None:
    """How much the machine's speed moved over a dataset's rows, from their canary times."""
    mask = has_canary(df)
    if not mask.any():
        return None
    rows = df[mask].sort_values("timestamp") if "timestamp" in df else df[mask]
    c = rows["canary_ms"].to_numpy(np.float64)
    ref = float(np.median(c))
    rel = c / ref
    flagged = rows["drift_flag"].fillna(False).astype(bool) if "drift_flag" in rows else pd.Series(False, index=rows.index)
    return {
        "rows": int(mask.sum()),
        "reference_canary_ms": ref,
        "canary_cv": float(c.std(ddof=1) / c.mean()) if len(c) > 1 else 0.0,
        "canary_p5_p95": [float(np.percentile(rel, 5)), float(np.percentile(rel, 95))],
        "canary_min_max": [float(rel.min()), float(rel.max())],
        "flagged_rows": int(flagged.sum()),
        "flag_rule": f"|canary shift within the row| > {FLAG_SHIFT:.0%} or canary IQR/median > {FLAG_IQR:.0%}",
    }
