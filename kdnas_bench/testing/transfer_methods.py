"""The transfer-method contract (:data:`~kdnas_bench.predictors.transfer_methods.MethodFn`: K target rows in,
a state ``{"a", "b", "coef", "booster"}`` out): a well-formed state (finite ``a``, ``b > 0``, coefficients of the
source's shape, finite and non-negative, so the source's monotonicity is kept); the source kept when the target
agrees with it; a device that is a constant factor slower learnt; the same state for the same rows; its input
left as it was."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from ..predictors.features import FEATURES, featurize
from ..predictors.latency import base_terms
from ..predictors.transfer_methods import MethodFn, MethodInput
from ..space import Arch, Shape

TOL = 0.05  # in log latency: 5 %


def method_input(k: int = 24, seed: int = 0, factor: float = 1.0) -> MethodInput:
    """``k`` target rows whose latency is ``factor`` times the source's prediction (with an analytic base)."""
    rng = np.random.default_rng(seed)
    configs = [(Arch(int(rng.integers(1, 7)), h, h // 32, 4 * h), Shape(1, int(rng.choice([32, 64, 128]))))
               for h in (int(v) for v in rng.choice([128, 256, 384, 512], size=k))]
    x = featurize(configs)
    terms = base_terms(x)
    coef = np.linspace(1.0, 2.0, terms.shape[1]) / np.maximum(terms.mean(axis=0), 1e-9)  # every term counts
    trees = rng.normal(0.0, 0.05, size=k)
    p = np.log(terms @ coef) + trees
    return MethodInput(x, terms, trees, coef, True, p, p + math.log(factor), 5.0, 0.1, seed)


def predict(m: MethodInput, state: dict[str, Any]) -> np.ndarray:
    """The target's log latency under ``state``, as :class:`~kdnas_bench.predictors.transfer.TransferPredictor`
    computes it."""
    out = state["a"] + state["b"] * (np.log(np.maximum(m.terms @ state["coef"], 1e-9)) + m.trees)
    if state["booster"] is not None:
        out = out + state["booster"].predict(m.x[list(FEATURES)], raw_score=True, num_threads=1)
    return np.asarray(out, dtype=np.float64)


def a_well_formed_state(method: MethodFn) -> None:
    m = method_input()
    state = method(m)
    assert isinstance(state, dict) and {"a", "b", "coef", "booster"} <= set(state), f"state {state!r}"
    assert math.isfinite(float(state["a"])), f"a = {state['a']}"
    assert math.isfinite(float(state["b"])) and float(state["b"]) > 0, f"b = {state['b']} (must be > 0)"
    coef = np.asarray(state["coef"], dtype=np.float64)
    assert coef.shape == m.coef_src.shape, f"coef of shape {coef.shape}, the source's is {m.coef_src.shape}"
    assert np.all(np.isfinite(coef)) and np.all(coef >= 0), f"coef {coef} (finite and >= 0)"


def keeps_the_source_when_the_target_agrees(method: MethodFn) -> None:
    m = method_input()
    err = float(np.max(np.abs(predict(m, method(m)) - m.y)))
    assert err < TOL, f"the target equals the source, yet the transferred prediction is off by {err:.3f} (log)"


def learns_a_constant_factor(method: MethodFn) -> None:
    m = method_input(factor=2.0)
    err = float(np.max(np.abs(predict(m, method(m)) - m.y)))
    assert err < TOL, f"a target 2x slower than the source is predicted {err:.3f} (log) off"


def deterministic(method: MethodFn) -> None:
    m = method_input(factor=1.5)
    one, two = predict(m, method(m)), predict(m, method(m))
    assert np.array_equal(one, two), "the same rows gave different states"


def leaves_its_input_alone(method: MethodFn) -> None:
    m = method_input(factor=1.5)
    before = replace(m, x=m.x.copy(), terms=m.terms.copy(), trees=m.trees.copy(), coef_src=m.coef_src.copy(),
                     p=m.p.copy(), y=m.y.copy())
    method(m)
    for name in ("terms", "trees", "coef_src", "p", "y"):
        assert np.array_equal(getattr(m, name), getattr(before, name)), f"the method changed its input's {name}"
    assert m.x.equals(before.x), "the method changed its input's features"


TRANSFER_METHOD_CHECKS: dict[str, Callable[[MethodFn], None]] = {
    "a_well_formed_state": a_well_formed_state,
    "keeps_the_source_when_the_target_agrees": keeps_the_source_when_the_target_agrees,
    "learns_a_constant_factor": learns_a_constant_factor,
    "deterministic": deterministic,
    "leaves_its_input_alone": leaves_its_input_alone}


def check_transfer_method(method: MethodFn) -> None:
    """Every transfer-method check on ``method``."""
    for check in TRANSFER_METHOD_CHECKS.values():
        check(method)
