"""``proxy-distill`` (``proxy`` for short): distil the candidate from the task's teacher on a seeded subset of
the task's examples and score it on dev (the KD-NAS paper's evaluator)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ...defaults import DEFAULTS, INITS
from ...distill.taskspec import TaskRef
from ...distill.teacher import load_teacher
from ...space import Arch
from ..request import SearchRequest, check_choice, check_positive
from ..result import Evaluation
from .base import Evaluator, EvaluatorContext, extract, no_cpu, task_fields


def timed(threads: int, run: Any) -> Evaluation:
    """Run one distillation with ``threads`` torch threads (so local and Ray executors agree) and wrap its result;
    a ``teacher_fidelity`` among its metrics becomes the evaluation's tie-breaker (``secondary``)."""
    import torch  # noqa: PLC0415  lazy: torch

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    res = run()
    metrics = dict(res.metrics)
    fidelity = metrics.pop("teacher_fidelity", None)
    return Evaluation(res.primary, res.primary_metric, metrics, time.perf_counter() - t0, secondary=fidelity,
                      secondary_name=None if fidelity is None else "-kd_loss")


@dataclass(frozen=True)
class ProxyOptions:
    """``proxy-distill``'s options: ``examples`` stratified training examples x ``epochs`` per candidate, the
    student's ``init`` (:func:`~kdnas_bench.distill.trainer.init_student`)."""

    examples: int = DEFAULTS.proxy_examples
    epochs: float = DEFAULTS.proxy_epochs
    init: str = "inherit"

    def __post_init__(self) -> None:
        check_positive(**{"--proxy-examples": self.examples, "--proxy-epochs": self.epochs})
        check_choice("init", self.init, INITS)


@dataclass(frozen=True)
class ProxyDistillEvaluator(Evaluator):
    """Distil the candidate from ``teacher`` on ``proxy_examples`` stratified training examples of ``task`` and
    score it by the task's dev metric (:func:`~kdnas_bench.distill.trainer.distill_task`). The teacher and data
    are loaded once per evaluator and the teacher's outputs cached; with ``supernet``, every candidate starts
    from its sub-network of that supernet folder (the re-ranking after a supernet search)."""

    name = "proxy-distill"
    aliases = ("proxy",)  # what ``--evaluator`` called it before the registry named it as run.json does
    gives_way = True  # the request's default: a table or unlabeled text takes over
    Options = ProxyOptions

    teacher: str | None = field()  # required (the base's None is its default for evaluators without one)
    task: TaskRef  # a GLUE name, or a Task of one's own
    data_dir: str | None = None
    proxy_examples: int | None = DEFAULTS.proxy_examples
    epochs: float = DEFAULTS.proxy_epochs
    losses: str | None = None  # None: DEFAULTS.search_losses
    lr: float = DEFAULTS.distill_lr
    seed: int = 0
    threads: int = 1  # fixed, so local and Ray executors give identical numbers
    init: str = "inherit"  # student init (distill.trainer.init_student), unless ``supernet`` is given
    supernet: str | None = None  # start every candidate from its sub-network of this supernet folder
    accelerator: str = "cpu"  # where each candidate trains (distill.accelerator); in run.json when not the CPU

    @classmethod
    def options_from_fields(cls, req: SearchRequest) -> ProxyOptions:
        return ProxyOptions(req.proxy_examples, req.proxy_epochs, req.init)

    @classmethod
    def from_request(cls, req: SearchRequest, ctx: EvaluatorContext) -> ProxyDistillEvaluator:
        opts = cls.options_of(req)
        return cls(teacher=ctx.task_teacher(), task=ctx.task, data_dir=req.data_dir, proxy_examples=opts.examples,
                   epochs=opts.epochs, losses=ctx.losses, seed=req.seed, init=opts.init,
                   accelerator=ctx.candidate_accelerator)

    def _state(self) -> tuple[Any, Any, Any, Any]:
        def load() -> tuple[Any, Any, Any, Any]:
            from ...distill.training import (  # noqa: PLC0415  lazy: torch (via distill.training)
                logits_of,
                prepare_data,
            )
            from ...supernet import load as load_supernet  # noqa: PLC0415  lazy: torch (via supernet.store)

            teacher = load_teacher(str(self.teacher), task=self.task)
            data = prepare_data(teacher.tokenizer, self.task, data_dir=self.data_dir, max_examples=self.proxy_examples,
                                seed=self.seed)
            reference = logits_of(teacher.model, data.dev)  # the teacher's dev outputs: the tie-breaker's reference
            return teacher, data, None if self.supernet is None else load_supernet(self.supernet)[0], reference

        return self.loaded(load)  # type: ignore[no-any-return]

    def evaluate(self, arch: Arch) -> Evaluation:
        from ...distill.trainer import (  # noqa: PLC0415  lazy: torch (via distill.trainer)
            DistillOptions,
            distill_task,
        )

        teacher, data, supernet, reference = self._state()
        start = None if supernet is None else extract(supernet, arch)
        opts = DistillOptions(epochs=self.epochs, losses=self.losses or DEFAULTS.search_losses, seed=self.seed,
                              lr=self.lr, init=self.init, accelerator=self.accelerator)
        return timed(self.threads, lambda: distill_task(teacher, self.task, arch, opts, data=data, init_model=start,
                                                        fidelity_to=reference))

    def describe(self) -> dict[str, Any]:
        """What ``run.json`` records (its keys as before the evaluators had a registry, so old runs resume)."""
        return no_cpu({"kind": self.name, **asdict(self), **task_fields(self.task)})

    @classmethod
    def explain(cls, entry: dict[str, Any]) -> str:
        return (f"Scores: proxy distillation of each candidate from teacher {entry.get('teacher')} on "
                f"{entry.get('proxy_examples')} {entry.get('task')} examples x {float(entry.get('epochs') or 0):g} "
                f"epochs (losses {entry.get('losses')}, learning rate {entry.get('lr')}, init "
                f"{entry.get('init', 'inherit')}).")

    @classmethod
    def score_label(cls, metric_name: str) -> str:
        return f"proxy {metric_name} (proxy distillation)"
