"""Distil a student ``Arch`` from a teacher on a GLUE task: proxy mode (a stratified subset of N
examples, few epochs; what KD-NAS scores candidates with) or full mode (the whole train set).

Deterministic: the same seed on the same machine gives the same metrics (seeded init, dropout and
data order; no nondeterministic ops on CPU). Teacher outputs on a training set can be cached once and
reused by every student distilled on it (see :func:`cache_teacher`).
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import KdnasError
from ..models import build_model
from ..space import Arch
from .cache import cache_bytes, cache_teacher, forward
from .data import BATCHING, Encoded, Task, batches, encode, get_task, load_split, proxy_indices
from .losses import DEFAULT_LOSSES, KDLoss, build_losses, needs_of, needs_teacher
from .teacher import PrimaryMetric, Teacher, load_teacher


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

    @property
    def mode(self) -> str:
        return "proxy" if len(self.train) < self.train_total else "full"


def prepare_data(tokenizer: Any, task: str | Task, *, data_dir: str | Path | None = None,
                 max_examples: int | None = None, seed: int = 0, max_length: int = 128) -> TaskData:
    """Load and tokenise train (a stratified seeded subset of ``max_examples`` when given) and dev."""
    t = get_task(task)
    if max_examples is not None and max_examples <= 0:
        raise KdnasError(f"max examples must be positive, got {max_examples}")
    train = load_split(t, "train", data_dir)
    dev = load_split(t, "dev", data_dir)
    total = len(train)
    if max_examples is not None and max_examples < len(train):
        train = train.subset(proxy_indices(train.labels, max_examples, seed=seed))
    return TaskData(t, encode(train, tokenizer, max_length=max_length), encode(dev, tokenizer, max_length=max_length),
                    total)


# -- training and evaluation -----------------------------------------------------------------------
def _optimizer(params: list[tuple[str, torch.nn.Parameter]], cfg: TrainConfig) -> torch.optim.Optimizer:
    decay = [p for n, p in params if p.ndim > 1 and "LayerNorm" not in n]
    no_decay = [p for n, p in params if not (p.ndim > 1 and "LayerNorm" not in n)]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def _progress(enabled: bool, description: str, total: int) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[rate]:.0f} ex/s"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=True, disable=not enabled,
    )
    return progress


def train(model: Any, data: Encoded, task: Task, losses: list[KDLoss], cfg: TrainConfig, *, seed: int = 0,
          teacher: Teacher | None = None, progress: bool = False, description: str = "train") -> float:
    """Train ``model`` (and the losses' own parameters) on ``data``; returns wall seconds. The teacher's
    outputs come from ``data.teacher_cache`` when it covers the losses, else from live forwards."""
    needs = needs_of(losses)
    use_teacher = needs_teacher(losses)
    if use_teacher and teacher is None:
        raise KdnasError("distillation losses need a teacher")
    cache = data.teacher_cache if use_teacher and teacher is not None else None
    if cache is not None and not cache.covers(teacher, needs):
        cache = None
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params += [(f"loss{i}.{n}", p) for i, loss in enumerate(losses) for n, p in loss.named_parameters()]
    opt = _optimizer(params, cfg)
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
    start = time.perf_counter()
    step, seen = 0, 0
    with _progress(progress, description, total) as bar:
        job = bar.add_task(description, total=total, loss=float("nan"), rate=0.0)
        epoch = 0
        while step < total:
            for batch in batches(data, cfg.batch_size, shuffle=True, seed=seed * 100_003 + epoch,
                                 batching=cfg.batching):
                if step >= total:
                    break
                t_out = None
                if use_teacher:
                    if cache is not None:
                        t_out = cache.outputs(batch)
                    else:
                        with torch.no_grad():
                            t_out = forward(teacher.model, batch, needs)  # type: ignore[union-attr]
                s_out = forward(model, batch, needs)
                value = sum(loss.weight * loss(s_out, t_out, batch) for loss in losses if loss.weight)
                opt.zero_grad(set_to_none=True)
                value.backward()  # type: ignore[union-attr]
                torch.nn.utils.clip_grad_norm_([p for _, p in params], 1.0)
                opt.step()
                sched.step()
                step += 1
                seen += len(batch["labels"])
                bar.update(job, advance=1, loss=float(value.detach()), rate=seen / (time.perf_counter() - start))
            epoch += 1
    model.eval()
    return time.perf_counter() - start


@torch.no_grad()
def predict(model: Any, data: Encoded, task: Task, *, batch_size: int = 128) -> np.ndarray:
    model.eval()
    out = np.zeros(len(data), dtype=np.float32 if task.is_regression else np.int64)
    for batch in batches(data, batch_size, shuffle=False):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       token_type_ids=batch["token_type_ids"]).logits
        pred = logits.squeeze(-1) if task.is_regression else logits.argmax(-1)
        out[batch["index"].numpy()] = pred.numpy()
    return out


def evaluate(model: Any, data: Encoded, task: Task) -> dict[str, float]:
    """The task's dev metrics."""
    return task.score(predict(model, data, task), data.labels)


# -- students --------------------------------------------------------------------------------------
def _pca_projection(weight: torch.Tensor, width: int) -> torch.Tensor:
    """(H_t, width) matrix onto the top principal directions of the teacher's token embeddings."""
    x = weight.double() - weight.double().mean(0)
    _, vecs = torch.linalg.eigh(x.T @ x)
    proj = vecs[:, -width:].flip(-1)
    return (proj * torch.sign(proj.sum(0, keepdim=True) + 1e-12)).float()  # fixed sign: deterministic


INITS = ("inherit", "embeddings", "random")


@torch.no_grad()
def init_student(arch: Arch, teacher: Teacher, task: Task, *, seed: int = 0, init: str = "inherit",
                 data: Encoded | None = None, importance_examples: int = 256) -> Any:
    """A ``BertForSequenceClassification`` for ``arch``.

    ``init="inherit"`` (default): every tensor sliced from the teacher rewired by importance measured on
    ``importance_examples`` examples of ``data`` (:mod:`.inherit`; weight magnitude when ``data`` is None);
    a student wider than the teacher falls back to ``"embeddings"``. ``"embeddings"``: the teacher's
    embeddings (copied when the widths match, else projected onto their top principal directions) and, when
    hidden, heads and FFN all match, the teacher's layers by the uniform mapping. ``"random"``: nothing from
    the teacher. ``"auto"`` is the old name of ``"embeddings"``."""
    init = "embeddings" if init == "auto" else init
    if init not in INITS:
        raise KdnasError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    tcfg = teacher.model.config
    student = build_model(arch, num_labels=task.num_labels, vocab_size=int(tcfg.vocab_size),
                          max_position=int(tcfg.max_position_embeddings), seed=seed)
    labels = list(task.labels) if task.labels else ["score"]
    student.config.id2label = dict(enumerate(labels))
    student.config.label2id = {n: i for i, n in enumerate(labels)}
    if task.is_regression:
        student.config.problem_type = "regression"
    if init == "random" or getattr(tcfg, "model_type", "") != "bert":
        return student
    from .inherit import TeacherShape, inherit_into, teacher_importance

    if init == "inherit" and TeacherShape.of(tcfg).fits(arch) and hasattr(teacher.model, "classifier"):
        with torch.enable_grad():
            imp = teacher_importance(teacher.model, data, examples=importance_examples,
                                     regression=task.is_regression, seed=seed)
        inherit_into(student, teacher.model, imp)
        return student.eval()
    t_emb, s_emb = teacher.model.bert.embeddings, student.bert.embeddings
    if arch.hidden <= tcfg.hidden_size:
        proj = (torch.eye(arch.hidden) if arch.hidden == tcfg.hidden_size
                else _pca_projection(t_emb.word_embeddings.weight, arch.hidden))
        for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
            getattr(s_emb, name).weight.copy_(getattr(t_emb, name).weight @ proj)
    same = (arch.hidden, arch.heads, arch.ffn) == (tcfg.hidden_size, tcfg.num_attention_heads,
                                                   tcfg.intermediate_size)
    if same:
        s_emb.load_state_dict(t_emb.state_dict())
        from .losses import layer_map

        for s, t in enumerate(layer_map(arch.layers, int(tcfg.num_hidden_layers), "uniform"), start=1):
            student.bert.encoder.layer[s - 1].load_state_dict(teacher.model.bert.encoder.layer[t - 1].state_dict())
        if student.bert.pooler is not None and teacher.model.bert.pooler is not None:
            student.bert.pooler.load_state_dict(teacher.model.bert.pooler.state_dict())
    return student.eval()


def save_model(model: Any, tokenizer: Any, out: Path, *, onnx: bool = True) -> None:
    """HF layout (config.json, model.safetensors, tokenizer files) and, with ``onnx``, model.onnx."""
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    if onnx:
        from ..profiling.backends.ort import export_onnx

        export_onnx(model, out / "model.onnx")


def save_student(model: Any, tokenizer: Any, out: Path, result: Any) -> None:
    """Save a distilled student (HF layout, safetensors, ONNX) with its ``metrics.json``; sets ``result.out``."""
    save_model(model, tokenizer, out, onnx=True)
    result.out = str(out)
    (out / "metrics.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")


# -- the API ---------------------------------------------------------------------------------------
@dataclass
class DistillResult(PrimaryMetric):
    task: str
    arch: dict[str, int]
    params: int
    train_seconds: float
    metrics: dict[str, float]
    primary_metric: str
    mode: str  # "proxy" (a subset) or "full" (the whole train set)
    train_examples: int
    epochs: float
    losses: list[tuple[str, float]]
    seed: int
    teacher: str
    teacher_cache_seconds: float | None = None  # None: live teacher forwards, no cache
    out: str | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["losses"] = [{"name": n, "weight": w} for n, w in self.losses]
        d["primary"] = self.primary
        return d


def distill(
    teacher: str | Path | Teacher,
    task: str | Task,
    arch: Arch | str,
    *,
    data_dir: str | Path | None = None,
    data: TaskData | None = None,
    max_examples: int | None = None,
    epochs: float = 3.0,
    losses: str | list[tuple[str, float]] = DEFAULT_LOSSES,
    seed: int = 0,
    out: str | Path | None = None,
    progress: bool = False,
    lr: float = 5e-4,
    batch_size: int = 32,
    temperature: float = 1.0,
    init: str = "inherit",
    cache: str = "auto",
    max_length: int = 128,
    max_cache_bytes: int = 2 * 1024**3,
    freeze_embeddings: bool = False,
    batching: str = "random",
    init_model: Any | None = None,
) -> DistillResult:
    """Distil a student ``arch`` from ``teacher`` on ``task`` and evaluate it on dev.

    Pass a loaded :class:`Teacher` and a prepared :class:`TaskData` to run many candidates without
    reloading; the teacher's outputs on ``data.train`` are then cached on the first call (``cache="auto"``
    caches when they fit in ``max_cache_bytes``; ``"off"`` never) and reused by the next ones.
    ``max_examples``: proxy mode on a stratified seeded subset; None: the whole train set.
    ``init``: see :func:`init_student`; ``init_model``: start from a copy of this model instead (e.g. a
    sub-network extracted from a supernet)."""
    if isinstance(arch, str):
        arch = Arch.parse(arch)
    if cache not in ("auto", "off"):
        raise KdnasError(f"cache must be 'auto' or 'off', got {cache!r}")
    t = get_task(task)
    teacher = load_teacher(teacher, task=t)
    if data is None:
        data = prepare_data(teacher.tokenizer, t, data_dir=data_dir, max_examples=max_examples, seed=seed,
                            max_length=max_length)
    elif data.task.name != t.name:
        raise KdnasError(f"prepared data is for task {data.task.name}, not {t.name}")
    elif max_examples is not None and max_examples < len(data.train):
        data = TaskData(t, data.train.subset(proxy_indices(data.train.labels, max_examples, seed=seed)), data.dev,
                        data.train_total or len(data.train))
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, batching=batching)
    if init_model is not None:
        student = copy.deepcopy(init_model)
        init = "given"
    else:
        student = init_student(arch, teacher, t, seed=seed, init=init, data=data.train)
    if freeze_embeddings:  # the word-embedding table dominates a small student's update cost
        student.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    torch.manual_seed(seed)
    loss_fns = build_losses(losses, student_config=student.config, teacher_config=teacher.model.config,
                            regression=t.is_regression, temperature=temperature)
    needs = needs_of(loss_fns)
    cache_seconds = None
    start = time.perf_counter()
    if needs_teacher(loss_fns) and cache == "auto":
        existing = data.train.teacher_cache
        if existing is not None and existing.covers(teacher, needs):
            cache_seconds = 0.0
        elif cache_bytes(data.train, teacher, needs) <= max_cache_bytes:
            cache_seconds = cache_teacher(teacher, data.train, needs).seconds
    train(student, data.train, t, loss_fns, cfg, seed=seed, teacher=teacher, progress=progress,
          description=f"distil {arch}")
    seconds = time.perf_counter() - start  # includes building the teacher cache, when this call built it
    metrics = evaluate(student, data.dev, t)
    mode = data.mode if data.train_total else ("full" if max_examples is None else "proxy")
    result = DistillResult(
        task=t.name, arch=arch.to_dict(), params=sum(p.numel() for p in student.parameters()),
        train_seconds=round(seconds, 3), metrics=metrics, primary_metric=t.primary_metric,
        mode=mode, train_examples=len(data.train), epochs=epochs,
        losses=[(loss.name, loss.weight) for loss in loss_fns],
        seed=seed, teacher=teacher.name,
        teacher_cache_seconds=None if cache_seconds is None else round(cache_seconds, 3),
        config={"lr": lr, "batch_size": batch_size, "temperature": temperature, "init": init,
                "max_length": max_length, "freeze_embeddings": freeze_embeddings, "batching": batching},
    )
    if out is not None:
        save_student(student, teacher.tokenizer, Path(out), result)
    return result
