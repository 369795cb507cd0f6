"""Distilling a student (:func:`run_distill` on a :class:`DistillRequest`) and fine-tuning a teacher
(:func:`run_finetune` on a :class:`FinetuneRequest`): what ``kdnas-bench distill`` and ``kdnas-bench teacher
finetune`` run.

Each request holds the verb's defaults and checks its own values in ``__post_init__`` (one line each, before any
work). Each run function resolves the accelerator once, checks what needs files (the teacher, ``--out``), then
does the work, saying what the user should hear through ``on_event(kind, data)``:

* ``"message"``: a line for the user (a weak teacher allowed by ``allow_weak_teacher``);
* ``"note"``: a stale lock of ``--out`` taken over.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import supernet as supernet_pkg  # names read on first use (no torch at import)
from ..defaults import DEFAULTS
from ..deploy import deploy_int8
from ..distill.baseline import check_teacher
from ..distill.data import TaskRef, get_task
from ..distill.lengths import check_fits
from ..distill.teacher import default_backbone_path
from ..errors import KdnasError
from ..lazy import lazy_module
from ..space import Arch
from .common import EventFn, check_positive, no_events, out_folder, task_inputs, training_settings

if TYPE_CHECKING:
    import torch

    from ..distill import accelerator, finetuning, trainer
    from ..distill import losses as kd_losses
    from ..distill.accelerator import AcceleratorSpec
    from ..distill.finetuning import FinetuneResult
    from ..distill.trainer import DistillResult
else:  # torch and the training stack load on first use
    torch = lazy_module("torch")
    accelerator = lazy_module("kdnas_bench.distill.accelerator")
    finetuning = lazy_module("kdnas_bench.distill.finetuning")
    kd_losses = lazy_module("kdnas_bench.distill.losses")
    trainer = lazy_module("kdnas_bench.distill.trainer")

DEFAULT_ACCELERATOR = "auto"  # every verb that trains: the GPU when torch sees one, else the CPU


@dataclass(frozen=True)
class DistillRequest:
    """One student distilled from a fine-tuned teacher and scored on dev. ``max_examples``: proxy mode on a
    stratified seeded subset (None: full mode); ``supernet``: start from the student's sub-network of that trained
    supernet folder instead of ``init``; ``quantize``: also export the student int8 and score it (needs ``out``);
    ``threads`` 0: torch's own thread count."""

    teacher: str
    task: TaskRef
    arch: Arch
    data_dir: str | None = None
    max_examples: int | None = None
    epochs: float = 3.0
    losses: str = DEFAULTS.distill_losses
    out: str | None = None
    overwrite: bool = False
    seed: int = 0
    lr: float = DEFAULTS.distill_lr
    batch_size: int = 32
    temperature: float = 1.0
    init: str = "inherit"
    layer_choice: str = "spread"
    supernet: str | None = None
    batching: str = "random"
    threads: int = 1
    accelerator: AcceleratorSpec = DEFAULT_ACCELERATOR
    quantize: str | None = None
    allow_weak_teacher: bool = False
    max_length: int | str = "auto"
    log_to: str | None = None
    log_dir: str | None = None
    eval_every: str = "end"
    early_stopping: int | None = None

    def __post_init__(self) -> None:
        get_task(self.task)
        kd_losses.parse_losses(self.losses)
        check_positive(("--max-examples", self.max_examples), ("--epochs", self.epochs), ("--lr", self.lr),
                       ("--batch-size", self.batch_size), ("--threads", self.threads))
        if self.quantize and not self.out:
            raise KdnasError("--quantize needs --out (the quantized model is saved beside the student)")
        self.training()

    def training(self) -> dict[str, Any]:
        """The training options, checked: keyword arguments of :func:`~kdnas_bench.distill.trainer.distill`."""
        return training_settings(self.max_length, self.log_to, self.log_dir, self.out, eval_every=self.eval_every,
                                 early_stopping=self.early_stopping)

    def inputs(self) -> list[tuple[str, str | None]]:
        """The files and folders the student is made from (``out`` may be none of them)."""
        return [("--teacher", self.teacher), ("--supernet", self.supernet), *task_inputs(self.task, self.data_dir)]


@dataclass
class DistillOutcome:
    """A distilled student: its :class:`~kdnas_bench.distill.trainer.DistillResult` (``config["init"]`` names the
    supernet it started from) and, with ``quantize``, the int8 export's report."""

    result: DistillResult
    quantized: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The result as ``distill --json`` prints it."""
        d = self.result.to_dict()
        if self.quantized:
            d["quantized"] = self.quantized
        return d


def run_distill(req: DistillRequest, on_event: EventFn | None = None, *, progress: bool = False) -> DistillOutcome:
    """Distil the student ``req`` describes. Bad input raises a one-line
    :class:`~kdnas_bench.errors.KdnasError` before any training: ``cuda`` without a GPU, a ``max_length`` beyond
    the teacher's positions, a weak teacher (unless ``allow_weak_teacher``: then a ``message`` event says so once),
    an ``out`` that may not be written. ``out`` is locked while the student is written there."""
    emit = on_event or no_events
    training = req.training()
    acc = accelerator.resolve(req.accelerator)
    check_fits(training["max_length"], req.teacher)
    checked = check_teacher(req.teacher, req.task, req.data_dir, allow_weak_teacher=req.allow_weak_teacher)
    if checked.weak:  # allowed: said once (a teacher without a recorded score shows so in the result)
        emit("message", {"text": checked.message})
    lock: AbstractContextManager[Any] = (out_folder(req.out, overwrite=req.overwrite, inputs=req.inputs(), emit=emit)
                                         if req.out else nullcontext())
    if req.threads:
        torch.set_num_threads(req.threads)
    start = _supernet_start(req.supernet, req.arch) if req.supernet else None
    with lock:
        result = trainer.distill(req.teacher, req.task, req.arch, data_dir=req.data_dir, max_examples=req.max_examples,
                         epochs=req.epochs, losses=req.losses, seed=req.seed, out=req.out, progress=progress,
                         lr=req.lr, batch_size=req.batch_size, temperature=req.temperature, init=req.init,
                         layer_choice=req.layer_choice, batching=req.batching, init_model=start, accelerator=acc,
                         allow_weak_teacher=req.allow_weak_teacher, **training)
        quantized = None
        if req.quantize:
            quantized = deploy_int8(str(req.out), task=req.task, data_dir=req.data_dir, fp32_metrics=result.metrics,
                                    threads=req.threads or 1)
    if req.supernet:
        result.config["init"] = f"supernet:{req.supernet}"
    return DistillOutcome(result, quantized)


def _supernet_start(folder: str, arch: Arch) -> Any:
    """The student's sub-network of the trained supernet in ``folder``: where its training starts."""
    return supernet_pkg.load(folder)[0].extract(arch)


@dataclass(frozen=True)
class FinetuneRequest:
    """A backbone (None: the packaged all-MiniLM-L6-v2) fine-tuned into a teacher of ``task``, saved in ``out``
    with its dev metrics. ``max_examples``: a stratified seeded subset of the train set (None: all of it)."""

    task: TaskRef
    out: str
    backbone: str | None = None
    data_dir: str | None = None
    max_examples: int | None = None
    epochs: float = 1.0
    seed: int = 0
    lr: float = 2e-4
    batch_size: int = 16
    overwrite: bool = False
    batching: str = "random"
    threads: int = 1
    accelerator: AcceleratorSpec = DEFAULT_ACCELERATOR
    max_length: int | str = "auto"
    log_to: str | None = None
    log_dir: str | None = None
    eval_every: str = "end"
    early_stopping: int | None = None

    def __post_init__(self) -> None:
        get_task(self.task)
        check_positive(("--max-examples", self.max_examples), ("--epochs", self.epochs), ("--lr", self.lr),
                       ("--batch-size", self.batch_size), ("--threads", self.threads))
        self.training()

    def training(self) -> dict[str, Any]:
        """The training options, checked: keyword arguments of :func:`~kdnas_bench.distill.finetuning.finetune`."""
        return training_settings(self.max_length, self.log_to, self.log_dir, self.out, eval_every=self.eval_every,
                                 early_stopping=self.early_stopping)


def run_finetune(req: FinetuneRequest, on_event: EventFn | None = None, *, progress: bool = False) -> FinetuneResult:
    """Fine-tune the teacher ``req`` describes into ``req.out`` (locked while it is written). Bad input (``cuda``
    without a GPU, a ``max_length`` beyond the backbone's positions, an ``out`` that may not be written) raises a
    one-line :class:`~kdnas_bench.errors.KdnasError` before any training. A weak teacher is not refused here: its
    result's :meth:`~kdnas_bench.distill.finetuning.FinetuneResult.weak_warning` says so."""
    emit = on_event or no_events
    training = req.training()
    acc = accelerator.resolve(req.accelerator)
    check_fits(training["max_length"], req.backbone or default_backbone_path())
    lock = out_folder(req.out, overwrite=req.overwrite,
                      inputs=[("--backbone", req.backbone), *task_inputs(req.task, req.data_dir)], emit=emit)
    if req.threads:
        torch.set_num_threads(req.threads)
    with lock:
        return finetuning.finetune(req.task, backbone=req.backbone, data_dir=req.data_dir, max_examples=req.max_examples,
                        epochs=req.epochs, seed=req.seed, out=req.out, lr=req.lr, batch_size=req.batch_size,
                        batching=req.batching, accelerator=acc, progress=progress, **training)
