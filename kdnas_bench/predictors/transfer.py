"""Few-shot transfer: a predictor for a new device (or backend, or thread count) from K of its own
measurements on top of an existing predictor.

In log space the new latency is modelled as ``a + b · log(source(x)) [+ r(x)]``:

* ``offset``   — ``b = 1``: the new device is a constant factor faster or slower;
* ``affine``   — ``a`` and ``b`` by least squares, ``b`` shrunk towards 1 and kept in [0.25, 4], so big
  and small models may scale differently (e.g. less per-op overhead in onnxruntime);
* ``residual`` — ``affine`` plus a small monotone LightGBM on what is left (only from 40 rows on).

``method="auto"`` picks the one with the lowest K-fold (leave-one-out up to 20 rows) error on the K
rows. ``b > 0`` and the +1 constraints keep the source's monotonicity. The interval is conformal on the
same out-of-fold residuals, so it is honest but wide when K is small.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .evaluate import conformal_quantile, kfold_indices
from .features import FEATURES, MONOTONE, featurize, out_of_range
from .latency import LatencyPredictor, Prediction

METHODS = ("offset", "affine", "residual")
B_RANGE = (0.25, 4.0)
MIN_RESIDUAL_ROWS = 40


def select_samples(source: LatencyPredictor, configs: pd.DataFrame, k: int, seed: int = 0) -> np.ndarray:
    """Indices of ``k`` rows spread over the source's predicted latency range (one random row per
    equal-count stratum), so a few measurements span small to large models."""
    n = len(configs)
    if k >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    order = np.argsort(source.predict(configs), kind="stable")
    strata = np.array_split(order, k)
    return np.sort(np.array([rng.choice(s) for s in strata]))


class TransferPredictor:
    """``source`` recalibrated on a few rows of the target. Same prediction API as ``LatencyPredictor``."""

    def __init__(self, source: LatencyPredictor, *, method: str = "auto", shrink: float = 5.0, alpha: float = 0.1,
                 seed: int = 0) -> None:
        if method not in (*METHODS, "auto"):
            raise ValueError(f"unknown transfer method {method!r} (choose from auto, {', '.join(METHODS)})")
        self.source = source
        self.method = method
        self.shrink = shrink
        self.alpha = alpha
        self.seed = seed

    # -- the three calibrations ------------------------------------------------------------------
    def _fit_method(self, method: str, x: pd.DataFrame, p: np.ndarray, y: np.ndarray) -> tuple[float, float, Any]:
        if method == "offset" or len(y) < 3:
            return float(np.mean(y - p)), 1.0, None
        # ridge towards b = 1: minimise Σ(y - a - b p)^2 + shrink (b - 1)^2
        pc, yc = p - p.mean(), y - y.mean()
        b = float((pc @ yc + self.shrink) / (pc @ pc + self.shrink))
        b = float(np.clip(b, *B_RANGE))
        a = float(y.mean() - b * p.mean())
        booster = None
        if method == "residual":
            import lightgbm as lgb

            params = {"objective": "regression", "learning_rate": 0.05, "num_leaves": 4,
                      "min_data_in_leaf": max(5, len(y) // 10), "lambda_l2": 5.0, "verbose": -1, "num_threads": 1,
                      "seed": self.seed, "deterministic": True, "force_row_wise": True,
                      "monotone_constraints": [MONOTONE[f] for f in FEATURES],
                      "monotone_constraints_method": "advanced"}
            ds = lgb.Dataset(x[list(FEATURES)], y, init_score=a + b * p)
            booster = lgb.train(params, ds, num_boost_round=100)
        return a, b, booster

    @staticmethod
    def _apply(x: pd.DataFrame, p: np.ndarray, a: float, b: float, booster: Any) -> np.ndarray:
        out = a + b * p
        if booster is not None:
            out = out + booster.predict(x[list(FEATURES)], raw_score=True, num_threads=1)
        return out

    def _oof(self, method: str, x: pd.DataFrame, p: np.ndarray, y: np.ndarray) -> np.ndarray:
        n = len(y)
        folds = [np.array([i]) for i in range(n)] if n <= 20 else kfold_indices(n, 10, self.seed)
        out = np.full(n, np.nan)
        for fold in folds:
            train = np.setdiff1d(np.arange(n), fold)
            a, b, booster = self._fit_method(method, x.iloc[train], p[train], y[train])
            out[fold] = self._apply(x.iloc[fold], p[fold], a, b, booster)
        return out

    # -- sklearn-style API -----------------------------------------------------------------------
    def fit(self, configs: Any, latency_ms: Any) -> TransferPredictor:
        x = featurize(configs, "training configs")
        y = np.log(np.asarray(latency_ms, dtype=np.float64))
        if len(y) < 1 or not np.all(np.isfinite(y)):
            raise ValueError("need at least 1 positive, finite latency")
        p = self.source.log_predict_features(x)
        if self.method != "auto":
            candidates = [self.method]
        else:
            candidates = ["offset"] + (["affine"] if len(y) >= 5 else [])
            candidates += ["residual"] if len(y) >= MIN_RESIDUAL_ROWS else []
        best: tuple[float, str, np.ndarray] | None = None
        for method in candidates:
            oof = self._oof(method, x, p, y) if len(y) >= 2 else np.full(len(y), np.nan)
            err = float(np.sqrt(np.nanmean((oof - y) ** 2))) if len(y) >= 2 else 0.0
            if best is None or err < best[0] - 1e-12:
                best = (err, method, oof)
        assert best is not None
        _, self.method_, oof = best
        self.a_, self.b_, self.booster_ = self._fit_method(self.method_, x, p, y)
        self.q_ = conformal_quantile(np.abs(oof - y), self.alpha) if len(y) >= 2 else float("inf")
        self.oof_ms_ = np.exp(oof)
        self.ranges_ = self.source.ranges_
        self.n_rows_ = len(y)
        return self

    def log_predict_features(self, x: pd.DataFrame) -> np.ndarray:
        if not hasattr(self, "a_"):
            raise RuntimeError("TransferPredictor is not fitted: call fit() or load()")
        return self._apply(x, self.source.log_predict_features(x), self.a_, self.b_, self.booster_)

    def predict(self, configs: Any) -> np.ndarray:
        return np.exp(self.log_predict_features(featurize(configs)))

    def predict_interval(self, configs: Any) -> Prediction:
        x = featurize(configs)
        mid = np.exp(self.log_predict_features(x))
        return Prediction(mid * np.exp(-self.q_), mid, mid * np.exp(self.q_), out_of_range(x, self.ranges_))

    def out_of_range(self, configs: Any) -> np.ndarray:
        return out_of_range(featurize(configs), self.ranges_)
