"""Trivial baselines: what a task's dev set scores with no model at all, and whether a teacher beats it.

* Classification: for each of the task's metrics, the best *constant* answer on the dev labels (the majority
  class for accuracy; always the positive class for f1 when that scores higher; Matthews correlation of any
  constant is 0). MRPC's always-"paraphrase" scores f1 81.2 and accuracy 68.4; RTE's majority class 52.7 %.
* Regression: the mean prediction. Pearson and Spearman of a constant are undefined; they are reported as 0.

A teacher is *weak* when its recorded dev score does not beat the trivial score of the task's primary metric
by :data:`WEAK_MARGIN` (2 points of the metric): it learned next to nothing, and students distilled from it
only learn to copy a constant. ``teacher finetune`` records the baseline in the teacher's ``metrics.json`` and
warns; ``distill`` and ``search`` refuse a weak teacher unless told ``allow_weak_teacher``
(:func:`check_teacher`). A teacher folder without a recorded score (a hub name, a checkpoint made elsewhere) is
not scored here (that would cost a pass over dev): the check says so and lets it through.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data import get_task, load_split
from .taskspec import Task, TaskRef
from .teacher import Teacher, TeacherError

WEAK_MARGIN = 0.02  # a teacher must beat the trivial score of its primary metric by 2 points (metrics on a 0-1 scale)
UNDEFINED_NOTE = "a constant's correlation is undefined: reported as 0"


@dataclass(frozen=True)
class Baseline:
    """The trivial score of each metric of a task on its dev set, and the constant answer behind it."""

    task: str
    primary_metric: str
    metrics: dict[str, float]
    answers: dict[str, str]  # metric -> the constant answer that scores it ("majority class 'x'", "the mean 2.70")
    dev_examples: int
    note: str = ""
    margin: float = field(default=WEAK_MARGIN)

    @property
    def primary(self) -> float:
        return self.metrics[self.primary_metric]

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "primary_metric": self.primary_metric, "primary": self.primary,
                "metrics": dict(self.metrics), "answers": dict(self.answers), "dev_examples": self.dev_examples,
                "margin": self.margin, **({"note": self.note} if self.note else {})}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Baseline:
        return cls(str(data["task"]), str(data["primary_metric"]), {k: float(v) for k, v in data["metrics"].items()},
                   {k: str(v) for k, v in data.get("answers", {}).items()}, int(data.get("dev_examples", 0)),
                   str(data.get("note", "")), float(data.get("margin", WEAK_MARGIN)))

    def beaten_by(self, score: float) -> bool:
        """Whether ``score`` (of the primary metric) beats the trivial one by the margin."""
        return bool(math.isfinite(score) and score >= self.primary + self.margin)

    def describe(self) -> str:
        """E.g. ``f1 0.8122 (always '1')``."""
        return f"{self.primary_metric} {self.primary:.4f} ({self.answers.get(self.primary_metric, 'a constant')})"


def baseline_of(task: Task, gold: np.ndarray) -> Baseline:
    """The trivial baseline of ``task`` on the dev labels ``gold`` (class ids, or scores for regression)."""
    gold = np.asarray(gold)
    if task.is_regression:
        mean = float(gold.mean()) if len(gold) else 0.0
        scores = task.score(np.full(len(gold), mean, dtype=np.float64), gold)
        metrics = {m: 0.0 if not math.isfinite(v) else float(v) for m, v in scores.items()}
        return Baseline(task.name, task.primary_metric, metrics, dict.fromkeys(metrics, f"the mean {mean:.4g}"),
                        len(gold), UNDEFINED_NOTE)
    counts = np.bincount(gold.astype(np.int64), minlength=len(task.labels)) if len(gold) else np.zeros(len(task.labels))
    best: dict[str, float] = {}
    answers: dict[str, str] = {}
    for cls in np.argsort(-counts, kind="stable"):  # the majority class first: it wins ties
        scores = task.score(np.full(len(gold), int(cls), dtype=np.int64), gold)
        for metric, value in scores.items():
            value = 0.0 if not math.isfinite(value) else float(value)
            if metric not in best or value > best[metric] + 1e-12:
                best[metric] = value
                answers[metric] = f"always '{task.labels[int(cls)]}'"
    return Baseline(task.name, task.primary_metric, best, answers, len(gold))


def trivial_baseline(task: TaskRef, data_dir: str | Path | None = None) -> Baseline:
    """The trivial baseline of ``task`` (a GLUE name, a :class:`Task`) on the dev set it is judged on."""
    t = get_task(task)
    return baseline_of(t, load_split(t, "dev", data_dir).labels)


def recorded_score(teacher: str | Path) -> dict[str, Any] | None:
    """A teacher folder's ``metrics.json`` (what ``teacher finetune`` saved), or None when it has none."""
    path = Path(str(teacher)).expanduser() / "metrics.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        return None
    return data


def weak_teacher_line(name: str, metric: str, score: float, baseline: Baseline) -> str:
    """The one line that names a weak teacher's score and the trivial score."""
    return (f"teacher {name} scores dev {metric} {score:.4f}, the trivial answer scores {baseline.describe()}: it does "
            f"not beat it by {baseline.margin * 100:g} points, so it learned next to nothing")


@dataclass(frozen=True)
class TeacherCheck:
    """What :func:`check_teacher` found: the task's baseline, the teacher's recorded primary score (None when it
    has none for this task and data: not judged), whether it is weak, and a line for the user."""

    teacher: str
    baseline: Baseline
    score: float | None
    weak: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        """What a search's ``result.json`` keeps as ``baseline``: reports show it beside the teacher's score."""
        return {"teacher": self.teacher, "metric": self.baseline.primary_metric, "teacher_score": self.score,
                "trivial": self.baseline.primary, "weak": self.weak, "baseline": self.baseline.to_dict()}


def check_teacher(teacher: Any, task: TaskRef, data_dir: str | Path | None = None, *, dev_labels: np.ndarray | None = None,
                  allow_weak_teacher: bool = False) -> TeacherCheck:
    """Compare a teacher's recorded dev score with the task's trivial baseline, before any work. A weak teacher
    raises :class:`~kdnas_bench.distill.teacher.TeacherError` (one line naming both scores) unless
    ``allow_weak_teacher``; a teacher without a recorded score for this task and data is let through, and the
    returned message says it was not judged. ``dev_labels``: the dev labels when already loaded (else read from
    ``data_dir``)."""
    t = get_task(task)
    name = teacher.name if isinstance(teacher, Teacher) else str(teacher)
    baseline = trivial_baseline(t, data_dir) if dev_labels is None else baseline_of(t, dev_labels)
    rec = recorded_score(name)
    why = _not_comparable(rec, t)
    if why:
        return TeacherCheck(name, baseline, None, False, f"note: teacher {name}: {why}, so it is not judged against the "
                                                         f"trivial score {baseline.describe()}")
    assert rec is not None
    score = float(rec["metrics"][t.primary_metric])
    if baseline.beaten_by(score):
        return TeacherCheck(name, baseline, score, False, f"teacher {name}: dev {t.primary_metric} {score:.4f}, trivial "
                                                          f"{baseline.describe()}")
    line = weak_teacher_line(name, t.primary_metric, score, baseline)
    if not allow_weak_teacher:
        raise TeacherError(f"{line}: fine-tune it on more data or longer, or pass --allow-weak-teacher")
    return TeacherCheck(name, baseline, score, True, f"warning: {line} (allowed by --allow-weak-teacher)")


def _not_comparable(rec: dict[str, Any] | None, task: Task) -> str:
    """Why a recorded score says nothing about ``task`` ('' when it does)."""
    if rec is None:
        return "no recorded dev score (no metrics.json from teacher finetune)"
    if str(rec.get("task")) != task.name:
        return f"its recorded dev score is for task {rec.get('task')}, not {task.name}"
    if not task.is_glue and (rec.get("data") or {}).get("data_hash") != task.data_hash:
        return "its recorded dev score is for other data (another content hash)"
    value = rec["metrics"].get(task.primary_metric)
    if not isinstance(value, int | float) or not math.isfinite(value):
        return f"no recorded dev {task.primary_metric}"
    return ""
