"""The few-shot transfer methods (see :mod:`kdnas_bench.predictors.transfer`), one function each, and their
registry. A method fits, on the K target rows, the state ``{"a", "b", "coef", "booster"}`` that maps the
source's log prediction to the target's: ``a + b · log(terms · coef · exp(trees)) [+ booster]``.

A new method is one function with the signature of :data:`MethodFn` plus its ``register`` in
:data:`TRANSFER_METHODS` (or, from another package, an entry point of the group ``kdnas_bench.transfer_methods``;
:mod:`kdnas_bench.registry`); the CLI's ``--transfer-method`` choices and the transfer tests read the registry, and
:func:`kdnas_bench.testing.check_transfer_method` checks a method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..registry import Registry

B_RANGE = (0.25, 4.0)


@dataclass(frozen=True)
class MethodInput:
    """What a method fits on: the K rows' features ``x`` (a DataFrame), the source's analytic ``terms`` (K, T),
    its trees' log correction ``trees`` (K,), its coefficients ``coef_src`` (T,), whether the source has an
    analytic base, its log prediction ``p`` (K,), the target ``y`` (K,, log ms), and the options."""

    x: Any
    terms: np.ndarray
    trees: np.ndarray
    coef_src: np.ndarray
    has_base: bool
    p: np.ndarray
    y: np.ndarray
    shrink: float
    prior: float
    seed: int


MethodFn = Callable[[MethodInput], dict[str, Any]]


def _state(m: MethodInput) -> dict[str, Any]:
    return {"a": 0.0, "b": 1.0, "coef": m.coef_src, "booster": None}


def offset(m: MethodInput) -> dict[str, Any]:
    """``b = 1``: the new device is a constant factor faster or slower."""
    return {**_state(m), "a": float(np.mean(m.y - m.p))}


def affine(m: MethodInput) -> dict[str, Any]:
    """``a`` and ``b`` by least squares, ``b`` ridge-shrunk towards 1 and kept in :data:`B_RANGE`."""
    if len(m.y) < 3:
        return offset(m)
    pc, yc = m.p - m.p.mean(), m.y - m.y.mean()  # minimise Σ(y - a - b p)^2 + shrink (b - 1)^2
    b = float(np.clip((pc @ yc + m.shrink) / (pc @ pc + m.shrink), *B_RANGE))
    return {**_state(m), "a": float(m.y.mean() - b * m.p.mean()), "b": b}


def rebase(m: MethodInput) -> dict[str, Any]:
    """Refit the analytic coefficients ``c >= 0`` on the target, ridge towards the source's, trees kept:
    minimise Σ (terms·c / y_eff - 1)^2 + prior Σ (m_i (c_i - c_src_i))^2, y_eff = latency / exp(trees),
    m_i = mean share of latency per unit of c_i (a unit-free prior). Without an analytic base: ``affine``."""
    if not m.has_base:
        return affine(m)
    from scipy.optimize import nnls  # noqa: PLC0415  lazy: scipy

    rel = m.terms / np.exp(m.y - m.trees)[:, None]
    scale = rel.mean(axis=0)
    scale[scale <= 0] = 1.0
    k = len(scale)
    lhs = np.vstack([rel / scale, np.sqrt(m.prior) * np.eye(k)])
    rhs = np.concatenate([np.ones(len(m.y)), np.sqrt(m.prior) * m.coef_src * scale])
    d, _ = nnls(lhs, rhs, maxiter=50 * k)
    return {**_state(m), "coef": d / scale}


def residual(m: MethodInput) -> dict[str, Any]:
    """``affine`` plus a small monotone LightGBM on what is left."""
    import lightgbm as lgb  # noqa: PLC0415  lazy: lightgbm

    from .features import FEATURES, MONOTONE  # noqa: PLC0415  lazy: pandas (via predictors.features)

    state = affine(m)
    if len(m.y) < 3:
        return state
    params = {"objective": "regression", "learning_rate": 0.05, "num_leaves": 4,
              "min_data_in_leaf": max(5, len(m.y) // 10), "lambda_l2": 5.0, "verbose": -1, "num_threads": 1,
              "seed": m.seed, "deterministic": True, "force_row_wise": True,
              "monotone_constraints": [MONOTONE[f] for f in FEATURES], "monotone_constraints_method": "advanced"}
    ds = lgb.Dataset(m.x[list(FEATURES)], m.y, init_score=state["a"] + state["b"] * m.p)
    state["booster"] = lgb.train(params, ds, num_boost_round=100)
    return state


def _is_method(name: str, part: object) -> str | None:
    if name == AUTO:
        return f"{AUTO!r} is the choice among the methods, not a method"
    return None if callable(part) else f"must be a function (MethodInput) -> state, got {type(part).__name__}"


AUTO = "auto"  # pick the method with the lowest out-of-fold error on the K rows (among offset, affine, rebase, residual)
TRANSFER_METHODS: Registry[MethodFn] = Registry("transfer method", _is_method)
for _method in (offset, affine, rebase, residual):
    TRANSFER_METHODS.register(_method.__name__, _method)
