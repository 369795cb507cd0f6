"""Evaluator registry: name -> :class:`~.base.Evaluator` subclass. The CLI's ``--evaluator`` choices, the
quickstart, :func:`~kdnas_bench.search.plan.prepare`, the run report and the conformance suite all read
:data:`EVALUATORS`; a new evaluator is one module and one ``register`` here, or, from another package, one entry
point of the group ``kdnas_bench.evaluators`` (:mod:`kdnas_bench.registry`). The name is the one ``run.json``
records as the evaluator's ``kind``; ``proxy`` and ``agnostic``, the names ``--evaluator`` had before, are
accepted for ``proxy-distill`` and ``agnostic-distill``."""

from __future__ import annotations

from ...registry import Registry
from ..request import SearchRequest
from ..result import Evaluation
from .agnostic import AgnosticDistillEvaluator, AgnosticOptions
from .base import Evaluator, EvaluatorContext, default_teacher
from .proxy import ProxyDistillEvaluator, ProxyOptions
from .supernet import SupernetEvaluator
from .table import TableEvaluator, TableOptions


def _is_evaluator(name: str, part: object) -> str | None:
    if not (isinstance(part, type) and issubclass(part, Evaluator)):
        return f"must be a subclass of kdnas_bench.search.evaluators.Evaluator, got {part!r}"
    return None if part.name == name else f"its class is named {part.name!r} (the name run.json records)"


EVALUATORS: Registry[type[Evaluator]] = Registry("evaluator", _is_evaluator)
for _cls in (ProxyDistillEvaluator, SupernetEvaluator, TableEvaluator, AgnosticDistillEvaluator):
    EVALUATORS.register(_cls.name, _cls, aliases=_cls.aliases)


def evaluator_for(req: SearchRequest) -> type[Evaluator]:
    """The evaluator class a request names, after its own cheap checks. The default, ``proxy-distill``, gives way
    to an evaluator of this package that takes the request over: ``table`` when the request has a table,
    ``agnostic-distill`` on ``--task agnostic``."""
    cls = EVALUATORS[req.evaluator]
    if cls.gives_way:
        cls = next((c for c in map(EVALUATORS.__getitem__, EVALUATORS.registered()) if c.takes_over(req)), cls)
    cls.check(req)
    return cls


__all__ = ["EVALUATORS", "AgnosticDistillEvaluator", "AgnosticOptions", "Evaluation", "Evaluator", "EvaluatorContext",
           "ProxyDistillEvaluator", "ProxyOptions", "SupernetEvaluator", "TableEvaluator", "TableOptions",
           "default_teacher", "evaluator_for"]
