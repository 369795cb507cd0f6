"""Distil a student ``Arch`` from a teacher on a GLUE task: proxy mode (a stratified subset of N
examples, few epochs; what KD-NAS scores candidates with) or full mode (the whole train set).

Deterministic: the same seed on the same machine gives the same metrics (seeded init, dropout and
data order; no nondeterministic ops on CPU). Teacher outputs on a training set can be cached once and
reused by every student distilled on it (see :func:`cache_teacher`).
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..defaults import DEFAULTS, INITS
from ..errors import KdnasError
from ..models import build_model
from ..space import Arch
from .cache import cache_bytes, cache_teacher
from .data import Encoded, Task, get_task, proxy_indices
from .losses import DEFAULT_LOSSES, build_losses, needs_of, needs_teacher
from .teacher import PrimaryMetric, Teacher, load_teacher
from .training import TaskData, TrainConfig, evaluate, predict, prepare_data, save_model, train


def _pca_projection(weight: torch.Tensor, width: int) -> torch.Tensor:
    """(H_t, width) matrix onto the top principal directions of the teacher's token embeddings."""
    x = weight.double() - weight.double().mean(0)
    _, vecs = torch.linalg.eigh(x.T @ x)
    proj = vecs[:, -width:].flip(-1)
    return (proj * torch.sign(proj.sum(0, keepdim=True) + 1e-12)).float()  # fixed sign: deterministic


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
    lr: float = DEFAULTS.distill_lr,
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
    train(student, data.train, loss_fns, cfg, seed=seed, teacher=teacher, progress=progress,
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


# the training loop lives in .training; these names stay importable from here
__all__ = ["DistillResult", "TaskData", "TrainConfig", "distill", "evaluate", "init_student", "predict",
           "prepare_data", "save_model", "save_student", "train"]
