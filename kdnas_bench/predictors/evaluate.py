"""Accuracy of a latency predictor: nn-Meter's metric set, k-fold CV and a held-out split.

All metrics compare predicted and measured latencies in ms; shares and percentages are fractions
(0.99, not 99).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def metrics(y_true_ms: np.ndarray, y_pred_ms: np.ndarray) -> dict[str, float]:
    """RMSE (ms), RMSPE, MAPE, share within ±5/±10/±15 %, Kendall τ."""
    y = np.asarray(y_true_ms, dtype=np.float64)
    p = np.asarray(y_pred_ms, dtype=np.float64)
    if y.shape != p.shape or y.size == 0:
        raise ValueError("metrics need two non-empty arrays of the same length")
    rel = (p - y) / y
    out: dict[str, float] = {
        "rows": int(y.size),
        "rmse_ms": float(np.sqrt(np.mean((p - y) ** 2))),
        "rmspe": float(np.sqrt(np.mean(rel**2))),
        "mape": float(np.mean(np.abs(rel))),
        "within_5pct": float(np.mean(np.abs(rel) <= 0.05)),
        "within_10pct": float(np.mean(np.abs(rel) <= 0.10)),
        "within_15pct": float(np.mean(np.abs(rel) <= 0.15)),
    }
    out["kendall_tau"] = kendall_tau(y, p)
    return out


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2:
        return float("nan")
    from scipy.stats import kendalltau  # noqa: PLC0415  lazy: scipy

    tau = kendalltau(a, b).statistic
    return float(tau) if np.isfinite(tau) else float("nan")


def coverage(y_true_ms: np.ndarray, low_ms: np.ndarray, high_ms: np.ndarray) -> float:
    """Share of measured latencies inside [low, high]."""
    y = np.asarray(y_true_ms, dtype=np.float64)
    return float(np.mean((y >= np.asarray(low_ms)) & (y <= np.asarray(high_ms))))


def holdout_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random (train, test) index arrays; test holds ``round(n * fraction)`` rows (at least 1 if n > 1)."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    n_test = min(n - 1, max(1 if n > 1 else 0, round(n * fraction)))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def kfold_indices(n: int, k: int, seed: int) -> list[np.ndarray]:
    """``k`` disjoint random folds covering ``range(n)``."""
    k = max(2, min(k, n))
    perm = np.random.default_rng(seed).permutation(n)
    return [np.sort(f) for f in np.array_split(perm, k)]


def group_kfold_indices(groups: Any, k: int, seed: int) -> list[np.ndarray]:
    """``k`` disjoint folds of row indices in which all rows of a group (an arch) share a fold: the CV
    then asks how well unseen *archs* are predicted, not unseen shapes of archs it has seen."""
    _, codes = np.unique(np.asarray(groups), return_inverse=True)
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    k = max(2, min(k, n_groups))
    perm = np.random.default_rng(seed).permutation(n_groups)
    fold_of_group = np.empty(n_groups, dtype=np.int64)
    for f, part in enumerate(np.array_split(perm, k)):
        fold_of_group[part] = f
    fold = fold_of_group[codes]
    return [np.flatnonzero(fold == f) for f in range(k)]


def out_of_fold(
    n: int, k: int, seed: int, fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """Out-of-fold predictions: ``fit_predict(train_idx, test_idx)`` returns predictions for ``test_idx``."""
    pred = np.full(n, np.nan)
    for fold in kfold_indices(n, k, seed):
        train = np.setdiff1d(np.arange(n), fold)
        pred[fold] = fit_predict(train, fold)
    return pred


def conformal_quantile(abs_residuals: np.ndarray, alpha: float) -> float:
    """Split-conformal quantile: the ceil((n+1)(1-alpha))-th smallest |residual| (inf when n is too small)."""
    r = np.sort(np.asarray(abs_residuals, dtype=np.float64))
    n = r.size
    rank = int(np.ceil((n + 1) * (1 - alpha)))
    if n == 0 or rank > n:
        return float(r[-1]) if n else float("inf")
    return float(r[rank - 1])
