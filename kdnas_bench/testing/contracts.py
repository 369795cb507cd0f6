"""Each registry's kind (:data:`kdnas_bench.registry.GROUPS`) and its contract check."""

from __future__ import annotations

from .backends import check_backend
from .evaluators import check_evaluator_class
from .executors import check_executor
from .losses import check_loss
from .strategies import check_strategy
from .transfer_methods import check_transfer_method

CHECKS = {"backend": check_backend, "strategy": check_strategy, "loss": check_loss, "evaluator": check_evaluator_class,
          "executor": check_executor, "transfer method": check_transfer_method}
