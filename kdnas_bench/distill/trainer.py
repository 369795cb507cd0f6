"""Distil a student ``Arch`` from a teacher: on a GLUE task's examples or on unlabeled text (task-agnostic),
in proxy mode (a seeded subset, few epochs; what KD-NAS scores candidates with) or full mode (all of it).

Deterministic: the same seed on the same machine gives the same metrics (seeded init, dropout and
data order; no nondeterministic ops on CPU). Teacher outputs on a training set can be cached once and
reused by every student distilled on it (see :func:`cache_teacher`).
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..defaults import DEFAULTS, INITS
from ..errors import KdnasError
from ..models import build_model, teacher_extras
from ..space import Arch
from .accelerator import AcceleratorSpec, CandidateFailure, resolve
from .agnostic import TASK, TextData, default_teacher, kd_loss, load_text, prepare_text
from .baseline import check_teacher
from .cache import cache_bytes, cache_teacher
from .data import AGNOSTIC, Encoded, Task, TaskRef, get_task, proxy_indices
from .inherit import TeacherShape, inherit_into, teacher_importance
from .layerchoice import LAYER_CHOICES, teacher_layers
from .lengths import AUTO, length_config, model_positions, parse_max_length
from .losses import DEFAULT_LOSSES, KDLoss, build_losses, layer_map, needs_of, needs_teacher
from .selection import make_selection
from .teacher import PrimaryMetric, Teacher, load_teacher
from .tracking import check_log_to, open_tracker
from .training import (
    TaskData,
    TrainConfig,
    evaluate,
    logits_of,
    predict,
    predictions,
    prepare_data,
    save_model,
    teacher_fidelity,
    train,
)

FIDELITY = "teacher_fidelity"  # the metrics key of distill_task(fidelity_to=...)


def _pca_projection(weight: torch.Tensor, width: int) -> torch.Tensor:
    """(H_t, width) matrix onto the top principal directions of the teacher's token embeddings."""
    x = weight.double() - weight.double().mean(0)
    _, vecs = torch.linalg.eigh(x.T @ x)
    proj = vecs[:, -width:].flip(-1)
    return (proj * torch.sign(proj.sum(0, keepdim=True) + 1e-12)).float()  # fixed sign: deterministic


@torch.no_grad()
def init_student(arch: Arch, teacher: Teacher, task: Task, *, seed: int = 0, init: str = "inherit",
                 data: Encoded | None = None, importance_examples: int = 256, layer_choice: str = "spread") -> Any:
    """A ``BertForSequenceClassification`` for ``arch``.

    ``init="inherit"`` (default): every tensor sliced from the teacher rewired by importance measured on
    ``importance_examples`` examples of ``data`` (:mod:`.inherit`; weight magnitude when ``data`` is None);
    a student wider than the teacher falls back to ``"embeddings"``. ``"embeddings"``: the teacher's
    embeddings (copied when the widths match, else projected onto their top principal directions) and, when
    hidden, heads and FFN all match, the teacher's layers by the uniform mapping. ``"random"``: nothing from
    the teacher. ``"auto"`` is the old name of ``"embeddings"``. ``layer_choice`` (inherit only): which teacher
    layers a shallower student keeps — ``"spread"`` evenly, ``"importance"`` measured on ``data``
    (:mod:`.layerchoice`)."""
    init = "embeddings" if init == "auto" else init
    if init not in INITS:
        raise KdnasError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    if layer_choice not in LAYER_CHOICES:
        raise KdnasError(f"layer choice must be one of {', '.join(LAYER_CHOICES)}, got {layer_choice!r}")
    tcfg = teacher.model.config
    student = build_model(arch, num_labels=task.num_labels, vocab_size=int(tcfg.vocab_size),
                          max_position=int(tcfg.max_position_embeddings), seed=seed, **teacher_extras(tcfg))
    labels = list(task.labels) if task.labels else ["score"]
    student.config.id2label = dict(enumerate(labels))
    student.config.label2id = {n: i for i, n in enumerate(labels)}
    if task.is_regression:
        student.config.problem_type = "regression"
    if init == "random" or getattr(tcfg, "model_type", "") != "bert":
        return student

    if init == "inherit" and TeacherShape.of(tcfg).fits(arch) and hasattr(teacher.model, "classifier"):
        with torch.enable_grad():
            imp = teacher_importance(teacher.model, data, examples=importance_examples,
                                     regression=task.is_regression, seed=seed)
        kept = None if layer_choice == "spread" else teacher_layers(
            teacher.model, data, arch.layers, examples=importance_examples, regression=task.is_regression, seed=seed)
        inherit_into(student, teacher.model, imp, layers=kept)
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

        for s, t in enumerate(layer_map(arch.layers, int(tcfg.num_hidden_layers), "uniform"), start=1):
            student.bert.encoder.layer[s - 1].load_state_dict(teacher.model.bert.encoder.layer[t - 1].state_dict())
        if student.bert.pooler is not None and teacher.model.bert.pooler is not None:
            student.bert.pooler.load_state_dict(teacher.model.bert.pooler.state_dict())
    return student.eval()


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
    data: dict[str, Any] | None = None  # a task of one's own: its spec (files, columns, label map, content hash)
    # the teacher against the dev set's trivial score (:meth:`.baseline.TeacherCheck.to_dict`), from :func:`distill`
    baseline: dict[str, Any] | None = None
    selection: dict[str, Any] | None = None  # per-epoch evaluation (:meth:`.selection.Selection.to_dict`)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["losses"] = [{"name": n, "weight": w} for n, w in self.losses]
        d["primary"] = self.primary
        for key in ("data", "baseline", "selection"):
            if d[key] is None:
                d.pop(key)
        if self.baseline is not None:
            d["below_trivial"] = self.below_trivial
        return d

    @property
    def below_trivial(self) -> bool | None:
        """Whether the student scores below its dev set's trivial answer (None: no baseline known)."""
        if self.baseline is None:
            return None
        return bool(self.primary < float(self.baseline["trivial"]))


@dataclass(frozen=True)
class DistillOptions:
    """How a student is distilled, whatever the data: the recipe (epochs, KD losses, learning rate, batch,
    temperature, student init), the teacher-output cache, and training details. ``losses`` None: the flow's
    default (``DEFAULTS.distill_losses`` on a task, ``DEFAULTS.agnostic_losses`` on text)."""

    epochs: float = 3.0
    losses: str | list[tuple[str, float]] | None = None
    seed: int = 0
    lr: float = DEFAULTS.distill_lr
    batch_size: int = 32
    temperature: float = 1.0
    init: str = "inherit"
    layer_choice: str = "spread"  # which teacher layers an inherited shallower student keeps (:mod:`.layerchoice`)
    cache: str = "auto"
    max_length: int | str = "auto"  # tokens per example, or "auto": from the data (:mod:`.lengths`)
    max_cache_bytes: int = 2 * 1024**3
    freeze_embeddings: bool = False
    batching: str = "random"
    # where it trains (:mod:`.accelerator`): "cpu" (None), "cuda" or "auto"; the student is built on the CPU,
    # trained and scored on the device, and handed back on the CPU
    accelerator: AcceleratorSpec = None
    # "epoch": score dev after every epoch, keep the best state, stop after ``early_stopping`` evaluations
    # without improvement (:mod:`.selection`); "end": once, after training
    eval_every: str = "end"
    early_stopping: int | None = None
    log_to: str | None = None  # "tensorboard": log into ``log_dir`` (:mod:`.tracking`)
    log_dir: str | None = None

    def __post_init__(self) -> None:
        if self.cache not in ("auto", "off"):
            raise KdnasError(f"cache must be 'auto' or 'off', got {self.cache!r}")
        if self.layer_choice not in LAYER_CHOICES:
            raise KdnasError(f"layer choice must be one of {', '.join(LAYER_CHOICES)}, got {self.layer_choice!r}")
        parse_max_length(self.max_length)
        make_selection(self.eval_every, self.early_stopping, dict, "")
        check_log_to(self.log_to)


@dataclass
class _Source:
    """What differs between distilling on a task's examples and on unlabeled text: the data, how a student is
    scored on dev, the init, the default losses and the result's extra configuration."""

    task: Task
    teacher: Teacher
    train: Encoded
    dev: Encoded
    mode: str
    init: str
    score: Callable[[Any, list[KDLoss]], dict[str, float]]
    config: dict[str, Any]
    losses: str | list[tuple[str, float]]
    agnostic: bool = False


def _run(src: _Source, arch: Arch | str, opts: DistillOptions, *, out: str | Path | None, progress: bool,
         init_model: Any | None) -> DistillResult:
    """The shared trainer: build (or copy) the student, cache the teacher's outputs when they fit, train, score."""
    acc = resolve(opts.accelerator)
    if isinstance(arch, str):
        arch = Arch.parse(arch)
    config = {"lr": opts.lr, "batch_size": opts.batch_size, **src.config}
    if acc.on_device:
        config.update(acc.describe())
    cfg = TrainConfig(epochs=opts.epochs, batch_size=opts.batch_size, lr=opts.lr, batching=opts.batching)
    if init_model is not None:
        student = copy.deepcopy(init_model)
        config["init"] = "given"
    else:
        try:
            student = init_student(arch, src.teacher, src.task, seed=opts.seed, init=src.init,
                                   data=None if src.agnostic else src.train, layer_choice=opts.layer_choice)
        except (ValueError, RuntimeError, IndexError) as exc:  # a shape the model code refuses
            raise CandidateFailure(f"cannot build student {arch}: {' '.join(str(exc).split())[:300]}") from None
        if opts.layer_choice != "spread":  # the default leaves the result as it was
            config["layer_choice"] = opts.layer_choice
    if opts.freeze_embeddings:  # the word-embedding table dominates a small student's update cost
        student.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    torch.manual_seed(opts.seed)
    loss_fns = build_losses(src.losses, student_config=student.config, teacher_config=src.teacher.model.config,
                            regression=src.task.is_regression, temperature=opts.temperature)
    if src.agnostic and (not loss_fns or any(not loss.needs for loss in loss_fns)):
        raise KdnasError(f"task-agnostic distillation uses representation losses (hidden, hidden-uniform, attn), "
                         f"got {src.losses!r}")
    needs = needs_of(loss_fns)
    cache_seconds = None
    start = time.perf_counter()
    if needs_teacher(loss_fns) and opts.cache == "auto":
        existing = src.train.teacher_cache
        if existing is not None and existing.covers(src.teacher, needs, acc.name):
            cache_seconds = 0.0
        elif cache_bytes(src.train, src.teacher, needs) <= opts.max_cache_bytes:
            cache_seconds = cache_teacher(src.teacher, src.train, needs, accelerator=acc).seconds
    def epoch_score(model: Any) -> dict[str, float]:
        with torch.no_grad():
            metrics = src.score(model, loss_fns)
        for loss in loss_fns:  # scoring may set them to eval mode; training goes on
            loss.train()
        return metrics

    selection = make_selection(opts.eval_every, opts.early_stopping, epoch_score, src.task.primary_metric)
    tracker = open_tracker(opts.log_to, opts.log_dir)
    train(student, src.train, loss_fns, cfg, seed=opts.seed, teacher=src.teacher, progress=progress,
          description=f"distil {arch}" + (" (task-agnostic)" if src.agnostic else ""), accelerator=acc,
          selection=selection, tracker=tracker)
    seconds = time.perf_counter() - start  # includes building the teacher cache, when this call built it
    metrics = src.score(student, loss_fns)
    if tracker is not None:
        tracker.finish({**config, "epochs": opts.epochs, "arch": str(arch), "seed": opts.seed}, metrics)
    if acc.on_device:
        student.cpu()
        for loss in loss_fns:
            loss.cpu()
    result = DistillResult(
        task=src.task.name, arch=arch.to_dict(), params=sum(p.numel() for p in student.parameters()),
        train_seconds=round(seconds, 3), metrics=metrics, primary_metric=src.task.primary_metric,
        mode=src.mode, train_examples=len(src.train), epochs=opts.epochs,
        losses=[(loss.name, loss.weight) for loss in loss_fns],
        seed=opts.seed, teacher=src.teacher.name,
        teacher_cache_seconds=None if cache_seconds is None else round(cache_seconds, 3), config=config,
        data=src.task.spec(), selection=None if selection is None else selection.to_dict(),
    )
    if out is not None:
        save_student(student, src.teacher.tokenizer, Path(out), result)
    return result


def distill_task(teacher: str | Path | Teacher, task: TaskRef, arch: Arch | str,
                 opts: DistillOptions | None = None, *, data: TaskData | None = None,
                 data_dir: str | Path | None = None, max_examples: int | None = None, out: str | Path | None = None,
                 progress: bool = False, init_model: Any | None = None,
                 fidelity_to: np.ndarray | None = None) -> DistillResult:
    """Distil ``arch`` on a GLUE task's labelled examples (``data_dir``, or prepared ``data``; ``max_examples``:
    proxy mode on a stratified seeded subset, None: all of it) and score it by the task's dev metrics.
    ``init_model``: start from a copy of this model (e.g. a supernet's sub-network) instead of ``opts.init``.
    ``fidelity_to``: the teacher's dev logits; the student's closeness to them is added to the metrics as
    ``teacher_fidelity`` (:func:`~.training.teacher_fidelity`, the search's tie-breaker)."""
    opts = opts or DistillOptions()
    t = get_task(task)
    loaded = load_teacher(teacher, task=t)
    if data is None:
        data = prepare_data(loaded.tokenizer, t, data_dir=data_dir, max_examples=max_examples, seed=opts.seed,
                            max_length=opts.max_length, positions=model_positions(loaded.model.config))
    elif data.task.name != t.name:
        raise KdnasError(f"prepared data is for task {data.task.name}, not {t.name}")
    elif max_examples is not None and max_examples < len(data.train):
        data = TaskData(t, data.train.subset(proxy_indices(data.train.labels, max_examples, seed=opts.seed)), data.dev,
                        data.train_total or len(data.train), data.lengths)
    mode = data.mode if data.train_total else ("full" if max_examples is None else "proxy")
    dev = data.dev
    def score(student: Any, _: Any) -> dict[str, float]:
        if fidelity_to is None:
            return evaluate(student, dev, t)
        logits = logits_of(student, dev)
        return {**t.score(predictions(logits, t), dev.labels), FIDELITY: teacher_fidelity(logits, fidelity_to, t)}

    src = _Source(t, loaded, data.train, dev, mode, opts.init, score,
                  {"temperature": opts.temperature, "init": opts.init, **length_config(data.lengths, opts.max_length),
                   "freeze_embeddings": opts.freeze_embeddings, "batching": opts.batching},
                  opts.losses or DEFAULT_LOSSES)
    return _run(src, arch, opts, out=out, progress=progress, init_model=init_model)


def distill_text(teacher: str | Path | Teacher | None, arch: Arch | str,
                 opts: DistillOptions | None = None, *, data: Any | None = None,
                 text: str | Path | None = None, max_examples: int | None = None, out: str | Path | None = None,
                 progress: bool = False, init_model: Any | None = None) -> DistillResult:
    """Task-agnostic distillation: ``arch`` learns the teacher's representations on unlabeled ``text`` (one
    passage per line; None: the stdlib docstrings; or a prepared :class:`~.agnostic.TextData` in ``data``), no
    labels and no task head, scored by ``kd_score = exp(-held-out KD loss)``. Representation losses only
    (default ``DEFAULTS.agnostic_losses``); ``teacher`` None is the packaged MiniLM backbone; the student
    starts from the teacher's embeddings. ``opts`` None: :class:`DistillOptions` with 1 epoch."""
    opts = opts or DistillOptions(epochs=1.0)
    loaded = default_teacher() if teacher is None else load_teacher(teacher)
    if data is None:
        given = {} if opts.max_length == AUTO else {"max_length": int(opts.max_length)}  # auto: passages of 64 tokens
        data = prepare_text(loaded.tokenizer, load_text(text), max_examples=max_examples, seed=opts.seed, **given)
    elif max_examples is not None and max_examples < len(data.train):
        data = TextData(data.train.subset(np.arange(max_examples)), data.dev, data.source, data.total)

    def score(student: Any, loss_fns: list[KDLoss]) -> dict[str, float]:
        loss = kd_loss(student, loaded, loss_fns, data.dev)
        return {"kd_score": math.exp(-loss), "kd_loss": loss}

    mode = "proxy" if len(data.train) < data.total else "full"
    src = _Source(TASK, loaded, data.train, data.dev, mode, "embeddings", score,
                  {"text": data.source, "dev_examples": len(data.dev)}, opts.losses or DEFAULTS.agnostic_losses,
                  agnostic=True)
    return _run(src, arch, opts, out=out, progress=progress, init_model=init_model)


def distill(teacher: str | Path | Teacher | None, task: TaskRef, arch: Arch | str, *,
            data_dir: str | Path | None = None, data: Any | None = None, text: str | Path | None = None,
            max_examples: int | None = None, out: str | Path | None = None, progress: bool = False,
            init_model: Any | None = None, allow_weak_teacher: bool = False, **options: Any) -> DistillResult:
    """:func:`distill_task`, or :func:`distill_text` when ``task`` is ``"agnostic"``; ``options`` are the
    fields of :class:`DistillOptions` (``epochs`` default 3). A task teacher is first held against the dev set's
    trivial score (:func:`~.baseline.check_teacher`): a weak one is refused unless ``allow_weak_teacher``, and
    the result records both scores (``baseline``)."""
    opts = DistillOptions(**options)
    if isinstance(task, str) and task.strip().lower() == AGNOSTIC:
        return distill_text(teacher, arch, opts, data=data, text=text, max_examples=max_examples, out=out,
                            progress=progress, init_model=init_model)
    if teacher is None:
        raise KdnasError("a task distillation needs a teacher fine-tuned on the task")
    labels = data.dev.labels if isinstance(data, TaskData) else None
    checked = check_teacher(teacher, task, data_dir, dev_labels=labels, allow_weak_teacher=allow_weak_teacher)
    result = distill_task(teacher, task, arch, opts, data=data, data_dir=data_dir, max_examples=max_examples, out=out,
                          progress=progress, init_model=init_model)
    result.baseline = checked.to_dict()
    if result.out is not None:  # the student's metrics.json with the baseline beside its score
        (Path(result.out) / "metrics.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def distill_agnostic(teacher: str | Path | Teacher | None, arch: Arch | str, *, data: Any | None = None,
                     text: str | Path | None = None, max_examples: int | None = None, epochs: float = 1.0,
                     losses: str = DEFAULTS.agnostic_losses, seed: int = 0, lr: float = DEFAULTS.distill_lr,
                     batch_size: int = 32, out: str | Path | None = None, progress: bool = False,
                     accelerator: AcceleratorSpec = None) -> DistillResult:
    """:func:`distill_text` with loose options (its defaults: 1 epoch, ``hidden,attn``)."""
    return distill_text(teacher, arch, DistillOptions(epochs=epochs, losses=losses, seed=seed, lr=lr,
                                                      batch_size=batch_size, accelerator=accelerator),
                        data=data, text=text,
                        max_examples=max_examples, out=out, progress=progress)


# the training loop lives in .training; these names stay importable from here
__all__ = ["DistillOptions", "DistillResult", "TaskData", "TrainConfig", "distill", "distill_agnostic", "distill_task",
           "distill_text", "evaluate", "init_student", "predict", "prepare_data", "save_model", "save_student", "train"]
