"""What every training job shares: the event callback, the checks of a verb's values (one wording each: the
option's name, "must be positive, got X"), the training options (``max_length``, ``log_to``, ``log_dir``,
``eval_every``, ``early_stopping``) checked in one place, the local files a task reads, and the output folder's
check and lock.

Nothing here imports torch: the command line builds its requests from these modules at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..distill.data import TASKS, get_task
from ..distill.lengths import parse_max_length
from ..distill.selection import make_selection
from ..distill.taskspec import TaskRef
from ..distill.tracking import check_log_to
from ..errors import KdnasError
from ..outdirs import FolderLock, check_out_folder

EventFn = Callable[[str, dict[str, Any]], None]
"""``on_event(kind, data)``: ``"message"`` (``data["text"]``, a line for the user), ``"note"`` (``data["text"]``, a
remark such as a stale lock taken over) and each job's own kinds."""


def no_events(kind: str, data: dict[str, Any]) -> None:
    """The callback of a job run without one: every event dropped."""


def check_positive(*values: tuple[str, int | float | None]) -> None:
    """Each ``(name, value)`` with a value (None: not set) is positive, else the one line ``NAME must be positive,
    got VALUE``."""
    for name, value in values:
        if value is not None and value <= 0:
            raise KdnasError(f"{name} must be positive, got {value}")


def training_settings(max_length: int | str, log_to: str | None, log_dir: str | None, out: str | None, *,
                      eval_every: str = "end", early_stopping: int | None = None) -> dict[str, Any]:
    """The training options checked (one line each, before any work), as keyword arguments of ``finetune``,
    ``distill`` and ``DistillOptions``: ``max_length`` (a number or "auto"), ``log_to``, ``log_dir`` (default
    OUT/logs) and, when given, ``eval_every`` and ``early_stopping``."""
    if log_to is not None and log_dir is None and out is None:
        raise KdnasError("--log-to needs a folder to log into: pass --log-dir (or --out, which logs into OUT/logs)")
    if log_dir is not None and log_to is None:
        raise KdnasError("--log-dir goes with --log-to (which tracker to log to)")
    # the options' own errors first, then whether the tracker's package is installed
    settings: dict[str, Any] = {"max_length": parse_max_length(max_length), "log_to": check_log_to(log_to)}
    if log_to is not None:
        settings["log_dir"] = log_dir or str(Path(str(out)) / "logs")
    make_selection(eval_every, early_stopping, dict, "")
    if eval_every != "end":
        settings |= {"eval_every": eval_every, "early_stopping": early_stopping}
    return settings


def task_inputs(task: TaskRef | None, data_dir: str | None) -> list[tuple[str, str | None]]:
    """The local files and folders ``task`` reads (an output folder may hold none of them)."""
    files = [("--data-dir", data_dir)]
    for name in ("train_file", "validation_file"):
        files.append((f"--{name.replace('_', '-')}", getattr(task, name, None)))
    return [(n, None if v is None else str(v)) for n, v in files]


def out_folder(out: str, *, overwrite: bool, inputs: list[tuple[str, str | None]], emit: EventFn) -> FolderLock:
    """Check ``--out`` (new or empty unless ``overwrite``; none of ``inputs``) and return its lock, to hold while
    writing (one writer per folder); a stale lock taken over is said as a ``note`` event."""
    check_out_folder("--out", out, overwrite=overwrite, inputs=inputs)
    return FolderLock(out, "--out", note=lambda text: emit("note", {"text": text}))


def resolve_task(task: str | None, data_dir: str | None, *, train_file: str | None = None,
                 validation_file: str | None = None, dataset: str | None = None, text_columns: str | None = None,
                 label_column: str | None = None, metric: str | None = None, required: bool = True) -> TaskRef | None:
    """The task a verb's options name: a GLUE name (checked by the verb), or a task of one's own (files or a hub
    dataset, its text columns, label column and metric), read and checked; each bad combination is a one-line
    :class:`~kdnas_bench.errors.KdnasError`. ``required``: a verb that has a default task passes False."""
    if not (train_file or validation_file or dataset):
        _check_glue_options(task, text_columns=text_columns, label_column=label_column, metric=metric,
                            required=required)
        return task
    if data_dir is not None:
        raise KdnasError("--data-dir is for GLUE tasks; your own data comes from --train-file/--validation-file or "
                         "--dataset")
    if task is not None:
        key = task.lower().replace("-", "").replace("_", "")
        glue = key in {t.replace("-", "") for t in TASKS} or key == "agnostic"
        if glue:
            raise KdnasError(f"--task {task} names a GLUE task (or the task-agnostic mode); with your own data --task "
                             "only names the task: pick another name or leave it out")
    from ..distill.taskfiles import own_task  # noqa: PLC0415  lazy: pandas, pyarrow (via distill.taskfiles)

    return get_task(own_task(train_file=train_file, validation_file=validation_file, dataset=dataset,
                             text_columns=_columns(text_columns), label_column=label_column, metric=metric, name=task))


def _check_glue_options(task: str | None, *, text_columns: str | None, label_column: str | None, metric: str | None,
                        required: bool) -> None:
    """Without data of one's own: no own-task options, and a task when the verb needs one."""
    extra = [f"--{n.replace('_', '-')}" for n, v in (("text_columns", text_columns), ("label_column", label_column),
                                                     ("metric", metric)) if v is not None]
    if extra:
        raise KdnasError(f"{', '.join(extra)}: for a task of your own (--train-file and --validation-file, or "
                         "--dataset); a GLUE --task has its own columns and metric")
    if task is None and required:
        raise KdnasError("give the task: --task (a GLUE task) with --data-dir, or your own data with --train-file "
                         "and --validation-file (or --dataset NAME[:CONFIG])")


def _columns(text_columns: str | None) -> tuple[str, ...] | None:
    """``--text-columns a,b`` as a tuple (None: not given)."""
    if text_columns is None:
        return None
    columns = tuple(c.strip() for c in text_columns.split(",") if c.strip())
    if not columns:
        raise KdnasError(f"--text-columns needs one or two column names, got {text_columns!r}")
    return columns
