"""A toy kdnas-bench evaluator, packaged as an outside plugin: this module and the entry point in its
pyproject.toml (group ``kdnas_bench.evaluators``) are all it takes for ``kdnas-bench search --evaluator toy``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kdnas_bench.search.evaluators import Evaluation, Evaluator, EvaluatorContext
from kdnas_bench.search.request import SearchRequest
from kdnas_bench.space import Arch


@dataclass(frozen=True)
class ToyOptions:
    """The toy evaluator's one option: how high its scores go."""

    scale: float = 1.0

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"scale must be positive, got {self.scale}")


class ToyEvaluator(Evaluator):
    """Scores an arch by a smooth function of its size: no teacher, no data, no training."""

    name = "toy"
    distils = False  # no teacher to distil the winners from
    Options = ToyOptions

    def __init__(self, options: ToyOptions) -> None:
        self.options = options

    @classmethod
    def from_request(cls, req: SearchRequest, ctx: EvaluatorContext) -> ToyEvaluator:
        return cls(cls.options_of(req))

    def evaluate(self, arch: Arch) -> Evaluation:
        size = arch.layers * arch.hidden
        metric = self.options.scale * size / (1.0 + size)
        return Evaluation(metric, "toy", {"toy": metric})

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name, "scale": self.options.scale}

    @classmethod
    def explain(cls, entry: dict[str, Any]) -> str:
        return f"Scores: the toy size score, up to {entry.get('scale')}, no training."

    @classmethod
    def score_label(cls, metric_name: str) -> str:
        return f"{metric_name} (toy size score)"
