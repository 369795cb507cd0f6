"""Contract checks for every pluggable part, shipped with the package (as scikit-learn ships
``check_estimator``), one per registry of :mod:`kdnas_bench.registry`, so a backend, strategy, KD loss, evaluator,
executor or transfer method written outside this repository can check itself: ``check_backend(spec)``,
``check_strategy(factory)``, ``check_loss(factory)``, ``check_evaluator(evaluator, archs)`` (or
``check_evaluator_class``), ``check_executor(factory)``, ``check_transfer_method(method)``. Each runs every check
of its contract and raises ``AssertionError`` naming the one that failed; the ``*_CHECKS`` dicts hold the single
checks (the repository's tests parametrise them over the registries). Needs no test framework. Names are
imported on first use (see :mod:`kdnas_bench.lazy`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:
    from .backends import BACKEND_CHECKS, check_backend
    from .contracts import CHECKS
    from .evaluators import EVALUATOR_CHECKS, check_evaluator, check_evaluator_class, evaluator_context
    from .executors import EXECUTOR_CHECKS, check_executor
    from .losses import LOSS_CHECKS, check_loss
    from .strategies import STRATEGY_CHECKS, check_strategy
    from .transfer_methods import TRANSFER_METHOD_CHECKS, check_transfer_method

__all__ = ["BACKEND_CHECKS", "CHECKS", "EVALUATOR_CHECKS", "EXECUTOR_CHECKS", "LOSS_CHECKS", "STRATEGY_CHECKS",
           "TRANSFER_METHOD_CHECKS", "check_backend", "check_evaluator", "check_evaluator_class", "check_executor",
           "check_loss", "check_strategy", "check_transfer_method", "evaluator_context"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "BACKEND_CHECKS": "backends", "check_backend": "backends",
    "CHECKS": "contracts",
    "EVALUATOR_CHECKS": "evaluators", "check_evaluator": "evaluators", "check_evaluator_class": "evaluators",
    "evaluator_context": "evaluators",
    "EXECUTOR_CHECKS": "executors", "check_executor": "executors",
    "LOSS_CHECKS": "losses", "check_loss": "losses",
    "STRATEGY_CHECKS": "strategies", "check_strategy": "strategies",
    "TRANSFER_METHOD_CHECKS": "transfer_methods", "check_transfer_method": "transfer_methods",
})
