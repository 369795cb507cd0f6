"""Cross-validation of a latency predictor with folds grouped by arch: what adaptive profiling fits after each
round (the fold models' disagreement picks the next archs) and reports as its learning curve."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..profiling.adaptive import arch_key
from ..profiling.canary import newest_protocol, normalise
from .evaluate import group_kfold_indices, metrics
from .latency import LatencyPredictor


def cross_validate(df: pd.DataFrame, folds: int, seed: int) -> tuple[dict[str, float], list[Any]]:
    """Drift-normalise ``df`` (ok rows; those of the newest canary protocol, as ``fit`` does), cross-validate a
    predictor with folds grouped by arch. Returns the out-of-fold metrics and the fold models (their
    disagreement guides the next round)."""
    rows, _ = normalise(newest_protocol(df)[0])
    y = rows["median_ms"].to_numpy(np.float64)
    oof = np.full(len(rows), np.nan)
    models = []
    for fold in group_kfold_indices(arch_key(rows), folds, seed):
        train = np.setdiff1d(np.arange(len(rows)), fold)
        model = LatencyPredictor(seed=seed).fit(rows.iloc[train], y[train], calibrate=False)
        oof[fold] = model.predict(rows.iloc[fold])
        models.append(model)
    return metrics(y, oof), models
