"""Evaluators give a candidate its accuracy term: real proxy distillation, or a precomputed table."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from ..defaults import DEFAULTS
from ..errors import KdnasError
from ..space import ARCH_DIMS, Arch
from .domain import SearchError


@dataclass(frozen=True)
class Evaluation:
    metric: float  # the task's primary metric on dev (the A of the reward)
    metric_name: str
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


class Evaluator(Protocol):
    def evaluate(self, arch: Arch) -> Evaluation: ...

    def describe(self) -> dict[str, Any]: ...


_STATE: dict[str, Any] = {}  # per-process cache of the loaded teacher and data (Ray workers reuse it)


def _cached(evaluator: Any, load: Callable[[], tuple[Any, Any]]) -> tuple[Any, Any]:
    """The (teacher, data) of ``evaluator``, loaded once per process and per evaluator configuration."""
    key = type(evaluator).__name__ + json.dumps(asdict(evaluator), sort_keys=True)
    if _STATE.get("key") != key:
        teacher, data = load()
        _STATE.clear()
        _STATE.update(key=key, teacher=teacher, data=data)
    return _STATE["teacher"], _STATE["data"]


def _task_fields(task: Any) -> dict[str, Any]:
    """How ``run.json`` records a task: its name, and for a task of one's own its spec as ``data`` (files and content
    hash), so a GLUE run's record is what it always was and a resumed run can check its data."""
    from ..distill.data import Task

    if not isinstance(task, Task):
        return {"task": task}
    spec = task.spec()
    return {"task": task.name, **({"data": spec} if spec else {})}


def _timed(threads: int, run: Callable[[], Any]) -> Evaluation:
    """Run one distillation single-threaded (so local and Ray executors agree) and wrap its result."""
    import torch

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    res = run()
    return Evaluation(res.primary, res.primary_metric, dict(res.metrics), time.perf_counter() - t0)


@dataclass(frozen=True)
class ProxyDistillEvaluator:
    """Distil the candidate from the teacher on ``proxy_examples`` training examples and score it on held-out
    data (:func:`~kdnas_bench.distill.trainer.distill`): a GLUE task's stratified examples and dev metric, or,
    with ``task="agnostic"``, unlabeled ``text`` (None: the stdlib docstrings) and ``kd_score``, the teacher then
    defaulting to the packaged MiniLM backbone. Loads the teacher and data once per process; teacher outputs
    are cached."""

    teacher: str | None
    task: Any  # a GLUE name, "agnostic", or a Task (one of one's own)
    data_dir: str | None = None
    proxy_examples: int | None = DEFAULTS.proxy_examples
    epochs: float = DEFAULTS.proxy_epochs
    losses: str | None = None  # None: DEFAULTS.search_losses_for(task is "agnostic")
    lr: float = DEFAULTS.distill_lr
    seed: int = 0
    threads: int = 1  # fixed, so local and Ray executors give identical numbers
    init: str = "inherit"  # student init (distill.trainer.init_student), unless ``supernet`` is given
    supernet: str | None = None  # start every candidate from its sub-network of this supernet folder
    text: str | None = None  # task "agnostic": unlabeled text, one passage per line

    @property
    def agnostic(self) -> bool:
        from ..distill.agnostic import AGNOSTIC

        return self.task == AGNOSTIC

    def _state(self) -> tuple[Any, Any]:
        def load() -> tuple[Any, Any]:
            from ..distill.teacher import load_teacher

            if self.agnostic:
                from ..distill.agnostic import default_teacher, load_text, prepare_text

                teacher = default_teacher() if self.teacher is None else load_teacher(self.teacher)
                return teacher, prepare_text(teacher.tokenizer, load_text(self.text), max_examples=self.proxy_examples,
                                             seed=self.seed)
            from ..distill.training import prepare_data

            teacher = load_teacher(str(self.teacher), task=self.task)
            return teacher, prepare_data(teacher.tokenizer, self.task, data_dir=self.data_dir,
                                         max_examples=self.proxy_examples, seed=self.seed)

        return _cached(self, load)

    def evaluate(self, arch: Arch) -> Evaluation:
        from ..distill.trainer import distill

        teacher, data = self._state()
        start = None if self.supernet is None else load_supernet(self.supernet).extract(arch)
        losses = self.losses or DEFAULTS.search_losses_for(self.agnostic)
        return _timed(self.threads, lambda: distill(teacher, self.task, arch, data=data, epochs=self.epochs,
                                                    losses=losses, seed=self.seed, lr=self.lr, init=self.init,
                                                    init_model=start))

    def describe(self) -> dict[str, Any]:
        """What ``run.json`` records (the same keys as before the two proxy evaluators were one, so runs resume)."""
        d = asdict(self)
        if self.agnostic:
            return {"kind": "agnostic-distill", "task": self.task, **{k: d[k] for k in (
                "teacher", "text", "proxy_examples", "epochs", "losses", "lr", "seed", "threads")}}
        d.pop("text")
        return {"kind": "proxy-distill", **d, **_task_fields(self.task)}


_SUPERNETS: dict[str, Any] = {}


def load_supernet(folder: str) -> Any:
    """A supernet folder, loaded once per process."""
    from ..supernet import load

    if folder not in _SUPERNETS:
        _SUPERNETS.clear()
        _SUPERNETS[folder] = load(folder)[0]
    return _SUPERNETS[folder]


@dataclass(frozen=True)
class SupernetEvaluator:
    """One-shot evaluation: the candidate's sub-network, extracted from a trained supernet (one per teacher,
    task and space, checked by hash), scored on dev. Seconds per candidate instead of a distillation."""

    supernet: str
    teacher: str
    task: Any  # a GLUE name or a Task
    space: str
    data_dir: str | None = None
    threads: int = 1

    def _state(self) -> tuple[Any, Any]:
        def load() -> tuple[Any, Any]:
            from ..distill.data import encode, get_task, load_split
            from ..distill.teacher import load_teacher
            from ..space import SearchSpace
            from ..supernet import check_recipe
            from ..supernet import load as load_net

            task = get_task(self.task)
            teacher = load_teacher(self.teacher, task=task)
            net, doc = load_net(self.supernet)
            check_recipe(doc, Path(self.supernet), teacher=teacher, task=task, space=SearchSpace.load(self.space))
            return net, encode(load_split(task, "dev", self.data_dir), teacher.tokenizer)

        return _cached(self, load)

    def evaluate(self, arch: Arch) -> Evaluation:
        from ..distill.data import get_task
        from ..distill.training import evaluate

        net, dev = self._state()
        task = get_task(self.task)

        import torch

        torch.set_num_threads(self.threads)
        t0 = time.perf_counter()
        metrics = evaluate(net.extract(arch), dev, task)
        return Evaluation(metrics[task.primary_metric], task.primary_metric, metrics, time.perf_counter() - t0)

    def describe(self) -> dict[str, Any]:
        return {"kind": "supernet", **asdict(self), **_task_fields(self.task)}


class TableEvaluator:
    """Reads precomputed accuracies (Parquet, CSV or JSON with columns layers, hidden, heads, ffn,
    metric[, metric_name, seconds]) so strategies can be compared cheaply and fairly."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SearchError(f"table not found: {self.path}")
        try:
            if self.path.suffix == ".parquet":
                df = pd.read_parquet(self.path)
            elif self.path.suffix == ".csv":
                df = pd.read_csv(self.path)
            else:
                doc = json.loads(self.path.read_text(encoding="utf-8"))
                df = pd.DataFrame(doc["rows"] if isinstance(doc, dict) else doc)
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise SearchError(f"cannot read table {self.path}: {exc}") from None
        missing = [c for c in (*ARCH_DIMS, "metric") if c not in df.columns]
        if missing:
            raise SearchError(f"table {self.path} lacks columns {', '.join(missing)}")
        self.metric_name = str(df["metric_name"].iloc[0]) if "metric_name" in df.columns and len(df) else "metric"
        self._rows = {}
        for i, r in enumerate(df.to_dict("records")):
            try:
                dims = [r[d] for d in ARCH_DIMS]
                if not all(isinstance(v, int | float) and not isinstance(v, bool) and float(v).is_integer()
                           for v in dims):
                    raise ValueError(f"layers, hidden, heads, ffn must be integers, got {dims}")
                metric = r["metric"]
                if isinstance(metric, bool) or not isinstance(metric, int | float) or not math.isfinite(metric):
                    raise ValueError(f"metric must be a finite number, got {metric!r}")
                self._rows[Arch(*(int(v) for v in dims))] = r
            except (ValueError, KdnasError) as exc:
                raise SearchError(f"table {self.path} row {i + 1}: {exc}") from None
        if not self._rows:
            raise SearchError(f"table {self.path} has no rows")

    def archs(self) -> list[Arch]:
        return sorted(self._rows)

    def evaluate(self, arch: Arch) -> Evaluation:
        row = self._rows.get(arch)
        if row is None:
            raise SearchError(f"arch {arch} is not in table {self.path}")
        return Evaluation(float(row["metric"]), self.metric_name, {self.metric_name: float(row["metric"])},
                          float(row.get("seconds", 0.0) or 0.0))

    def describe(self) -> dict[str, Any]:
        return {"kind": "table", "path": str(self.path), "rows": len(self._rows)}
