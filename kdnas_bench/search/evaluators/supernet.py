"""``supernet``: one-shot evaluation. A weight-sharing supernet of the teacher's students is trained once per
teacher, task and space (``RUN/supernet``, or reused when it matches); a candidate is scored by its
sub-network on dev (seconds instead of a distillation), and the best ones per budget are then re-ranked by
proxy distillation from their supernet weights (:mod:`~kdnas_bench.search.rerank`)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ... import supernet as supernet_pkg  # names read on first use (no torch at import)
from ...defaults import DEFAULTS
from ...distill.data import TaskRef, encode, get_task, load_split
from ...distill.lengths import recorded_max_length
from ...distill.teacher import load_teacher
from ...lazy import lazy_module
from ...space import Arch, SearchSpace
from ..domain import SearchError
from ..request import SearchRequest, SupernetOptions
from ..rerank import RerankConfig, RerankStep
from ..result import Evaluation, PostStep
from .base import Evaluator, EvaluatorContext, extract, no_cpu, task_fields
from .proxy import ProxyDistillEvaluator

if TYPE_CHECKING:
    import torch

    from ...distill import accelerator as accel
    from ...distill import inherit, training
    from ...supernet import train as supernet_train
else:  # torch and the training stack load on first use
    torch = lazy_module("torch")
    accel = lazy_module("kdnas_bench.distill.accelerator")
    inherit = lazy_module("kdnas_bench.distill.inherit")
    training = lazy_module("kdnas_bench.distill.training")
    supernet_train = lazy_module("kdnas_bench.supernet.train")


@dataclass(frozen=True)
class SupernetEvaluator(Evaluator):
    """Score the candidate's sub-network, extracted from the trained supernet in ``supernet`` (checked by hash
    against teacher, task and space), on dev. ``rerank``: re-rank the best per budget by proxy distillation
    with ``losses`` afterwards (None: no re-ranking)."""

    name = "supernet"
    oneshot = True
    Options = SupernetOptions

    supernet: str = field()  # type: ignore[assignment]  # required (the base's None is for the others)
    teacher: str = field()  # type: ignore[assignment]
    task: TaskRef  # a GLUE name, or a Task of one's own
    space: str
    data_dir: str | None = None
    threads: int = 1
    rerank: RerankConfig | None = None
    losses: str | None = None
    seed: int = 0
    accelerator: str = "cpu"  # where sub-networks are scored (distill.accelerator); in run.json when not the CPU

    @classmethod
    def check(cls, req: SearchRequest) -> None:
        if req.table or req.agnostic:
            raise SearchError("--evaluator supernet needs a GLUE task and a teacher (not --table or --task agnostic)")
        if req.supernet.rerank_by == "fidelity" and not req.reward.hard:
            raise SearchError("--rerank-by fidelity ranks students within the budget by their closeness to the teacher "
                              "and has no latency term: use it with the hard reward (not --reward soft)")

    @classmethod
    def options_from_fields(cls, req: SearchRequest) -> SupernetOptions:
        return req.supernet

    @classmethod
    def from_request(cls, req: SearchRequest, ctx: EvaluatorContext) -> SupernetEvaluator:
        opts = cls.options_of(req)
        teacher = ctx.task_teacher()
        supernet_pkg.space_fits(ctx.space, inherit.TeacherShape.of(load_teacher(teacher).model.config))  # before any training
        return cls(supernet=str(Path(opts.folder) if opts.folder else ctx.run / "supernet"), teacher=teacher,
                   task=ctx.task, space=ctx.space_file, data_dir=req.data_dir, seed=req.seed, losses=ctx.losses,
                   accelerator=ctx.candidate_accelerator,
                   rerank=RerankConfig(opts.rerank_top, opts.rerank_examples, opts.rerank_epochs, by=opts.rerank_by,
                                       lr=opts.rerank_lr)
                   if opts.rerank_top else None)

    def setup(self, ctx: EvaluatorContext) -> None:
        """Reuse the supernet in its folder (checked against teacher, task and space) or train it there."""
        opts = self.options_of(ctx.request)

        def started(info: dict[str, Any]) -> None:
            what = "resuming" if info["start"] else "training"
            ctx.say(f"{what} the supernet in {self.supernet}: {info['total']} steps (sandwich: {info['largest']} + "
                    f"{info['smallest']} + 2 random per step; {opts.examples} examples × {opts.epochs:g} epochs)")

        _, doc = supernet_train.ensure_supernet(self.teacher, self.task, ctx.space, self.supernet, data_dir=self.data_dir,
                                 cfg=supernet_train.SupernetConfig(examples=opts.examples, epochs=opts.epochs, seed=self.seed),
                                 progress=ctx.progress, on_start=started, accelerator=ctx.accelerator)
        ctx.say(f"supernet {self.supernet}: trained in {doc.get('train_seconds', 0):.0f} s ({doc.get('steps')} steps)")

    def post_steps(self, ctx: EvaluatorContext) -> list[PostStep]:
        if self.rerank is None:
            return []
        return [RerankStep(ctx.run, ctx.request.reward, self.rerank,
                           lambda examples, epochs: self.proxy(examples, epochs, ctx.accelerator), ctx.emit,
                           ctx.budget_gate)]

    def proxy(self, examples: int, epochs: float, accelerator: str = "cpu") -> ProxyDistillEvaluator:
        """The proxy evaluator of a re-ranking rung: each candidate starts from its supernet weights, trained at
        the re-ranking's learning rate (distill's default unless set)."""
        lr = self.rerank.lr if self.rerank is not None and self.rerank.lr is not None else DEFAULTS.distill_lr
        return ProxyDistillEvaluator(teacher=self.teacher, task=self.task, data_dir=self.data_dir,
                                     proxy_examples=examples, epochs=epochs, losses=self.losses, seed=self.seed,
                                     supernet=self.supernet, accelerator=accelerator, lr=lr)

    def _state(self) -> tuple[Any, Any, Any]:
        def load() -> tuple[Any, Any, Any]:
            task = get_task(self.task)
            teacher = load_teacher(self.teacher, task=task)
            net, doc = supernet_pkg.load(self.supernet)
            supernet_pkg.check_recipe(doc, Path(self.supernet), teacher=teacher, task=task, space=SearchSpace.load(self.space))
            length = recorded_max_length(doc["recipe"])  # the length the supernet was trained with
            dev = encode(load_split(task, "dev", self.data_dir), teacher.tokenizer, max_length=length)
            torch.set_num_threads(self.threads)
            return net, dev, training.logits_of(teacher.model, dev)  # the teacher's dev outputs: the tie-breaker's reference

        return self.loaded(load)  # type: ignore[no-any-return]

    def evaluate(self, arch: Arch) -> Evaluation:
        """The sub-network's dev metrics; ties of the metric are broken by its fidelity to the teacher on the
        same examples (``secondary``: minus the KD loss)."""
        net, dev, teacher_logits = self._state()
        task = get_task(self.task)
        torch.set_num_threads(self.threads)
        acc = accel.resolve(self.accelerator)
        accel.apply_precision_settings(acc)
        t0 = time.perf_counter()
        logits = training.logits_of(extract(net, arch).to(acc.device), dev)
        metrics = task.score(training.predictions(logits, task), dev.labels)
        return Evaluation(metrics[task.primary_metric], task.primary_metric, metrics, time.perf_counter() - t0,
                          secondary=training.teacher_fidelity(logits, teacher_logits, task), secondary_name="-kd_loss")

    def describe(self) -> dict[str, Any]:
        d = asdict(self)
        _, losses = d.pop("rerank"), d.pop("losses")
        d.pop("seed")
        extra = {"rerank": self.rerank.to_dict(), "losses": losses} if self.rerank else {}
        return no_cpu({"kind": self.name, **d, **task_fields(self.task), **extra})

    @classmethod
    def explain(cls, entry: dict[str, Any]) -> str:
        rr = entry.get("rerank") or {}
        rer = (f" The best {rr.get('top')} per budget were re-ranked by proxy distillation in rungs of successive "
               f"halving: {rr.get('examples')} examples x {rr.get('epochs', 0):g} epochs first"
               + (f" at learning rate {rr['lr']:g}" if rr.get("lr") else "") + f", x{rr.get('eta', 2)} "
               "examples per rung, half kept each time." if rr.get("top") else " No proxy re-ranking.")
        return (f"Scores: one-shot, each candidate scored as a sub-network of the supernet in {entry.get('supernet')} "
                f"(teacher {entry.get('teacher')}, task {entry.get('task')}, losses {entry.get('losses')}).{rer}")

    @classmethod
    def score_label(cls, metric_name: str) -> str:
        return f"one-shot {metric_name} (supernet sub-network)"
