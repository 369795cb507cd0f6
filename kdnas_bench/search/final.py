"""After the search: distil each winner on the full task, export it, and check its real latency."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..deploy import deploy_int8, measure_onnx
from ..distill.data import AGNOSTIC, TaskRef
from ..keys import DatasetKey
from ..profiling.backends import BACKENDS
from ..profiling.measure import measure_latency, measure_memory, this_machine_is
from ..profiling.verdict import judge
from ..space import Arch, Shape
from .budgetcheck import budget_share
from .recipe import Recipe
from .result import EventFn, SearchResult


@dataclass(frozen=True)
class FinalJob:
    """What the final distillation of a search's winners needs: the teacher (None with ``task="agnostic"``: the
    packaged MiniLM backbone), the task and its data (``text`` for task-agnostic KD), the predictor's key
    and shape (where and how the students are measured), the recipe (:class:`~.recipe.Recipe`: examples, epochs,
    losses, seed, init and training options), and the memory budget (None: none). Each student starts from the
    recipe's ``init``, or from its sub-network of ``supernet`` when given. A search builds it in one place
    (:func:`~.plan.prepare`, from :attr:`~.request.SearchRequest.final_recipe`)."""

    teacher: str | None
    task: TaskRef  # a GLUE name, "agnostic", or a Task of one's own
    key: DatasetKey
    shape: Shape
    recipe: Recipe
    data_dir: str | None = None
    text: str | None = None
    supernet: str | None = None
    budget_mb: float | None = None
    progress: bool = False
    accelerator: str = "cpu"  # where the students train (measuring is the latency device's business)
    reference_ms: float | None = None  # the predictor's reference canary: each winner is timed with the canary

    # the recipe's values, read by the steps that distil with it (the baselines)
    @property
    def examples(self) -> int | None:
        return self.recipe.examples

    @property
    def epochs(self) -> float:
        return self.recipe.epochs

    @property
    def losses(self) -> str | None:
        return self.recipe.losses

    @property
    def seed(self) -> int:
        return self.recipe.seed

    @property
    def init(self) -> str:
        return self.recipe.init

    @property
    def training(self) -> dict[str, Any]:
        """max_length, eval_every, early_stopping, log_to: keyword arguments of distill."""
        return self.recipe.training()


def _training(job: FinalJob, out: Path) -> dict[str, Any]:
    """The job's distillation options for the student in ``out`` (a tracker logs into ``out/logs``)."""
    options = job.recipe.distill_kwargs()
    if options.get("log_to"):
        options["log_dir"] = str(out / "logs")
    return options


def _deploy(out: Path, arch: Arch, job: FinalJob, fp32_metrics: dict[str, float], local: bool) -> dict[str, Any]:
    """An int8 backend deploys the quantized student: score it on dev, and measure that very file."""

    k = job.key
    report = deploy_int8(out, task=job.task, data_dir=job.data_dir, fp32_metrics=fp32_metrics, threads=k.threads)
    info: dict[str, Any] = {"quantized": report, "deployed_metric": report["metric"], "deployed": report["onnx"]}
    if local:
        vocab = int(json.loads((out / "config.json").read_text(encoding="utf-8")).get("vocab_size", 30522))
        info |= measure_onnx(report["onnx"], arch, job.shape, backend=k.backend, threads=k.threads, vocab_size=vocab)
    return info


def finalize(result: SearchResult, job: FinalJob) -> SearchResult:
    """Fully distil every distinct winner into ``RUN/final/<arch>/`` (HF + safetensors + ONNX + metrics.json);
    when this machine is the named device, measure the exported student (in rounds until quiet) and judge the
    budget (:func:`~kdnas_bench.profiling.verdict.judge`: held, over, or not judged on a noisy machine;
    ``budget_held`` None when not judged). On an int8 backend the student is quantized, its int8 dev metric
    reported beside fp32, and the *deployed* int8 file measured against the budget; with ``budget_mb`` the
    measured peak memory is held against it too. With ``reference_ms`` each winner is timed with the canary and
    the machine's speed factor in those seconds is recorded (``measured_speed_factor``,
    ``measured_at_reference_ms``). A winner whose final distillation runs out of GPU memory is recorded with
    ``final_error`` and the next one goes on. Returns a new result; ``result`` is left as it was."""
    from ..distill.accelerator import (  # noqa: PLC0415  lazy: torch (via distill.accelerator)
        failure_message,
        free_memory,
    )
    from ..distill.trainer import distill  # noqa: PLC0415  lazy: torch (via distill.trainer)
    from ..supernet import load as load_supernet  # noqa: PLC0415  lazy: torch (via supernet.store)

    k = job.key
    local = this_machine_is(k.device_id, k.backend)
    int8 = BACKENDS[k.backend].precision == "int8" and job.task != AGNOSTIC
    net = None if job.supernet is None else load_supernet(job.supernet)[0]
    done: dict[Arch, dict[str, Any]] = {}
    winners = []
    for w in result.winners:
        if w.arch not in done:
            out = Path(result.run_dir) / "final" / f"{w.arch.layers}L-{w.arch.hidden}H-{w.arch.heads}A-{w.arch.ffn}F"
            message: str | None = None
            try:
                res = distill(job.teacher, job.task, w.arch, data_dir=job.data_dir, text=job.text, out=out,
                              progress=job.progress, accelerator=job.accelerator, **_training(job, out),
                              init_model=None if net is None else net.extract(w.arch),
                              allow_weak_teacher=True)  # the search checked its teacher before any work
            except Exception as exc:
                message = failure_message(exc)
                if message is None:
                    raise
            if message is not None:
                free_memory()
                done[w.arch] = {"final_error": message, "measured_latency_ms": None}
            else:
                info: dict[str, Any] = {"final_metrics": res.metrics, "final_metric": res.primary,
                                        "final_train_examples": res.train_examples,
                                        "final_train_seconds": res.train_seconds, "student_dir": str(out),
                                        "final_init": "supernet" if job.supernet else job.init}
                if int8:
                    info |= _deploy(out, w.arch, job, res.metrics, local)
                elif local:
                    info |= measure_latency(w.arch, job.shape, k.backend, k.threads, reference_ms=job.reference_ms,
                                            until_quiet=True)
                    if job.budget_mb is not None:
                        info |= measure_memory(w.arch, job.shape, k.backend, k.threads)
                info.setdefault("measured_latency_ms", None)
                done[w.arch] = info
        extra = dict(done[w.arch])
        verdict = judge(extra, w.budget_ms, w.predicted_latency_ms_high)  # a noisy timing judges nothing
        extra["budget_held"] = None if verdict is None or verdict.kind == "not judged" else verdict.kind == "held"
        if verdict is not None:
            extra |= verdict.to_extra()
        measured = extra.get("measured_latency_ms")
        extra |= {} if measured is None else budget_share(measured, w.budget_ms, "measured (final)")
        if job.budget_mb is not None:
            peak = extra.get("measured_peak_mb")
            extra["budget_mb"] = job.budget_mb
            extra["memory_held"] = None if peak is None else bool(peak <= job.budget_mb)
        extra["measured_on_this_machine"] = local
        winners.append(replace(w, extra={**w.extra, **extra}))
    return replace(result, winners=winners)


@dataclass(frozen=True)
class FinalStep:
    """The post-step: :func:`finalize` with ``job``."""

    job: FinalJob
    emit: EventFn

    def __call__(self, result: SearchResult) -> SearchResult:
        self.emit("message", {"text": "final distillation of the winners …"})
        return finalize(result, self.job)


__all__ = ["FinalJob", "FinalStep", "finalize", "measure_latency", "this_machine_is"]
