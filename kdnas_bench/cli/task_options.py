"""The task options every verb that trains on a task shares: a GLUE ``--task`` (with ``--data-dir``) or a task of
one's own (``--train-file``/``--validation-file`` or ``--dataset``, ``--text-columns``, ``--label-column``,
``--metric``). :func:`task_options` adds them to a command and hands its body one ``task``: a GLUE name (or
"agnostic", as typed) or a checked :class:`~kdnas_bench.distill.data.Task`, built before any work."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from ..distill.data import TASKS, get_task
from ..distill.metrics import TASK_METRICS
from ..distill.taskspec import TaskRef
from ..distill.teacher import check_teacher_before_work
from ..errors import KdnasError
from ..quickstart.steps import task_argv

OWN = ("train_file", "validation_file", "dataset", "text_columns", "label_column", "metric")
GLUE_HELP = "GLUE task: cola, sst2, mrpc, stsb, qqp, mnli-m, mnli-mm, qnli, rte"


def resolve_task(task: str | None, data_dir: str | None, *, train_file: str | None = None,
                 validation_file: str | None = None, dataset: str | None = None, text_columns: str | None = None,
                 label_column: str | None = None, metric: str | None = None, required: bool = True) -> TaskRef | None:
    """The task the options name: a GLUE name (checked by the verb), or a task of one's own, read and checked."""
    own = train_file or validation_file or dataset
    if not own:
        extra = [f"--{n.replace('_', '-')}" for n, v in (("text_columns", text_columns), ("label_column", label_column),
                                                         ("metric", metric)) if v is not None]
        if extra:
            raise KdnasError(f"{', '.join(extra)}: for a task of your own (--train-file and --validation-file, or "
                             "--dataset); a GLUE --task has its own columns and metric")
        if task is None and required:
            raise KdnasError("give the task: --task (a GLUE task) with --data-dir, or your own data with --train-file "
                             "and --validation-file (or --dataset NAME[:CONFIG])")
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
    columns = None
    if text_columns is not None:
        columns = tuple(c.strip() for c in text_columns.split(",") if c.strip())
        if not columns:
            raise KdnasError(f"--text-columns needs one or two column names, got {text_columns!r}")
    from ..distill.taskfiles import own_task  # noqa: PLC0415  lazy: pandas, pyarrow (via distill.taskfiles)

    return get_task(own_task(train_file=train_file, validation_file=validation_file, dataset=dataset,
                             text_columns=columns, label_column=label_column, metric=metric, name=task))


GLUE_DIR_DEFAULT_HELP = "GLUE TSV folder, e.g. glue/ (glue/SST-2/train.tsv, dev.tsv); default: the hub."


def task_options(*, required: bool = True, task_help: str = GLUE_HELP + ".",
                 data_dir_help: str = GLUE_DIR_DEFAULT_HELP) -> Callable[..., Any]:
    """Add the task options to a command; its body gets ``task`` (resolved) and ``data_dir``, not the others."""

    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def body(**kwargs: Any) -> Any:
            own = {k: kwargs.pop(k) for k in OWN}
            kwargs["task"] = resolve_task(kwargs.get("task"), kwargs.get("data_dir"), required=required, **own)
            return f(**kwargs)

        options = [
            click.option("--task", help=f"{task_help} With your own data (--train-file): a name for it (default: "
                                        "from the file name)."),
            click.option("--data-dir", type=click.Path(), help=data_dir_help),
            click.option("--train-file", type=click.Path(), help="Your own training data: CSV, TSV, JSON Lines "
                                                                 "(.json/.jsonl) or Parquet, with a header of columns."),
            click.option("--validation-file", type=click.Path(), help="Your own validation data (same columns); "
                                                                      "reported metrics are on it."),
            click.option("--dataset", help="A `datasets` name NAME[:CONFIG] (hub, or the local cache offline) with "
                                           "train and validation splits, instead of files."),
            click.option("--text-columns", help="Your data: one or two text columns, e.g. review or "
                                                "question,passage (default: sentence1,sentence2, sentence or text)."),
            click.option("--label-column", help="Your data: the label column (default: label). Text or integer "
                                                "labels: classification; numbers with a fraction: regression."),
            click.option("--metric", type=click.Choice(TASK_METRICS), help="Your data: the primary metric (default: "
                                                                           "accuracy; pearson for regression)."),
        ]
        for option in reversed(options):
            body = option(body)
        return body

    return wrap


def task_args(task: TaskRef, data_dir: str | None) -> list[str]:
    """The CLI options that name ``task`` again (for the commands a pipeline prints as its steps)."""
    return task_argv(task, data_dir)


def teacher_fit_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add ``--force`` to a verb that takes a ``--teacher`` and a task (put it below :func:`task_options`, so the
    task is resolved): before the body runs, a local teacher folder is checked against the task from its files
    (head size and class names always; the text columns its metrics.json records, unless ``--force``)."""

    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def body(**kwargs: Any) -> Any:
            check_teacher_before_work(kwargs.get("teacher"), kwargs.get("task"), force=kwargs.pop("force"))
            return f(**kwargs)

        return click.option("--force", is_flag=True, help="Use the teacher although its metrics.json records other "
                                                          "text columns than the task's.")(body)

    return wrap
