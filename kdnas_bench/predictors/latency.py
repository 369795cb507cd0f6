"""``LatencyPredictor``: analytic base model + monotone LightGBM correction, with conformal intervals.

The prediction, in log space, is ``log(base(x)) + trees(x)``:

* ``base(x) = Σ c_i · term_i(x)`` is an analytic cost model (matmul and attention FLOPs, weight bytes,
  per-layer and per-token overheads, softmax) whose coefficients are fitted by non-negative least squares
  on relative error. Each term is non-decreasing in layers, hidden, ffn, seq and batch and every
  ``c_i >= 0``, so the base is monotone.
* ``trees(x)`` is LightGBM on the features of :mod:`.features` (target: the log residual of the base),
  with ``monotone_constraints`` +1 on every feature but ``heads``. A sum of two non-decreasing functions
  is non-decreasing: latency never falls when layers, hidden, ffn, seq or batch grow.
* The interval is split-conformal in log space: ``mid · exp(±q)`` where ``q`` is the
  ``ceil((n+1)(1-alpha))``-th smallest out-of-fold |log residual| of the training rows.

scikit-learn conventions: the constructor only stores parameters, ``fit`` returns ``self``, learned
attributes end in ``_``. The model owns its state (:meth:`LatencyPredictor.to_state` / ``from_state``): LightGBM's
text format plus JSON, written into a folder by :mod:`.io`, never pickle.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import PredictorError
from .checks import ModelCheckError, check_model_text, check_state
from .evaluate import conformal_quantile, out_of_fold
from .features import FEATURES, MONOTONE, RANGE_KEYS, feature_ranges, featurize, out_of_range
from .files import META_FILE, MODEL_FILE

# (name, formula over the raw columns); every formula is a product of non-negative powers of the raw dims.
BASE_TERMS = (
    "const",  # fixed per-call overhead (python, embeddings lookup launch, pooler)
    "layers",  # per-layer launch overhead
    "flops_linear",  # QKV/O + FFN matmuls
    "flops_attention",  # QK^T, attention @ V
    "weight_bytes",  # layers * (4 h^2 + 2 h f): weights streamed once per forward (memory-bound small batches)
    "layer_tokens_hidden",  # LayerNorm, residual adds, bias: layers * tokens * hidden
    "layer_tokens_ffn",  # GELU over the FFN activations
    "softmax",  # layers * batch * heads * seq^2
    "layer_batch_heads",  # per-(batch, head) bmm launches
)


def base_terms(x: pd.DataFrame) -> np.ndarray:
    """The analytic cost terms (n, len(BASE_TERMS)) from a feature table."""
    lay, hid, hea, ffn = (x[k].to_numpy(np.float64) for k in ("layers", "hidden", "heads", "ffn"))
    seq, bat = x["seq"].to_numpy(np.float64), x["batch"].to_numpy(np.float64)
    tok = bat * seq
    cols = [
        np.ones_like(lay),
        lay,
        x["flops_linear"].to_numpy(np.float64),
        x["flops_attention"].to_numpy(np.float64),
        lay * (4 * hid * hid + 2 * hid * ffn),
        lay * tok * hid,
        lay * tok * ffn,
        lay * bat * hea * seq * seq,
        lay * bat * hea,
    ]
    return np.column_stack(cols)


def fit_base(terms: np.ndarray, y_ms: np.ndarray) -> np.ndarray:
    """Non-negative coefficients minimising the squared *relative* error of ``terms @ c`` against ``y_ms``."""
    from scipy.optimize import nnls  # noqa: PLC0415  lazy: scipy

    scale = terms.max(axis=0)
    scale[scale <= 0] = 1.0
    w = 1.0 / y_ms
    coef, _ = nnls((terms / scale) * w[:, None], y_ms * w, maxiter=50 * terms.shape[1])
    return coef / scale


@dataclass(frozen=True)
class Prediction:
    """Latencies (ms) of a batch of configs: the interval [low, high] around mid, and the range flag.
    Unpacks as ``low, mid, high = prediction``."""

    low: np.ndarray
    mid: np.ndarray
    high: np.ndarray
    out_of_range: np.ndarray

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.low, self.mid, self.high))


class LatencyPredictor:
    """Predicts the median latency (ms) of (arch, shape) configs on one device, backend and thread count.

    Parameters are LightGBM's usual ones; ``alpha`` is the miscoverage of the interval (0.1 → 90 %);
    ``cv_folds`` folds give the out-of-fold residuals that calibrate it. ``objective`` is LightGBM's, on
    the log latency; ``huber`` (delta ``huber_delta`` in log units) keeps a few disturbed rows from
    pulling the trees. With ``base=False`` the trees model the log latency alone (for comparison).
    The defaults (100 trees at learning rate 0.01: a gentle correction of the base) were the best of the
    settings tried on the 1-thread CPU profiles; the base alone explains nearly all of what the rows'
    noise lets any model explain there (see benchmarks/bench_predictors.py).
    """

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        learning_rate: float = 0.01,
        num_leaves: int = 7,
        min_data_in_leaf: int = 20,
        lambda_l2: float = 1.0,
        feature_fraction: float = 1.0,
        objective: str = "huber",
        huber_delta: float = 0.05,
        monotone: bool = True,
        base: bool = True,
        alpha: float = 0.1,
        cv_folds: int = 5,
        seed: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_data_in_leaf = min_data_in_leaf
        self.lambda_l2 = lambda_l2
        self.feature_fraction = feature_fraction
        self.objective = objective
        self.huber_delta = huber_delta
        self.monotone = monotone
        self.base = base
        self.alpha = alpha
        self.cv_folds = cv_folds
        self.seed = seed

    # -- parameters ------------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        keys = ("n_estimators", "learning_rate", "num_leaves", "min_data_in_leaf", "lambda_l2", "feature_fraction",
                "objective", "huber_delta", "monotone", "base", "alpha", "cv_folds", "seed")
        return {k: getattr(self, k) for k in keys}

    def clone(self) -> LatencyPredictor:
        return LatencyPredictor(**self.get_params())

    def lgb_params(self, n_rows: int) -> dict[str, Any]:
        params: dict[str, Any] = {
            "objective": self.objective,  # huber in log space: a row off by more than ~5 % pulls linearly
            "alpha": self.huber_delta,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            # few rows (few-shot, tests): smaller leaves so the trees can still split
            "min_data_in_leaf": max(2, min(self.min_data_in_leaf, n_rows // 10)),
            "lambda_l2": self.lambda_l2,
            "feature_fraction": self.feature_fraction,
            "bagging_seed": self.seed,
            "feature_fraction_seed": self.seed,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": 1,
            "verbose": -1,
        }
        if self.monotone:
            params["monotone_constraints"] = [MONOTONE[f] for f in FEATURES]
            params["monotone_constraints_method"] = "advanced"
        return params

    # -- fitting ---------------------------------------------------------------------------------
    def _fit_core(self, x: pd.DataFrame, y_ms: np.ndarray) -> tuple[np.ndarray, Any]:
        import lightgbm as lgb  # noqa: PLC0415  lazy: lightgbm

        if self.base:
            coef = fit_base(base_terms(x), y_ms)
            init = np.log(np.maximum(base_terms(x) @ coef, 1e-9))
        else:
            coef = np.zeros(len(BASE_TERMS))
            init = np.zeros(len(x))
        booster = None
        if self.n_estimators > 0 and len(x) >= 4:
            ds = lgb.Dataset(x[list(FEATURES)], np.log(y_ms), init_score=init if self.base else None,
                             free_raw_data=True)
            booster = lgb.train(self.lgb_params(len(x)), ds, num_boost_round=self.n_estimators)
        return coef, booster

    @staticmethod
    def _log_mid(x: pd.DataFrame, coef: np.ndarray, booster: Any, use_base: bool) -> np.ndarray:
        out = np.log(np.maximum(base_terms(x) @ coef, 1e-9)) if use_base else np.zeros(len(x))
        if booster is not None:
            out = out + booster.predict(x[list(FEATURES)], raw_score=True, num_threads=1)
        return out

    def fit(self, configs: Any, latency_ms: Any, *, calibrate: bool = True) -> LatencyPredictor:
        """Fit on configs (DataFrame or list of dicts with layers, hidden, heads, ffn, seq, batch) and
        their measured median latencies in ms. Also calibrates the interval from ``cv_folds``-fold
        out-of-fold residuals (kept in ``oof_ms_``); ``calibrate=False`` skips that (no interval: the
        fold models of a cross-validation need none)."""
        x = featurize(configs, "training configs")
        y = np.asarray(latency_ms, dtype=np.float64)
        if len(y) != len(x):
            raise ValueError(f"{len(x)} configs but {len(y)} latencies")
        if len(y) < 2 or not np.all(np.isfinite(y)) or np.any(y <= 0):
            raise ValueError("need at least 2 positive, finite latencies")
        self.coef_, self.booster_ = self._fit_core(x, y)

        def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
            coef, booster = self._fit_core(x.iloc[train], y[train])
            return self._log_mid(x.iloc[test], coef, booster, self.base)

        calibrated = calibrate and len(y) >= 3
        log_oof = out_of_fold(len(y), self.cv_folds, self.seed, fit_predict) if calibrated else np.log(y)
        self.oof_ms_ = np.exp(log_oof)
        self.q_ = conformal_quantile(np.abs(log_oof - np.log(y)), self.alpha)
        self.ranges_ = feature_ranges(x)
        self.n_rows_ = len(y)
        return self

    # -- predicting ------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise RuntimeError("LatencyPredictor is not fitted: call fit() or load()")

    def log_predict_features(self, x: pd.DataFrame) -> np.ndarray:
        self._check_fitted()
        if len(x) == 0:
            return np.zeros(0)
        return self._log_mid(x, self.coef_, self.booster_, self.base)

    def predict(self, configs: Any) -> np.ndarray:
        """Median latency (ms) per config."""
        return np.exp(self.log_predict_features(featurize(configs)))

    def predict_interval(self, configs: Any) -> Prediction:
        """(low, mid, high) latencies in ms plus the out-of-range mask, vectorised. ``high`` is the
        upper bound a search should hold against a hard latency budget."""
        self._check_fitted()
        return interval(self, featurize(configs))

    # -- state (written and read by :mod:`.io`; never pickle) ------------------------------------
    def to_state(self) -> tuple[dict[str, str], dict[str, Any]]:
        """(text files by name, JSON-able learned state): the LightGBM text and the coefficients, interval
        and training ranges."""
        self._check_fitted()
        text = self.booster_.model_to_string() if self.booster_ is not None else ""
        state = {"params": self.get_params(), "base_terms": list(BASE_TERMS),
                 "base_coef": [float(c) for c in self.coef_], "log_halfwidth": float(self.q_),
                 "ranges": self.ranges_, "rows": self.n_rows_}
        return {MODEL_FILE: text}, state

    @classmethod
    def from_state(cls, files: dict[str, str], state: dict[str, Any], where: str) -> LatencyPredictor:
        """The predictor :meth:`to_state` described; a PredictorError naming ``where`` when anything in it is
        malformed (everything LightGBM and numpy will be given is checked first)."""
        import lightgbm as lgb  # noqa: PLC0415  lazy: lightgbm

        text = files.get(MODEL_FILE, "")
        try:
            check_state(state, f"{where}/{META_FILE}", BASE_TERMS, RANGE_KEYS)
            if text or (state["params"].get("n_estimators") != 0 and state["rows"] >= 4):
                check_model_text(text, f"{where}/{MODEL_FILE}", n_features=len(FEATURES))
        except ModelCheckError as exc:
            raise PredictorError(str(exc)) from None
        try:
            pred = cls(**state["params"])
            if list(state["base_terms"]) != list(BASE_TERMS):
                raise PredictorError(f"{where}: fitted with base terms {state['base_terms']}, this kdnas-bench has "
                                     f"{list(BASE_TERMS)}; refit it")
            pred.coef_ = np.asarray(state["base_coef"], dtype=np.float64)
            pred.q_ = float(state["log_halfwidth"])
            pred.ranges_ = {k: [float(v[0]), float(v[1])] for k, v in state["ranges"].items()}
            pred.n_rows_ = int(state["rows"])
            pred.oof_ms_ = np.zeros(0)
        except PredictorError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise PredictorError(f"corrupt predictor metadata {where}: {type(exc).__name__} {exc}") from None
        pred.booster_ = None
        if text:
            try:
                pred.booster_ = lgb.Booster(model_str=text)
            except Exception as exc:
                raise PredictorError(f"corrupt predictor model {where}: {str(exc).splitlines()[0][:200]}") from None
            if pred.booster_.num_feature() != len(FEATURES):
                raise PredictorError(f"corrupt predictor model {where}: {pred.booster_.num_feature()} features, "
                                     f"expected {len(FEATURES)}")
        return pred


def interval(model: Any, x: pd.DataFrame) -> Prediction:
    """The one prediction path of every predictor (from scratch or transferred): ``mid = exp(log prediction)``
    and the conformal interval ``mid · exp(±q_)`` on a feature table, with the out-of-range mask."""
    mid = np.exp(model.log_predict_features(x))
    q = model.q_
    return Prediction(mid * np.exp(-q), mid, mid * np.exp(q), out_of_range(x, model.ranges_))
