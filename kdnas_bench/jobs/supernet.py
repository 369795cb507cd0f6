"""Training a teacher's supernet (:func:`run_supernet_train` on a :class:`SupernetTrainRequest`) and scoring
sub-networks of a trained one (:func:`run_supernet_evaluate` on a :class:`SupernetEvaluateRequest`): what
``kdnas-bench supernet train|evaluate`` run.

:func:`run_supernet_train` says through ``on_event(kind, data)``:

* ``"start"``: training starts (or resumes): ``start`` (the step), ``total``, ``largest``, ``smallest`` and
  ``lengths`` (a line on the max length and the examples it cuts);
* ``"note"``: a stale lock of ``--out`` taken over.

Under ``torchrun`` every process runs it (data-parallel training); only process 0 (``writer``) writes ``out`` and
reports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import supernet as supernet_pkg  # names read on first use (no torch at import)
from ..autospace import resolve_space, write_space
from ..defaults import DEFAULTS
from ..distill.data import Task, TaskRef, encode, get_task, load_split
from ..distill.lengths import recorded_max_length
from ..distill.teacher import load_teacher
from ..distill.tracking import open_tracker
from ..errors import KdnasError
from ..lazy import lazy_module
from ..outdirs import FolderLock, check_not_an_input, folder_entries
from ..space import Arch, SearchSpace
from ..validate import check_writable
from .common import EventFn, check_positive, no_events, task_inputs, training_settings
from .distill import DEFAULT_ACCELERATOR

if TYPE_CHECKING:
    import torch

    from ..distill import accelerator
    from ..distill import training as distill_training
    from ..distill.accelerator import AcceleratorSpec
    from ..supernet import SupernetConfig, parallel
    from ..supernet import train as supernet_train
else:  # torch and the training stack load on first use
    torch = lazy_module("torch")
    accelerator = lazy_module("kdnas_bench.distill.accelerator")
    distill_training = lazy_module("kdnas_bench.distill.training")
    parallel = lazy_module("kdnas_bench.supernet.parallel")
    supernet_train = lazy_module("kdnas_bench.supernet.train")

SUPERNET_FILES = ("supernet.json", "supernet.safetensors", "checkpoint.json", "checkpoint.safetensors", "space.toml")


@dataclass(frozen=True)
class SupernetTrainRequest:
    """A supernet of ``teacher``'s students on ``task``, trained (or resumed, or reused) in ``out`` with the sandwich
    rule. ``space`` None or ``"auto"``: the teacher's students, derived and written to ``OUT/space.toml``."""

    teacher: str
    task: TaskRef
    out: str
    data_dir: str | None = None
    space: str | None = None
    overwrite: bool = False
    max_examples: int = 4000
    epochs: float = 2.0
    batch_size: int = 32
    lr: float = 1e-4
    random_subnets: int = 2
    losses: str = DEFAULTS.search_losses
    seed: int = 0
    threads: int = 1
    accelerator: AcceleratorSpec = DEFAULT_ACCELERATOR
    max_length: int | str = "auto"
    log_to: str | None = None
    log_dir: str | None = None

    def __post_init__(self) -> None:
        check_positive(("--max-examples", self.max_examples), ("--epochs", self.epochs),
                       ("--batch-size", self.batch_size), ("--lr", self.lr), ("--threads", self.threads))
        self.config()
        self.training()

    def config(self) -> SupernetConfig:
        """The training recipe, checked (:class:`~kdnas_bench.supernet.SupernetConfig`)."""
        return supernet_pkg.SupernetConfig(examples=self.max_examples, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                              random_subnets=self.random_subnets, losses=self.losses, seed=self.seed)

    def training(self) -> dict[str, Any]:
        """``max_length``, ``log_to`` and ``log_dir`` (default OUT/logs), checked."""
        return training_settings(self.max_length, self.log_to, self.log_dir, self.out)

    @property
    def derived_space(self) -> bool:
        """Whether the space is the teacher's own students (written to ``OUT/space.toml``)."""
        return self.space is None or self.space.strip().lower() == "auto"


@dataclass(frozen=True)
class SupernetOutcome:
    """A trained supernet's document (``supernet.json``: recipe, steps, seconds, ...); ``writer``: whether this
    process wrote it (under torchrun only process 0 does, and only it reports)."""

    doc: dict[str, Any]
    writer: bool = True


def checked_out(teacher: str, task: TaskRef, data_dir: str | None, space_path: str | None, out: str,
                overwrite: bool, max_length: int | str = "auto") -> SearchSpace:
    """The space, with ``--out`` checked before anything is written: not the teacher or a data file, a supernet
    folder (trained for this teacher, task and space: reused; unfinished: resumed), new, empty, or ``--overwrite``."""
    check_writable("--out", out)
    check_not_an_input("--out", out, [("--teacher", teacher), *task_inputs(task, data_dir)])
    folder = Path(out)
    names = folder_entries(folder)
    if names and not overwrite and not set(names) & set(SUPERNET_FILES):
        shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
        raise KdnasError(f"--out {out} exists and holds no supernet ({shown}): pass --overwrite to train one into it, "
                         "or another folder")
    space_path = space_path or "auto"  # --space left out: the teacher's students
    t = get_task(task)
    loaded = load_teacher(teacher, task=t)
    config = loaded.model.config if space_path.strip().lower() == "auto" else None
    space, _ = resolve_space(space_path, config, out, teacher=teacher, write=False)
    if (folder / "supernet.json").is_file():  # reused when it matches: refused here when it does not
        supernet_train.check_recipe(supernet_pkg.load(folder)[1], folder, teacher=loaded, task=t, space=space,
                                    max_length=max_length)
    return space


def run_supernet_train(req: SupernetTrainRequest, on_event: EventFn | None = None, *,
                       progress: bool = False) -> SupernetOutcome:
    """Train (or resume, or reuse) the supernet ``req`` describes. Bad input (``cuda`` without a GPU, a batch smaller
    than the torchrun processes, an ``out`` that may not be written or holds another supernet) raises a one-line
    :class:`~kdnas_bench.errors.KdnasError` before any training; ``out`` is locked while it is written."""
    emit = on_event or no_events
    cfg, training = req.config(), req.training()
    ranks, acc = parallel.join(accelerator.resolve(req.accelerator))  # several processes under torchrun
    parallel.check_batch(ranks, req.batch_size)
    if not ranks.writer:
        ranks.barrier()  # process 0 checks --out and writes OUT/space.toml first
    space = checked_out(req.teacher, req.task, req.data_dir, req.space, req.out, req.overwrite, training["max_length"])
    torch.set_num_threads(req.threads)
    with FolderLock(req.out, "--out", note=lambda text: emit("note", {"text": text})):
        if ranks.writer and req.derived_space:
            write_space(space, req.out)
        if ranks.writer:
            ranks.barrier()
        tracker = open_tracker(training["log_to"], training.get("log_dir")) if ranks.writer else None
        try:
            _, doc = supernet_train.ensure_supernet(
                req.teacher, req.task, space, req.out, data_dir=req.data_dir, cfg=cfg, progress=progress,
                on_start=lambda info: emit("start", info), accelerator=acc, max_length=training["max_length"],
                tracker=tracker)
        finally:
            if tracker is not None:
                tracker.close()  # a reused supernet trains nothing: nothing more to log
    return SupernetOutcome(doc, ranks.writer)


@dataclass(frozen=True)
class SupernetEvaluateRequest:
    """Sub-networks ``archs`` of the trained supernet in ``supernet``, each scored on its task's dev set (read from
    ``data_dir`` for a GLUE task, else as the supernet's recipe records it)."""

    supernet: str
    archs: tuple[Arch, ...]
    data_dir: str | None = None
    threads: int = 1

    def __post_init__(self) -> None:
        check_positive(("--threads", self.threads))


@dataclass(frozen=True)
class SubnetScores:
    """The task the supernet was trained on and one row per sub-network: ``arch`` (its fields), ``name``,
    ``metrics``, ``metric`` (the primary one) and ``seconds``."""

    task: Task
    rows: list[dict[str, Any]]


def run_supernet_evaluate(req: SupernetEvaluateRequest) -> SubnetScores:
    """Score each sub-network of ``req`` on the dev set (the one-shot evaluator): a sub-network the supernet does
    not hold is refused in one line before any is scored."""
    torch.set_num_threads(req.threads)
    net, doc = supernet_pkg.load(req.supernet)
    for a in req.archs:
        net.check(a)
    task = get_task(doc["recipe"].get("data") or doc["recipe"]["task"])  # "data": a task of one's own
    tokenizer = load_teacher(doc["recipe"]["teacher"]).tokenizer
    dev = encode(load_split(task, "dev", req.data_dir), tokenizer, max_length=recorded_max_length(doc["recipe"]))
    rows = []
    for a in req.archs:
        t0 = time.perf_counter()
        metrics = distill_training.evaluate(net.extract(a), dev, task)
        rows.append({"arch": a.to_dict(), "name": str(a), "metrics": metrics, "metric": metrics[task.primary_metric],
                     "seconds": round(time.perf_counter() - t0, 3)})
    return SubnetScores(task, rows)
