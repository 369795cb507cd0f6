"""The training loop that teacher fine-tuning and distillation share: a task's tokenised data, ``train`` (KD
losses, optional live or cached teacher), ``evaluate`` on dev, and ``save_model`` (HF layout, safetensors,
ONNX). Nothing here knows how a teacher is loaded or a student built.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import KdnasError
from ..export import export_onnx
from ..progress import progress_bar
from .accelerator import (
    Accelerator,
    accelerator_of,
    apply_precision_settings,
    batch_rows,
    batches_on,
    resolve,
    teacher_model,
)
from .cache import forward
from .data import BATCHING, Encoded, Task, TaskRef, get_task, load_split, proxy_indices
from .lengths import LEGACY, Lengths, encode_pair
from .losses import KDLoss, needs_of, needs_teacher

if TYPE_CHECKING:
    from .selection import Selection
    from .teacher import Teacher
    from .tracking import Tracker


@dataclass(frozen=True)
class TrainConfig:
    epochs: float = 1.0
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup: float = 0.1  # share of steps with linear warm-up, then linear decay to 0
    eval_batch_size: int = 128
    # "random" batches, or "length": length-grouped shuffled ones (2.9x less padding on SST-2 train, but on
    # 2,000 examples x 1 epoch it cost 0.6 pt (teacher) and 3.7 pts (2L/256 student) of dev accuracy)
    batching: str = "random"

    def __post_init__(self) -> None:
        if self.epochs <= 0 or self.batch_size <= 0 or self.lr <= 0 or self.eval_batch_size <= 0:
            raise KdnasError(f"epochs, batch size and learning rate must be positive, got {self}")
        if not 0 <= self.warmup < 1:
            raise KdnasError(f"warmup must be in [0, 1), got {self.warmup}")
        if self.batching not in BATCHING:
            raise KdnasError(f"batching must be one of {', '.join(BATCHING)}, got {self.batching!r}")


@dataclass
class TaskData:
    """A task's tokenised train and dev sets (reusable across many distillations)."""

    task: Task
    train: Encoded
    dev: Encoded
    train_total: int = 0  # size of the whole train split (``train`` may be a proxy subset of it)
    lengths: Lengths | None = None  # the tokens each example kept (``max_length``) and how many were cut

    @property
    def mode(self) -> str:
        return "proxy" if len(self.train) < self.train_total else "full"


def prepare_data(tokenizer: Any, task: TaskRef, *, data_dir: str | Path | None = None,
                 max_examples: int | None = None, seed: int = 0, max_length: int | str = LEGACY,
                 positions: int | None = None) -> TaskData:
    """Load and tokenise train (a stratified seeded subset of ``max_examples`` when given) and dev, cut to
    ``max_length`` tokens (``"auto"``: from the data, capped at ``positions``; :mod:`.lengths`)."""
    t = get_task(task)
    if max_examples is not None and max_examples <= 0:
        raise KdnasError(f"max examples must be positive, got {max_examples}")
    train = load_split(t, "train", data_dir)
    dev = load_split(t, "dev", data_dir)
    total = len(train)
    if max_examples is not None and max_examples < len(train):
        train = train.subset(proxy_indices(train.labels, max_examples, seed=seed))
    train_enc, dev_enc, lengths = encode_pair(train, dev, tokenizer, max_length, positions)
    return TaskData(t, train_enc, dev_enc, total, lengths)


# -- training and evaluation -----------------------------------------------------------------------
def _optimizer(params: list[tuple[str, torch.nn.Parameter]], cfg: TrainConfig, cuda: bool = False) -> torch.optim.Optimizer:
    decay = [p for n, p in params if p.ndim > 1 and "LayerNorm" not in n]
    no_decay = [p for n, p in params if not (p.ndim > 1 and "LayerNorm" not in n)]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, fused=True) if cuda else torch.optim.AdamW(groups, lr=cfg.lr)


def train(model: Any, data: Encoded, losses: list[KDLoss], cfg: TrainConfig, *, seed: int = 0,
          teacher: Teacher | None = None, progress: bool = False, description: str = "train",
          accelerator: str | Accelerator | None = None, selection: Selection | None = None,
          tracker: Tracker | None = None) -> float:
    """Train ``model`` (and the losses' own parameters) on ``data``; returns wall seconds. The teacher's
    outputs come from ``data.teacher_cache`` when it covers the losses, else from live forwards.
    ``accelerator`` (:mod:`.accelerator`; None: the CPU): a GPU moves the model and the losses there (they
    stay there; the caller moves them back) and runs the forwards under its autocast. ``selection``: score
    after every epoch, keep the best state and stop early (:mod:`.selection`; the best is restored at the end).
    ``tracker``: log the loss, learning rate and evaluations (:mod:`.tracking`)."""
    acc = resolve(accelerator)
    apply_precision_settings(acc)
    needs = needs_of(losses)
    use_teacher = needs_teacher(losses)
    if use_teacher and teacher is None:
        raise KdnasError("distillation losses need a teacher")
    cache = data.teacher_cache if use_teacher and teacher is not None else None
    if cache is not None and not cache.covers(teacher, needs, acc.name):
        cache = None
    if acc.on_device:
        model.to(acc.device)
        for loss in losses:
            loss.to(acc.device)
    t_model = teacher_model(teacher, acc) if use_teacher and cache is None and teacher is not None else None
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params += [(f"loss{i}.{n}", p) for i, loss in enumerate(losses) for n, p in loss.named_parameters()]
    opt = _optimizer(params, cfg, acc.is_cuda)
    steps_per_epoch = math.ceil(len(data) / cfg.batch_size)
    total = max(1, math.ceil(steps_per_epoch * cfg.epochs))
    warm = int(cfg.warmup * total)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (total - s) / max(1, total - warm)))
    torch.manual_seed(seed)
    model.train()
    for loss in losses:
        loss.train()
    if teacher is not None:
        teacher.model.eval()
    if t_model is not None:
        t_model.eval()
    start = time.perf_counter()
    step, seen = 0, 0
    with progress_bar(progress, description, total) as bar:
        job = bar.add_task(description, total=total, loss=float("nan"), rate=0.0)
        epoch = 0
        while step < total:
            for batch in batches_on(data, acc, cfg.batch_size, shuffle=True, seed=seed * 100_003 + epoch,
                                    batching=cfg.batching):
                if step >= total:
                    break
                with acc.autocast():
                    t_out = None
                    if use_teacher:
                        if cache is not None:
                            t_out = cache.outputs(batch)
                        else:
                            with torch.no_grad():
                                t_out = forward(t_model, batch, needs)
                    s_out = forward(model, batch, needs)
                    value = sum(loss.weight * loss(s_out, t_out, batch) for loss in losses if loss.weight)
                opt.zero_grad(set_to_none=True)
                value.backward()  # type: ignore[union-attr]
                torch.nn.utils.clip_grad_norm_([p for _, p in params], 1.0)
                opt.step()
                sched.step()
                step += 1
                seen += len(batch["labels"])
                if not acc.is_cuda or (progress and step % 50 == 0):  # reading the loss syncs a GPU: rarely
                    bar.update(job, advance=0, loss=float(value.detach()))  # type: ignore[union-attr]
                if tracker is not None and tracker.wants(step):
                    tracker.log_step(step, float(value.detach()), float(sched.get_last_lr()[0]))  # type: ignore[union-attr]
                bar.update(job, advance=1, rate=seen / (time.perf_counter() - start))
            epoch += 1
            if selection is not None and _evaluate_epoch(selection, tracker, model, step, steps_per_epoch):
                break
    if selection is not None:
        selection.restore(model)
    acc.synchronize()
    model.eval()
    return time.perf_counter() - start


def _evaluate_epoch(selection: Selection, tracker: Tracker | None, model: Any, step: int, per_epoch: int) -> bool:
    """Score the model after a pass over the data (``selection``), log it; True: stop early."""
    stop = selection.after_epoch(model, step / per_epoch, step)
    if tracker is not None:
        tracker.log_eval(step, selection.history[-1]["metrics"])
    return stop


@torch.no_grad()
def predict(model: Any, data: Encoded, task: Task, *, batch_size: int = 128) -> np.ndarray:
    """Class ids (or scores) for every example, on the device the model is on."""
    model.eval()
    acc = accelerator_of(model)
    out = np.zeros(len(data), dtype=np.float32 if task.is_regression else np.int64)
    for batch in batches_on(data, acc, batch_size, shuffle=False):
        with acc.autocast():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                           token_type_ids=batch["token_type_ids"]).logits
        pred = logits.float().squeeze(-1) if task.is_regression else logits.argmax(-1)
        out[np.asarray(batch_rows(batch))] = pred.cpu().numpy()
    return out


def evaluate(model: Any, data: Encoded, task: Task) -> dict[str, float]:
    """The task's dev metrics."""
    return task.score(predict(model, data, task), data.labels)


@torch.no_grad()
def logits_of(model: Any, data: Encoded, *, batch_size: int = 128) -> np.ndarray:
    """The model's logits (float32, one row per example) on the device the model is on."""
    model.eval()
    acc = accelerator_of(model)
    rows: list[np.ndarray] = []
    order: list[np.ndarray] = []
    for batch in batches_on(data, acc, batch_size, shuffle=False):
        with acc.autocast():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                           token_type_ids=batch["token_type_ids"]).logits
        rows.append(logits.float().cpu().numpy())
        order.append(np.asarray(batch_rows(batch)))
    out = np.zeros((len(data), rows[0].shape[1] if rows else 1), dtype=np.float32)
    for idx, r in zip(order, rows, strict=True):
        out[idx] = r
    return out


def predictions(logits: np.ndarray, task: Task) -> np.ndarray:
    """Class ids (or scores) from :func:`logits_of`, as :func:`predict` gives them."""
    return logits.squeeze(-1) if task.is_regression else logits.argmax(-1)


def teacher_fidelity(student: np.ndarray, teacher: np.ndarray, task: Task) -> float:
    """How close the student's held-out outputs are to the teacher's: minus the KD loss (the mean
    KL(teacher ‖ student) of their softmaxes; the mean squared difference for regression). Higher is closer;
    continuous, so it tells apart students whose task metric ties (e.g. every all-positive answer's F1)."""
    if task.is_regression:
        return -float(np.mean((student.squeeze(-1) - teacher.squeeze(-1)) ** 2))
    log_s = student - np.logaddexp.reduce(student, axis=-1, keepdims=True)
    log_t = teacher - np.logaddexp.reduce(teacher, axis=-1, keepdims=True)
    return -float(np.mean(np.sum(np.exp(log_t) * (log_t - log_s), axis=-1)))


# -- students --------------------------------------------------------------------------------------
def save_model(model: Any, tokenizer: Any, out: Path, *, onnx: bool = True) -> None:
    """HF layout (config.json, model.safetensors, tokenizer files) and, with ``onnx``, model.onnx."""
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    if onnx:
        export_onnx(model, out / "model.onnx")
