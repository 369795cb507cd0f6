"""Few-shot transfer: a predictor for a new device (or backend, or thread count) from K of its own
measurements on top of an existing predictor.

In log space the new latency is modelled from the source as:

* ``offset``   — ``b = 1``: the new device is a constant factor faster or slower;
* ``affine``   — ``a`` and ``b`` by least squares, ``b`` shrunk towards 1 and kept in [0.25, 4], so big
  and small models may scale differently (e.g. less per-op overhead in onnxruntime);
* ``rebase``   — each analytic cost term of the source (matmul FLOPs, attention, weight bytes, per-layer
  overhead, ...) gets its own scale ``s_i >= 0``, ridge-shrunk towards 1, with the source's trees kept:
  a new backend may pay less per op launch and the same per FLOP;
* ``residual`` — ``affine`` plus a small monotone LightGBM on what is left (only from 40 rows on).

``method="auto"`` picks the one with the lowest K-fold (leave-one-out up to 20 rows) error on the K
rows. ``b > 0``, ``s >= 0`` and the +1 constraints keep the source's monotonicity. The interval is conformal on the
same out-of-fold residuals, so it is honest but wide when K is small.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .evaluate import conformal_quantile, kfold_indices
from .features import FEATURES, MONOTONE, featurize, out_of_range
from .latency import LatencyPredictor, Prediction, base_terms

METHODS = ("offset", "affine", "rebase", "residual")
REBASE_PRIORS = (0.003,)  # ridge weight per term; several values can be given, the out-of-fold error picks one
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

    def __init__(self, source: LatencyPredictor, *, method: str = "auto", shrink: float = 5.0,
                 prior: float | None = None, alpha: float = 0.1, seed: int = 0) -> None:
        if method not in (*METHODS, "auto"):
            raise ValueError(f"unknown transfer method {method!r} (choose from auto, {', '.join(METHODS)})")
        self.source = source
        self.method = method
        self.shrink = shrink
        self.prior = prior
        self.alpha = alpha
        self.seed = seed

    # -- the source, split into its analytic terms and its trees ----------------------------------
    def _parts(self, x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(per-term base contributions in ms (n, terms), the source trees' log correction (n,))."""
        src = self.source
        contrib = base_terms(x) * src.coef_ if src.base else np.zeros((len(x), len(src.coef_)))
        trees = (src.booster_.predict(x[list(FEATURES)], raw_score=True, num_threads=1)
                 if src.booster_ is not None else np.zeros(len(x)))
        return contrib, trees

    @staticmethod
    def _log_source(contrib: np.ndarray, trees: np.ndarray, scale: np.ndarray) -> np.ndarray:
        if not contrib.any():
            return trees
        return np.log(np.maximum(contrib @ scale, 1e-9)) + trees

    # -- the calibrations ------------------------------------------------------------------------
    def _fit_method(self, method: str, x: pd.DataFrame, contrib: np.ndarray, trees: np.ndarray,
                    y: np.ndarray) -> dict[str, Any]:
        ones = np.ones(contrib.shape[1])
        state: dict[str, Any] = {"a": 0.0, "b": 1.0, "scale": ones, "booster": None}
        if method.startswith("rebase") and contrib.any():
            prior = float(method.split(":")[1])
            # per-term scales s >= 0 of the source's analytic terms, ridge towards 1 (the source itself):
            # minimise Σ ((contrib·s) / y_eff - 1)^2 + prior Σ (s - 1)^2, y_eff = latency / exp(trees)
            from scipy.optimize import nnls

            y_eff = np.exp(y - trees)
            lhs = np.vstack([contrib / y_eff[:, None], np.sqrt(prior) * np.eye(len(ones))])
            rhs = np.concatenate([np.ones(len(y)), np.sqrt(prior) * ones])
            state["scale"], _ = nnls(lhs, rhs, maxiter=50 * len(ones))
            return state
        p = self._log_source(contrib, trees, ones)
        if method == "offset" or len(y) < 3:
            state["a"] = float(np.mean(y - p))
            return state
        # ridge towards b = 1: minimise Σ(y - a - b p)^2 + shrink (b - 1)^2
        pc, yc = p - p.mean(), y - y.mean()
        b = float(np.clip((pc @ yc + self.shrink) / (pc @ pc + self.shrink), *B_RANGE))
        state["a"], state["b"] = float(y.mean() - b * p.mean()), b
        if method == "residual":
            import lightgbm as lgb

            params = {"objective": "regression", "learning_rate": 0.05, "num_leaves": 4,
                      "min_data_in_leaf": max(5, len(y) // 10), "lambda_l2": 5.0, "verbose": -1, "num_threads": 1,
                      "seed": self.seed, "deterministic": True, "force_row_wise": True,
                      "monotone_constraints": [MONOTONE[f] for f in FEATURES],
                      "monotone_constraints_method": "advanced"}
            ds = lgb.Dataset(x[list(FEATURES)], y, init_score=state["a"] + b * p)
            state["booster"] = lgb.train(params, ds, num_boost_round=100)
        return state

    def _apply(self, x: pd.DataFrame, contrib: np.ndarray, trees: np.ndarray, state: dict[str, Any]) -> np.ndarray:
        out = state["a"] + state["b"] * self._log_source(contrib, trees, state["scale"])
        if state["booster"] is not None:
            out = out + state["booster"].predict(x[list(FEATURES)], raw_score=True, num_threads=1)
        return out

    def _oof(self, method: str, x: pd.DataFrame, contrib: np.ndarray, trees: np.ndarray, y: np.ndarray) -> np.ndarray:
        n = len(y)
        folds = [np.array([i]) for i in range(n)] if n <= 20 else kfold_indices(n, 10, self.seed)
        out = np.full(n, np.nan)
        for fold in folds:
            train = np.setdiff1d(np.arange(n), fold)
            state = self._fit_method(method, x.iloc[train], contrib[train], trees[train], y[train])
            out[fold] = self._apply(x.iloc[fold], contrib[fold], trees[fold], state)
        return out

    # -- sklearn-style API -----------------------------------------------------------------------
    def fit(self, configs: Any, latency_ms: Any) -> TransferPredictor:
        x = featurize(configs, "training configs")
        y = np.log(np.asarray(latency_ms, dtype=np.float64))
        if len(y) < 1 or not np.all(np.isfinite(y)):
            raise ValueError("need at least 1 positive, finite latency")
        contrib, trees = self._parts(x)
        priors = REBASE_PRIORS if self.prior is None else (self.prior,)
        rebase = [f"rebase:{p}" for p in priors]
        if self.method != "auto":
            candidates = rebase if self.method == "rebase" else [self.method]
        else:
            candidates = ["offset"] + (["affine", *rebase] if len(y) >= 5 else [])
            candidates += ["residual"] if len(y) >= MIN_RESIDUAL_ROWS else []
        best: tuple[float, str, np.ndarray] | None = None
        for method in candidates:
            oof = self._oof(method, x, contrib, trees, y) if len(y) >= 2 else np.full(len(y), np.nan)
            err = float(np.sqrt(np.nanmean((oof - y) ** 2))) if len(y) >= 2 else 0.0
            if best is None or err < best[0] - 1e-12:
                best = (err, method, oof)
        assert best is not None
        _, chosen, oof = best
        state = self._fit_method(chosen, x, contrib, trees, y)
        self.method_, _, prior = chosen.partition(":")
        self.prior_ = float(prior) if prior else None
        self.a_, self.b_, self.scale_, self.booster_ = state["a"], state["b"], state["scale"], state["booster"]
        self.q_ = conformal_quantile(np.abs(oof - y), self.alpha) if len(y) >= 2 else float("inf")
        self.oof_ms_ = np.exp(oof)
        self.ranges_ = self.source.ranges_
        self.n_rows_ = len(y)
        return self

    def log_predict_features(self, x: pd.DataFrame) -> np.ndarray:
        if not hasattr(self, "a_"):
            raise RuntimeError("TransferPredictor is not fitted: call fit() or load()")
        contrib, trees = self._parts(x)
        state = {"a": self.a_, "b": self.b_, "scale": self.scale_, "booster": self.booster_}
        return self._apply(x, contrib, trees, state)

    def predict(self, configs: Any) -> np.ndarray:
        return np.exp(self.log_predict_features(featurize(configs)))

    def predict_interval(self, configs: Any) -> Prediction:
        x = featurize(configs)
        mid = np.exp(self.log_predict_features(x))
        return Prediction(mid * np.exp(-self.q_), mid, mid * np.exp(self.q_), out_of_range(x, self.ranges_))

    def out_of_range(self, configs: Any) -> np.ndarray:
        return out_of_range(featurize(configs), self.ranges_)
