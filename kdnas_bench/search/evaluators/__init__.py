"""Evaluator registry: name -> :class:`~.base.Evaluator` subclass. The CLI's ``--evaluator`` choices, the
quickstart, :func:`~kdnas_bench.search.plan.prepare` and the conformance suite all read :data:`EVALUATORS`; a new
evaluator is one module and one entry here."""

from __future__ import annotations

from ..domain import SearchError
from ..request import SearchRequest
from ..result import Evaluation
from .agnostic import AgnosticDistillEvaluator
from .base import Evaluator, EvaluatorContext, default_teacher
from .proxy import ProxyDistillEvaluator
from .supernet import SupernetEvaluator
from .table import TableEvaluator

EVALUATORS: dict[str, type[Evaluator]] = {"proxy": ProxyDistillEvaluator, "supernet": SupernetEvaluator,
                                          "table": TableEvaluator, "agnostic": AgnosticDistillEvaluator}


def evaluator_for(req: SearchRequest) -> type[Evaluator]:
    """The evaluator class a request names, after its own cheap checks. The default, ``proxy``, gives way to
    ``table`` when the request has a table and to ``agnostic`` on ``--task agnostic``."""
    name = req.evaluator
    if name not in EVALUATORS:
        raise SearchError(f"unknown evaluator '{name}' (choose from {', '.join(EVALUATORS)})")
    if name == "proxy":
        name = "table" if req.table else "agnostic" if req.agnostic else name
    cls = EVALUATORS[name]
    cls.check(req)
    return cls


__all__ = ["EVALUATORS", "AgnosticDistillEvaluator", "Evaluation", "Evaluator", "EvaluatorContext",
           "ProxyDistillEvaluator", "SupernetEvaluator", "TableEvaluator", "default_teacher", "evaluator_for"]
