"""``agnostic-distill`` (``agnostic`` for short): task-agnostic distillation. The candidate learns the teacher's
representations on unlabeled text and is scored by ``kd_score = exp(-held-out KD loss)``: a search without task
data (``--task agnostic``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...defaults import DEFAULTS
from ...distill.data import AGNOSTIC
from ...distill.teacher import load_teacher
from ...space import Arch
from ..domain import SearchError
from ..request import SearchRequest, check_positive
from ..result import Evaluation
from .base import Evaluator, EvaluatorContext
from .proxy import timed


@dataclass(frozen=True)
class AgnosticOptions:
    """``agnostic-distill``'s options: the ``text`` file (one passage per line; None: the stdlib docstrings),
    ``examples`` passages x ``epochs`` per candidate."""

    text: str | None = None
    examples: int = DEFAULTS.proxy_examples
    epochs: float = DEFAULTS.proxy_epochs

    def __post_init__(self) -> None:
        check_positive(**{"--proxy-examples": self.examples, "--proxy-epochs": self.epochs})


@dataclass(frozen=True)
class AgnosticDistillEvaluator(Evaluator):
    """Distil the candidate on ``proxy_examples`` passages of ``text`` (one per line; None: the stdlib
    docstrings) from ``teacher`` (None: the packaged MiniLM backbone) and score it on held-out passages
    (:func:`~kdnas_bench.distill.trainer.distill_text`)."""

    name = "agnostic-distill"
    aliases = ("agnostic",)  # what ``--evaluator`` called it before the registry named it as run.json does
    inputs = "text"
    Options = AgnosticOptions

    teacher: str | None = field()  # required; None: the packaged MiniLM backbone
    text: str | None = None
    proxy_examples: int | None = DEFAULTS.proxy_examples
    epochs: float = DEFAULTS.proxy_epochs
    losses: str | None = None  # None: DEFAULTS.agnostic_losses
    lr: float = DEFAULTS.distill_lr
    seed: int = 0
    threads: int = 1
    accelerator: str = "cpu"  # where each candidate trains (distill.accelerator); in run.json when not the CPU

    @classmethod
    def check(cls, req: SearchRequest) -> None:
        if not req.agnostic:
            raise SearchError(f"--evaluator agnostic needs --task agnostic, got --task {req.task}")

    @classmethod
    def takes_over(cls, req: SearchRequest) -> bool:
        return req.agnostic

    @classmethod
    def options_from_fields(cls, req: SearchRequest) -> AgnosticOptions:
        return AgnosticOptions(req.text, req.proxy_examples, req.proxy_epochs)

    @classmethod
    def from_request(cls, req: SearchRequest, ctx: EvaluatorContext) -> AgnosticDistillEvaluator:
        from ...distill.agnostic import load_text  # noqa: PLC0415  lazy: torch (via distill.agnostic)

        opts = cls.options_of(req)
        if req.teacher is not None:
            load_teacher(req.teacher)  # fail fast on a missing teacher
        ctx.teacher_space(req.teacher)
        _, source = load_text(opts.text)
        ctx.say(f"task-agnostic distillation: teacher {req.teacher or 'the packaged all-MiniLM-L6-v2 backbone'}, "
                f"text: {source}")
        return cls(teacher=req.teacher, text=opts.text, proxy_examples=opts.examples, epochs=opts.epochs,
                   losses=ctx.losses, seed=req.seed, accelerator=ctx.candidate_accelerator)

    def _state(self) -> tuple[Any, Any]:
        def load() -> tuple[Any, Any]:
            from ...distill.agnostic import (  # noqa: PLC0415  lazy: torch (via distill.agnostic)
                default_teacher,
                load_text,
                prepare_text,
            )

            teacher = default_teacher() if self.teacher is None else load_teacher(self.teacher)
            return teacher, prepare_text(teacher.tokenizer, load_text(self.text), max_examples=self.proxy_examples,
                                         seed=self.seed)

        return self.loaded(load)  # type: ignore[no-any-return]

    def evaluate(self, arch: Arch) -> Evaluation:
        from ...distill.trainer import (  # noqa: PLC0415  lazy: torch (via distill.trainer)
            DistillOptions,
            distill_text,
        )

        teacher, data = self._state()
        opts = DistillOptions(epochs=self.epochs, losses=self.losses or DEFAULTS.agnostic_losses, seed=self.seed,
                              lr=self.lr, accelerator=self.accelerator)
        return timed(self.threads, lambda: distill_text(teacher, arch, opts, data=data))

    def describe(self) -> dict[str, Any]:
        """The keys a task-agnostic ``run.json`` always had (``task`` included), so old runs resume."""
        return {"kind": self.name, "task": AGNOSTIC, "teacher": self.teacher, "text": self.text,
                "proxy_examples": self.proxy_examples, "epochs": self.epochs, "losses": self.losses, "lr": self.lr,
                "seed": self.seed, "threads": self.threads, **({"accelerator": self.accelerator}
                                                                if self.accelerator != "cpu" else {})}

    @classmethod
    def explain(cls, entry: dict[str, Any]) -> str:
        return (f"Scores: task-agnostic distillation (kd_score) from {entry.get('teacher') or 'the packaged MiniLM'} "
                f"on {entry.get('proxy_examples')} passages of {entry.get('text') or 'Python stdlib docstrings'} x "
                f"{float(entry.get('epochs') or 0):g} epochs (losses {entry.get('losses')}).")

    @classmethod
    def score_label(cls, metric_name: str) -> str:
        return f"proxy {metric_name} (task-agnostic KD)"
