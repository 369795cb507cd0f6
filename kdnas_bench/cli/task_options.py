"""The task options every verb that trains on a task shares: a GLUE ``--task`` (with ``--data-dir``) or a task of
one's own (``--train-file``/``--validation-file`` or ``--dataset``, ``--text-columns``, ``--label-column``,
``--metric``). :func:`task_options` adds them to a command and hands its body one ``task``: a GLUE name (or
"agnostic", as typed) or a checked :class:`~kdnas_bench.distill.data.Task`, built before any work."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from ..distill.metrics import TASK_METRICS
from ..distill.taskspec import TaskRef
from ..distill.teacher import check_teacher_before_work
from ..jobs.common import resolve_task as resolve_task  # the library's, kept importable from here
from ..quickstart.steps import task_argv

OWN = ("train_file", "validation_file", "dataset", "text_columns", "label_column", "metric")
GLUE_HELP = "GLUE task: cola, sst2, mrpc, stsb, qqp, mnli-m, mnli-mm, qnli, rte"


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
