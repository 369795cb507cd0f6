"""What a quickstart is asked to do: :class:`QuickstartRequest`, typed and frozen. It holds the defaults (a
toy-scale run of every step) and checks its own values and cross-field rules in ``__post_init__``; every refusal
is a one-line :class:`~kdnas_bench.errors.KdnasError` that names the command line's option."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..distill.data import Task
from ..errors import KdnasError
from ..search.evaluators import EVALUATORS

TEACHER_ARCH = "6,384,12,1536"  # all-MiniLM-L6-v2: the teacher whose predicted latency sets the budget
DEFAULT_STUDENTS = "minilm-l6,tinybert-4l,bert-base"


@dataclass(frozen=True)
class QuickstartRequest:
    """The whole pipeline on this machine, at toy scale: profile ``profile_rows`` configs, fit the predictor by
    few-shot transfer on ``transfer_rows`` of them (the rest are its held-out check), search ``episodes`` x
    ``candidates`` under the teacher's predicted latency / ``speedup``, distil the winner on ``final_examples``,
    report and compare it with ``compare_students``; everything under ``out``.

    ``task`` None (or a GLUE name) with ``data_dir`` is a GLUE task from that TSV folder (default sst2); a
    :class:`~kdnas_bench.distill.data.Task` is data of one's own; with neither, task-agnostic KD on the unlabeled
    ``text`` (default: Python standard-library docstrings). ``evaluator`` scores candidates when there is task
    data (a supernet trained on ``teacher_examples`` x 1 epoch, re-ranked by proxy; or proxy distillation);
    without it the search always distils by proxy. ``accelerator``: where training runs (profiling stays on the
    CPU), resolved before any work."""

    out: str = "runs/quickstart"
    task: Any = None  # None, a GLUE name, or a Task of one's own
    data_dir: str | None = None
    text: str | None = None
    profile_rows: int = 40
    transfer_rows: int = 30
    teacher_examples: int = 2000
    episodes: int = 3
    candidates: int = 4
    proxy_examples: int = 1000
    proxy_epochs: float = 2.0
    final_examples: int = 4000
    speedup: float = 3.0
    compare_students: str = DEFAULT_STUDENTS
    evaluator: str = "supernet"
    seed: int = 0
    accelerator: str = "auto"
    allow_weak_teacher: bool = False

    def __post_init__(self) -> None:
        for name, value in (("--profile-rows", self.profile_rows), ("--transfer-rows", self.transfer_rows),
                            ("--episodes", self.episodes), ("--candidates", self.candidates),
                            ("--proxy-examples", self.proxy_examples), ("--proxy-epochs", self.proxy_epochs),
                            ("--final-examples", self.final_examples), ("--speedup", self.speedup)):
            if not (math.isfinite(value) and value > 0):
                raise KdnasError(f"{name} must be positive, got {value}")
        if self.transfer_rows >= self.profile_rows:
            raise KdnasError(f"--transfer-rows ({self.transfer_rows}) must be below --profile-rows "
                             f"({self.profile_rows}): the rest are the predictor's held-out check")
        # an old spelling (an alias) becomes the name, as on the command line
        name = EVALUATORS.canonical(self.evaluator) if self.evaluator in EVALUATORS else self.evaluator
        if name not in task_evaluators():
            raise KdnasError(f"--evaluator: unknown '{self.evaluator}' (choose from {', '.join(task_evaluators())})")
        object.__setattr__(self, "evaluator", name)

    @property
    def with_task(self) -> bool:
        """Task data given (a GLUE folder, or data of one's own): a fine-tuned teacher scores the students; else
        task-agnostic KD from the packaged backbone."""
        return self.data_dir is not None or isinstance(self.task, Task)


def task_evaluators() -> list[str]:
    """The search evaluators that score candidates on task data (the quickstart's ``--evaluator`` choices)."""
    return [name for name, e in EVALUATORS.items() if e.inputs == "task"]
