"""What a search ends with: an evaluation per candidate (:class:`Evaluation`), its winners (:class:`Winner`) in a
:class:`SearchResult`, the steps that refine a result after the study (:class:`PostStep`: re-ranking, final
distillation, memory figures), and the one write of ``RUN/result.json``."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..space import Arch
from .runfolder import RESULT_FILE

EventFn = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Evaluation:
    """One candidate's score from an evaluator."""

    metric: float  # the task's primary metric on dev (the A of the reward); NaN when the candidate failed
    metric_name: str
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None  # the candidate's own failure (out of GPU memory, cannot be built), recorded as such
    node: str | None = None  # the Ray node that ran it (the ray executor); None: this process
    # a finer score that breaks ties of ``metric`` (higher is better; None: the evaluator has none)
    secondary: float | None = None
    secondary_name: str | None = None


@dataclass
class Winner:
    budget_ms: float
    arch: Arch
    predicted_latency_ms: float
    predicted_latency_ms_high: float
    proxy_metric: float
    reward: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"budget_ms": self.budget_ms, "arch": self.arch.to_dict(), "predicted_latency_ms": self.predicted_latency_ms,
                "predicted_latency_ms_high": self.predicted_latency_ms_high, "proxy_metric": self.proxy_metric,
                "reward": self.reward, **self.extra}


@dataclass
class SearchResult:
    winners: list[Winner]
    evaluations: int
    run_dir: str
    history: list[dict[str, Any]]
    evaluated_now: int = 0
    # the teacher's dev score beside the task's trivial one (distill.baseline.TeacherCheck.to_dict); None: no task
    # teacher (a table, task-agnostic KD)
    baseline: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"winners": [w.to_dict() for w in self.winners], "evaluations": self.evaluations,
               "run_dir": self.run_dir, "evaluated_now": self.evaluated_now, "history": self.history}
        return out | ({"baseline": self.baseline} if self.baseline is not None else {})


class PostStep(Protocol):
    """A step after the study: takes the result and returns a new one (the given one is left as it was).
    Whatever else it needs, it was given when it was built."""

    def __call__(self, result: SearchResult) -> SearchResult: ...


def write_result(run_dir: str | Path, result: SearchResult) -> None:
    """``RUN/result.json``, atomically (a reader never sees half of it): its presence marks a finished run."""
    run = Path(run_dir)
    tmp = run / f"{RESULT_FILE}.tmp"
    tmp.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, run / RESULT_FILE)
