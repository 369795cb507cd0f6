"""The quickstart's steps as values: each holds exactly what its library call gets, and derives from it the
command line that does the same by hand (``kdnas-bench profile ...``, ``kdnas-bench search ...``). The command
printed and the call made come from the same object, so they cannot drift apart."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..distill.data import Task
from ..profiling.timing import TimingConfig
from ..search.asking import is_oneshot

if TYPE_CHECKING:
    from ..search.request import SearchRequest

# a brief profile: fewer and shorter timings per config than the default campaign
FAST_TIMING = TimingConfig(warmup=3, min_calls=10, min_seconds=0.2, max_seconds=2.0)
TIMING_OPTIONS = ("warmup", "min_calls", "min_seconds", "max_seconds")  # the timing a step's command line sets


def number(value: float) -> str:
    """A number as typed: ``2`` for 2.0, ``0.5``; the exact repr when the short form would round it."""
    text = f"{value:g}"
    return text if float(text) == value else repr(value)


def task_argv(task: Any, data_dir: str | None) -> list[str]:
    """The command-line options that name ``task`` again: a GLUE name (with ``--data-dir``), or the files, columns
    and metric of a task of one's own."""
    if not isinstance(task, Task) or task.is_glue:
        name = task.name if isinstance(task, Task) else str(task)
        return ["--task", name, *(["--data-dir", str(data_dir)] if data_dir else [])]
    out = (["--dataset", str(task.dataset)] if task.dataset else
           ["--train-file", str(task.train_file), "--validation-file", str(task.validation_file)])
    return [*out, "--task", task.name, "--text-columns", ",".join(task.text_fields), "--label-column",
            task.label_column, "--metric", task.primary_metric]


class Step:
    """A step of the pipeline: :meth:`argv` is the ``kdnas-bench`` command line that does the same."""

    name = ""

    def argv(self) -> list[str]:
        raise NotImplementedError

    @property
    def command(self) -> str:
        return "kdnas-bench " + shlex.join(self.argv())


@dataclass(frozen=True)
class ProfileStep(Step):
    """Profile ``samples`` configs of the default space on this machine into ``store``."""

    store: Path
    samples: int
    seed: int
    backend: str = "torch"
    threads: int = 1
    timing: TimingConfig = FAST_TIMING
    name = "profile"

    def argv(self) -> list[str]:
        timing = [a for k in TIMING_OPTIONS for a in (f"--{k.replace('_', '-')}", number(getattr(self.timing, k)))]
        return ["profile", "--backend", self.backend, "--threads", str(self.threads), "--samples", str(self.samples),
                "--store", str(self.store), "--seed", str(self.seed), *timing]


@dataclass(frozen=True)
class FitStep(Step):
    """Fit ``device_id``'s predictor from ``store`` into ``out``: by few-shot transfer on ``samples`` rows from
    ``source_device``'s committed predictor (in ``source_root``), or from scratch when there is none."""

    device_id: str
    store: Path
    out: Path
    source_device: str | None = None
    source_root: Path | None = None
    samples: int | None = None
    backend: str = "torch"
    threads: int = 1
    name = "fit"

    def argv(self) -> list[str]:
        args = ["fit", "--device", self.device_id, "--backend", self.backend, "--threads", str(self.threads),
                "--store", str(self.store), "--out", str(self.out)]
        if self.source_device is not None:
            args += ["--from-device", self.source_device, "--predictors", str(self.source_root),
                     "--samples", str(self.samples)]
        return args


@dataclass(frozen=True)
class TeacherStep(Step):
    """Fine-tune the packaged MiniLM on ``task`` (``max_examples`` x ``epochs``) into ``out``."""

    task: Task
    data_dir: str | None
    max_examples: int
    seed: int
    accelerator: str
    out: Path
    epochs: float = 1.0
    threads: int = 1
    name = "teacher finetune"

    def argv(self) -> list[str]:
        return ["teacher", "finetune", *task_argv(self.task, self.data_dir), "--max-examples", str(self.max_examples),
                "--epochs", number(self.epochs), "--seed", str(self.seed), "--threads", str(self.threads),
                "--accelerator", self.accelerator, "--out", str(self.out)]


@dataclass(frozen=True)
class SearchStep(Step):
    """The search ``request`` describes, with its final distillation and measurement."""

    request: SearchRequest
    name = "search"

    def argv(self) -> list[str]:
        req, final = self.request, self.request.final
        args = ["search", "--device", req.key.device_id, "--backend", req.key.backend, "--threads", str(req.key.threads),
                *[a for b in req.budgets_ms for a in ("--budget-ms", str(b))], *task_argv(req.task, None),
                "--space", str(req.space), "--episodes", str(req.episodes), "--candidates", str(req.candidates),
                "--proxy-examples", str(req.proxy_examples), "--proxy-epochs", number(req.proxy_epochs)]
        if final is not None:
            args += ["--final", "--final-examples", str(final.examples), "--final-epochs", number(final.epochs)]
            if not req.agnostic:  # task-agnostic KD has no task head to compare baselines on
                args += ["--baselines", ",".join(final.baselines) or "none"]
        args += ["--predictors", str(req.predictors), "--out", str(req.run_dir), "--seed", str(req.seed),
                 "--accelerator", req.accelerator]
        return args + (self._text() if req.agnostic else self._teacher())

    def _text(self) -> list[str]:
        return ["--text", self.request.text] if self.request.text else []

    def _teacher(self) -> list[str]:
        req, s = self.request, self.request.supernet
        args = ["--teacher", str(req.teacher), *(["--data-dir", str(req.data_dir)] if req.data_dir else []),
                "--evaluator", req.evaluator, "--head-dim", "any" if req.head_dim is None else str(req.head_dim),
                *(["--allow-weak-teacher"] if req.allow_weak_teacher else [])]
        if is_oneshot(req.evaluator):
            args += ["--supernet-examples", str(s.examples), "--supernet-epochs", number(s.epochs), "--rerank-top",
                     str(s.rerank_top), "--rerank-examples", str(s.rerank_examples), "--rerank-epochs",
                     number(s.rerank_epochs), *(["--rerank-lr", number(s.rerank_lr)] if s.rerank_lr else [])]
        return args


@dataclass(frozen=True)
class ReportStep(Step):
    """The search run's report: HTML, Markdown and its plots."""

    run_dir: Path
    html: Path
    md: Path
    png: Path
    name = "report"

    def argv(self) -> list[str]:
        return ["report", str(self.run_dir), "--html", str(self.html), "--md", str(self.md), "--png", str(self.png)]


@dataclass(frozen=True)
class CompareStep(Step):
    """The ``students`` (a search run's winner first) across every fitted predictor, measured on this machine."""

    students: str
    predictors: Path
    store: Path
    html: Path
    md: Path
    png: Path
    name = "compare"

    def argv(self) -> list[str]:
        return ["compare", "--students", self.students, "--measure", "--predictors", str(self.predictors),
                "--store", str(self.store), "--html", str(self.html), "--md", str(self.md), "--png", str(self.png)]
