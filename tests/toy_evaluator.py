"""A toy evaluator, as a plugin author would write one: one class, one registry line. Loaded as a pytest plugin
(``pytest -p tests.toy_evaluator``) it registers itself, and the evaluator suite in test_evaluators.py runs it."""

from __future__ import annotations

from typing import Any

from kdnas_bench.search.evaluators import EVALUATORS, Evaluation, Evaluator, EvaluatorContext
from kdnas_bench.search.request import SearchRequest
from kdnas_bench.space import Arch


class ToyEvaluator(Evaluator):
    """Scores an arch by a smooth function of its size (no teacher, no data)."""

    name = "toy"

    def __init__(self, scale: float) -> None:
        self.scale = scale

    @classmethod
    def from_request(cls, req: SearchRequest, ctx: EvaluatorContext) -> ToyEvaluator:
        return cls(scale=1.0 + req.seed)

    def evaluate(self, arch: Arch) -> Evaluation:
        metric = self.scale * arch.layers * arch.hidden / (1.0 + arch.layers * arch.hidden)
        return Evaluation(metric, "toy", {"toy": metric})

    def describe(self) -> dict[str, Any]:
        return {"kind": "toy", "scale": self.scale}


EVALUATORS["toy"] = ToyEvaluator  # the one registry line
