"""Few-shot transfer: a predictor for a new device (or backend, or thread count) from K of its own
measurements on top of an existing predictor.

In log space the new latency is modelled from the source as:

* ``offset``   — ``b = 1``: the new device is a constant factor faster or slower;
* ``affine``   — ``a`` and ``b`` by least squares, ``b`` shrunk towards 1 and kept in [0.25, 4], so big
  and small models may scale differently (e.g. less per-op overhead in onnxruntime);
* ``rebase``   — the analytic cost model (matmul FLOPs, attention, weight bytes, per-layer overhead, ...)
  is refitted on the K rows, its coefficients ``c_i >= 0`` ridge-shrunk towards the source's, with the
  source's trees kept: a new backend may pay less per op launch and the same per FLOP;
* ``residual`` — ``affine`` plus a small monotone LightGBM on what is left (only from 40 rows on).

``rebase`` is the default: on torch <-> onnxruntime (1 thread) it beat fitting from scratch at K = 10, 30
and 100, and beat the others, whose error is dominated by a wrong shape rather than a wrong level.
``method="auto"`` picks the one with the lowest K-fold (leave-one-out up to 20 rows) error on the K
rows, which is too noisy a choice at K = 10. ``b > 0``, ``c >= 0`` and the +1 constraints keep the
source's monotonicity. The interval is conformal on out-of-fold residuals of the K rows (leave-one-out
up to 20 rows), so it is honest but wide when K is small.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import PredictorError
from .checks import ModelCheckError, check_model_text
from .evaluate import conformal_quantile, kfold_indices
from .features import FEATURES, featurize
from .files import RESIDUAL_FILE
from .latency import LatencyPredictor, Prediction, base_terms, interval
from .transfer_methods import AUTO, TRANSFER_METHODS, MethodInput

METHODS = TRANSFER_METHODS.registered()  # this package's methods (the registry also lists installed plugins')
REBASE_PRIOR = 0.1  # ridge weight per term (unit-free); 0.01-0.3 gave the same accuracy torch <-> onnxruntime
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

    def __init__(self, source: LatencyPredictor, *, method: str = "rebase", shrink: float = 5.0,
                 prior: float = REBASE_PRIOR, alpha: float = 0.1, seed: int = 0) -> None:
        if method != AUTO and method not in TRANSFER_METHODS:
            raise ValueError(f"unknown transfer method {method!r} (choose from {AUTO}, {', '.join(TRANSFER_METHODS)})")
        self.source = source
        self.method = method
        self.shrink = shrink
        self.prior = prior
        self.alpha = alpha
        self.seed = seed

    # -- the source, split into its analytic terms and its trees ----------------------------------
    def _parts(self, x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(the analytic terms (n, terms), the source trees' log correction (n,))."""
        src = self.source
        trees = (src.booster_.predict(x[list(FEATURES)], raw_score=True, num_threads=1)
                 if src.booster_ is not None else np.zeros(len(x)))
        return base_terms(x), trees

    def _log_source(self, terms: np.ndarray, trees: np.ndarray, coef: np.ndarray) -> np.ndarray:
        if not self.source.base:
            return trees
        return np.log(np.maximum(terms @ coef, 1e-9)) + trees

    # -- the calibrations ------------------------------------------------------------------------
    def _fit_method(self, method: str, x: pd.DataFrame, terms: np.ndarray, trees: np.ndarray,
                    y: np.ndarray) -> dict[str, Any]:
        coef_src = np.asarray(self.source.coef_, dtype=np.float64)
        name, _, prior = method.partition(":")
        m = MethodInput(x, terms, trees, coef_src, bool(self.source.base), self._log_source(terms, trees, coef_src), y,
                        self.shrink, float(prior) if prior else self.prior, self.seed)
        return TRANSFER_METHODS[name](m)

    def _apply(self, x: pd.DataFrame, terms: np.ndarray, trees: np.ndarray, state: dict[str, Any]) -> np.ndarray:
        out = state["a"] + state["b"] * self._log_source(terms, trees, state["coef"])
        if state["booster"] is not None:
            out = out + state["booster"].predict(x[list(FEATURES)], raw_score=True, num_threads=1)
        return out

    def _oof(self, method: str, x: pd.DataFrame, terms: np.ndarray, trees: np.ndarray, y: np.ndarray) -> np.ndarray:
        n = len(y)
        folds = [np.array([i]) for i in range(n)] if n <= 20 else kfold_indices(n, 10, self.seed)
        out = np.full(n, np.nan)
        for fold in folds:
            train = np.setdiff1d(np.arange(n), fold)
            state = self._fit_method(method, x.iloc[train], terms[train], trees[train], y[train])
            out[fold] = self._apply(x.iloc[fold], terms[fold], trees[fold], state)
        return out

    # -- sklearn-style API -----------------------------------------------------------------------
    def fit(self, configs: Any, latency_ms: Any) -> TransferPredictor:
        x = featurize(configs, "training configs")
        y = np.log(np.asarray(latency_ms, dtype=np.float64))
        if len(y) < 1 or not np.all(np.isfinite(y)):
            raise ValueError("need at least 1 positive, finite latency")
        terms, trees = self._parts(x)
        rebase = f"rebase:{self.prior}"
        if self.method != "auto":
            candidates = [rebase if self.method == "rebase" else self.method]
        else:
            candidates = ["offset"] + (["affine", rebase] if len(y) >= 5 else [])
            candidates += ["residual"] if len(y) >= MIN_RESIDUAL_ROWS else []
        best: tuple[float, str, np.ndarray] | None = None
        for method in candidates:
            oof = self._oof(method, x, terms, trees, y) if len(y) >= 2 else np.full(len(y), np.nan)
            err = float(np.sqrt(np.nanmean((oof - y) ** 2))) if len(y) >= 2 else 0.0
            if best is None or err < best[0] - 1e-12:
                best = (err, method, oof)
        assert best is not None
        _, chosen, oof = best
        state = self._fit_method(chosen, x, terms, trees, y)
        self.method_, _, prior = chosen.partition(":")
        self.prior_ = float(prior) if prior else None
        self.a_, self.b_, self.coef_, self.booster_ = state["a"], state["b"], state["coef"], state["booster"]
        self.q_ = conformal_quantile(np.abs(oof - y), self.alpha) if len(y) >= 2 else float("inf")
        self.oof_ms_ = np.exp(oof)
        self.ranges_ = self.source.ranges_
        self.n_rows_ = len(y)
        return self

    def log_predict_features(self, x: pd.DataFrame) -> np.ndarray:
        if not hasattr(self, "a_"):
            raise RuntimeError("TransferPredictor is not fitted: call fit() or load()")
        if len(x) == 0:
            return np.zeros(0)
        terms, trees = self._parts(x)
        state = {"a": self.a_, "b": self.b_, "coef": self.coef_, "booster": self.booster_}
        return self._apply(x, terms, trees, state)

    def predict(self, configs: Any) -> np.ndarray:
        return np.exp(self.log_predict_features(featurize(configs)))

    def predict_interval(self, configs: Any) -> Prediction:
        return interval(self, featurize(configs))

    # -- state (written and read by :mod:`.io`) --------------------------------------------------
    def to_state(self) -> tuple[dict[str, str], dict[str, Any]]:
        """(text files by name, the JSON-able calibration): the residual trees when the method has them.
        The source's own state is written beside it (its :meth:`LatencyPredictor.to_state`)."""
        if not hasattr(self, "a_"):
            raise RuntimeError("TransferPredictor is not fitted: call fit()")
        files = {RESIDUAL_FILE: self.booster_.model_to_string()} if self.booster_ is not None else {}
        return files, {"method": self.method_, "a": self.a_, "b": self.b_, "base_coef": [float(v) for v in self.coef_],
                       "prior": self.prior_, "log_halfwidth": self.q_, "samples": self.n_rows_}

    @classmethod
    def from_state(cls, source: LatencyPredictor, files: dict[str, str], state: dict[str, Any], *, seed: int,
                   where: str) -> TransferPredictor:
        """The calibration :meth:`to_state` described, on top of ``source``; a PredictorError naming ``where``."""
        try:
            model = cls(source, method=str(state["method"]), prior=float(state["prior"] or 0.0), seed=seed)
            model.method_, model.a_, model.b_ = str(state["method"]), float(state["a"]), float(state["b"])
            model.prior_ = None if state["prior"] is None else float(state["prior"])
            model.coef_ = np.asarray(state["base_coef"], dtype=np.float64)
            if model.coef_.shape != np.asarray(source.coef_).shape:
                raise ValueError(f"{len(model.coef_)} coefficients for {len(source.coef_)} base terms")
            model.q_ = float(state["log_halfwidth"]) if state["log_halfwidth"] is not None else float("inf")
            model.ranges_, model.n_rows_ = source.ranges_, int(state["samples"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PredictorError(f"corrupt predictor metadata {where}: transfer {exc}") from None
        model.booster_ = None
        if RESIDUAL_FILE in files:
            import lightgbm as lgb  # noqa: PLC0415  lazy: lightgbm

            try:
                check_model_text(files[RESIDUAL_FILE], f"{where}/{RESIDUAL_FILE}", n_features=len(FEATURES))
                model.booster_ = lgb.Booster(model_str=files[RESIDUAL_FILE])
            except ModelCheckError as exc:
                raise PredictorError(str(exc)) from None
            except Exception as exc:
                raise PredictorError(f"corrupt predictor model {where}/{RESIDUAL_FILE}: {str(exc)[:200]}") from None
        return model
