"""Tasks of one's own: a train and a validation file (CSV, TSV, JSON Lines, Parquet, as ``transformers``'
``run_glue.py`` takes them) or a ``datasets`` name, checked in full before any work and read into examples.

* Text: one or two columns (``--text-columns``); by default ``sentence1,sentence2``, ``sentence`` or ``text``
  when present, else the one column besides the label.
* Labels (``--label-column``, default ``label``): text or integers make a classification task whose label map
  is the sorted distinct training labels (integers in numeric order; a ``datasets`` ClassLabel keeps its own
  order); numbers with a fraction (one is enough) make a regression task. ``--metric pearson`` or ``spearman`` makes integer
  labels a regression target too.
* Metric: accuracy (classification; then f1 of the second label and Matthews correlation when there are two
  labels) or pearson (regression) unless ``--metric`` names another.
* Reading: CSV with RFC 4180 quoting, TSV with quoting off (as GLUE writes them, so its TSVs load as own files);
  every row has the header's field count and no CSV cell runs over lines, so a stray quote never merges rows.
* Every problem is a one-line :class:`~kdnas_bench.distill.data.DataError` naming the file, row (and line) and
  column: unknown extension, not a regular file (a FIFO would block), non-UTF-8 text, unparsable file or row, two
  columns of one name, no data rows, a missing column or value, an empty or whitespace-only text, a label that is
  not a single value, labels of mixed types, a validation label never seen in training, a single class.

The task records a content hash of its data (``Task.data_hash``); reading the data again checks it, so a run
that resumes refuses data that changed (:func:`check_run_data`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .metrics import REGRESSION_METRICS, TASK_METRICS
from .tablefile import read_table
from .taskspec import DataError, Examples, Task, hub_reachable

_INT = re.compile(r"[+-]?\d+")
_GENERIC_STEMS = ("train", "training", "data", "dataset", "train_data")


# -- labels ----------------------------------------------------------------------------------------------
_NOT_SCALAR = (list, tuple, dict, set, np.ndarray)


def _at(where: str, lines: list[int] | None, n: int) -> str:
    """Where row ``n`` (from 1) is: "train.csv row 12 (line 14)"."""
    return f"{where} row {n}" + (f" (line {lines[n - 1]})" if lines else "")


def _scalar(v: Any, at: str, what: str, column: str) -> None:
    if isinstance(v, _NOT_SCALAR):
        kind = "list" if isinstance(v, list | tuple | set | np.ndarray) else "JSON object"
        shown = v.tolist() if isinstance(v, np.ndarray) else v
        raise DataError(f"{at}: the {what} in column '{column}' is a {kind} ({str(shown)[:40]}); a {what} must be a "
                        "single value")


def _kind(v: Any) -> str | None:
    """"int", "float" or "str" for a label value; None when it is missing."""
    if v is None or v is pd.NA:
        return None
    if isinstance(v, bool | np.bool_):
        return "str"
    if isinstance(v, int | np.integer):
        return "int"
    if isinstance(v, float | np.floating):
        return None if math.isnan(v) else "float"
    t = str(v).strip()
    if not t:
        return None
    if _INT.fullmatch(t):
        return "int"
    try:
        return "float" if math.isfinite(float(t)) else "str"
    except ValueError:
        return "str"


def _label_text(v: Any) -> str:
    """A class label's name: text stripped, integers (also 2.0) without a fraction."""
    if _kind(v) in ("int", "float"):
        return str(int(float(str(v).strip())))
    return str(v).strip()


def _columns(df: pd.DataFrame, where: str, needed: tuple[str, ...]) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DataError(f"{where}: missing column(s) {', '.join(missing)} (columns: {', '.join(df.columns)})")


def _label_scheme(values: list[Any], where: str, column: str, metric: str | None,
                  order: tuple[str, ...] | None, lines: list[int] | None = None) -> tuple[str, tuple[str, ...]]:
    """(label type, label names; () for regression) of the training labels."""
    first: dict[str, tuple[int, Any]] = {}
    for n, v in enumerate(values, start=1):
        _scalar(v, _at(where, lines, n), "label", column)
        k = _kind(v)
        if k is None:
            raise DataError(f"{_at(where, lines, n)}: no label in column '{column}'")
        first.setdefault(k, (n, v))
    if "str" in first and len(first) > 1:
        (n1, v1), (n2, v2) = first["str"], first.get("int") or first["float"]
        raise DataError(f"{where}: mixed label types in column '{column}': {v1!r} (row {n1}) is text, {v2!r} (row {n2}) "
                        "is a number")
    kind = "str" if "str" in first else "float" if "float" in first else "int"
    fractional = next((v for v in values if kind == "float" and not float(str(v).strip()).is_integer()), None)
    regression = metric in REGRESSION_METRICS if metric else fractional is not None  # 1.0/2.0 are classes
    if regression:
        if kind == "str":
            raise DataError(f"{where}: --metric {metric} needs numeric labels, column '{column}' holds text such as "
                            f"{first['str'][1]!r}")
        return "float", ()
    if kind == "float":
        if fractional is not None:
            why = f"--metric {metric} needs class labels" if metric else "classification needs class labels"
            raise DataError(f"{where}: {why}, column '{column}' holds {fractional!r}")
        kind = "int"
    names = {_label_text(v) for v in values}
    labels = order if order is not None else tuple(sorted(names, key=int) if kind == "int" else sorted(names))
    if len(labels) < 2:
        raise DataError(f"{where}: column '{column}' has a single label {labels[0] if labels else ''!r}: "
                        "classification needs at least two classes")
    return kind, labels


def _metrics(labels: tuple[str, ...], metric: str | None) -> tuple[str, ...]:
    if metric is not None and metric not in TASK_METRICS:
        raise DataError(f"unknown --metric {metric!r} (choose from {', '.join(TASK_METRICS)})")
    if not labels:
        names: tuple[str, ...] = REGRESSION_METRICS
    else:
        names = ("accuracy", "f1", "matthews") if len(labels) == 2 else ("accuracy", "matthews")
        if metric == "f1" and len(labels) != 2:
            raise DataError(f"--metric f1 is for two classes; this task has {len(labels)} ({', '.join(labels[:6])})")
    primary = metric or names[0]
    return (primary, *(m for m in names if m != primary))


def _default_text_columns(df: pd.DataFrame, where: str, label: str) -> tuple[str, ...]:
    others = [c for c in df.columns if c != label]
    if "sentence1" in others and "sentence2" in others:
        return ("sentence1", "sentence2")
    for c in ("sentence", "text"):
        if c in others:
            return (c,)
    if len(others) == 1:
        return (others[0],)
    raise DataError(f"{where}: which column holds the text? pass --text-columns (columns: {', '.join(df.columns)})")


# -- a split's examples ------------------------------------------------------------------------------------
def _texts(df: pd.DataFrame, where: str, col: str) -> tuple[str, ...]:
    """Column ``col``'s texts: each one a value with more than whitespace."""
    lines = df.attrs.get("lines")
    values = df[col].tolist()
    for n, v in enumerate(values, start=1):
        _scalar(v, _at(where, lines, n), "text", col)
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            raise DataError(f"{_at(where, lines, n)}: no text in column '{col}'")
        if not str(v).strip():
            what = "an empty text" if not str(v) else "only whitespace"
            raise DataError(f"{_at(where, lines, n)}: {what} in column '{col}'; every row needs a text")
    return tuple(str(v) for v in values)


def _class_ids(task: Task, raw: list[Any], where: str, split: str, lines: list[int] | None) -> np.ndarray:
    index = {name: i for i, name in enumerate(task.labels)}
    ids = []
    for n, v in enumerate(raw, start=1):
        at = _at(where, lines, n)
        _scalar(v, at, "label", task.label_column)
        k = _kind(v)
        if k is None:
            raise DataError(f"{at}: no label in column '{task.label_column}'")
        name = _label_text(v)
        if name not in index or (k == "str") != (task.label_type == "str"):
            what = "never seen in training" if split == "dev" else "not in the label map"
            raise DataError(f"{at}: label {str(v).strip()!r} is {what} (training labels: "
                            f"{', '.join(task.labels[:10])}{' …' if len(task.labels) > 10 else ''})")
        ids.append(index[name])
    return np.asarray(ids, dtype=np.int64)


def _scores(task: Task, raw: list[Any], where: str, lines: list[int] | None) -> np.ndarray:
    scores = []
    for n, v in enumerate(raw, start=1):
        _scalar(v, _at(where, lines, n), "label", task.label_column)
        if _kind(v) not in ("int", "float"):
            raise DataError(f"{_at(where, lines, n)}: label {v!r} in column '{task.label_column}' is not a number")
        scores.append(float(str(v).strip()))
    return np.asarray(scores, dtype=np.float32)


def _examples(task: Task, df: pd.DataFrame, where: str, split: str) -> Examples:
    _columns(df, where, (*task.text_fields, task.label_column))
    texts = tuple(_texts(df, where, col) for col in task.text_fields)
    raw = df[task.label_column].tolist()
    lines = df.attrs.get("lines")
    labels = _class_ids(task, raw, where, split, lines) if task.labels else _scores(task, raw, where, lines)
    return Examples(texts, labels, where)


# -- the data behind a task, read once per process and version ----------------------------------------------
_LAST: dict[str, Any] = {}


def _files(train_file: str, validation_file: str) -> tuple[dict[str, tuple[pd.DataFrame, str]], str, None]:
    frames, h = {}, hashlib.sha256()
    for split, f in (("train", train_file), ("dev", validation_file)):
        df, raw = read_table(f)
        h.update(hashlib.sha256(raw).digest())
        frames[split] = (df, str(f))
    return frames, h.hexdigest()[:16], None


def _dataset(dataset: str, label_column: str) -> tuple[dict[str, tuple[pd.DataFrame, str]], str, tuple[str, ...] | None]:
    """A ``datasets`` name (``NAME[:CONFIG]``): its train and validation splits, from the hub or the local cache."""
    name, _, config = dataset.partition(":")
    offline = not hub_reachable()
    if offline:
        os.environ["HF_DATASETS_OFFLINE"] = "1"  # the local cache only, at once, instead of the hub's retries
    try:
        import datasets  # noqa: PLC0415  lazy: datasets, optional

        ds = datasets.load_dataset(name, config or None)
    except Exception as exc:  # datasets raises many kinds; all mean "cannot get this dataset"
        why = " ".join(str(exc).split())[:200] or type(exc).__name__
        if offline:
            raise DataError(f"dataset {dataset} is not in the local datasets cache and the hub is offline ({why}); "
                            "pass --train-file and --validation-file instead") from None
        raise DataError(f"cannot load dataset {dataset}: {why}") from None
    for split in ("train", "validation"):
        if split not in ds:
            raise DataError(f"dataset {dataset} has no '{split}' split (splits: {', '.join(ds)})")
    order = None
    feature = ds["train"].features.get(label_column)
    if feature is not None and getattr(feature, "names", None):
        order = tuple(str(x) for x in feature.names)
    frames, h = {}, hashlib.sha256()
    for split, hub in (("train", "train"), ("dev", "validation")):
        df = ds[hub].to_pandas()
        if order is not None and label_column in df:
            df[label_column] = [order[int(v)] if 0 <= int(v) < len(order) else str(v) for v in df[label_column]]
        if len(df) == 0:
            raise DataError(f"dataset {dataset}: the {hub} split is empty")
        frames[split] = (df, f"{dataset}[{hub}]")
        h.update(str(getattr(ds[hub], "_fingerprint", "")).encode())
    return frames, h.hexdigest()[:16], order


def _read(task: Task) -> tuple[dict[str, tuple[pd.DataFrame, str]], str, tuple[str, ...] | None]:
    if task.source == "dataset":
        return _dataset(str(task.dataset), task.label_column)
    if not task.train_file or not task.validation_file:
        raise DataError(f"task {task.name}: needs both a train and a validation file")
    stats = [os.stat(f) if os.path.isfile(f) else None for f in (task.train_file, task.validation_file)]
    key = json.dumps([task.train_file, task.validation_file, [(s.st_mtime_ns, s.st_size) if s else None for s in stats]])
    if _LAST.get("key") != key:
        _LAST.clear()
        _LAST.update(key=key, value=_files(task.train_file, task.validation_file))
    return _LAST["value"]


def load_own_split(task: Task, split: str) -> Examples:
    """``split`` ("train" or "dev") of a task of one's own, after checking its data is the data it was made with."""
    frames, digest, _ = _read(task)
    if task.data_hash and digest != task.data_hash:
        raise DataError(f"task {task.name}: its data changed since the task was set up (content hash {digest}, "
                        f"recorded {task.data_hash})")
    df, where = frames[split]
    return _examples(task, df, where, split)


def _name(path: str | None, dataset: str | None) -> str:
    if dataset:
        text = dataset.replace("/", "-").replace(":", "-")
    else:
        p = Path(str(path))  # reviews-train.csv -> reviews; train.csv -> its folder's name
        words = [w for w in re.split(r"[-_.\s]+", p.stem) if w and w.lower() not in _GENERIC_STEMS]
        text = "-".join(words) if words else p.parent.resolve().name
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-") or "own-task"


def own_task(*, train_file: str | None = None, validation_file: str | None = None, dataset: str | None = None,
             text_columns: tuple[str, ...] | None = None, label_column: str | None = None, metric: str | None = None,
             name: str | None = None) -> Task:
    """A task from files (``train_file`` and ``validation_file``) or a ``datasets`` name, every row checked."""
    if dataset and (train_file or validation_file):
        raise DataError("--dataset and --train-file/--validation-file are two ways to give the data: pass one")
    if not dataset and not (train_file and validation_file):
        raise DataError("a task of your own needs --train-file and --validation-file (or --dataset NAME[:CONFIG])")
    if metric is not None and metric not in TASK_METRICS:
        raise DataError(f"unknown --metric {metric!r} (choose from {', '.join(TASK_METRICS)})")
    if text_columns is not None and not 1 <= len(text_columns) <= 2:
        raise DataError(f"--text-columns takes one or two columns, got {len(text_columns)}")
    label = label_column or "label"
    if text_columns is not None and label in text_columns:
        raise DataError(f"column '{label}' cannot be both the label and a text column")
    files = tuple(str(Path(f).resolve()) for f in (train_file, validation_file) if f)
    probe = Task(name or "own", "", "", (), ("",), ("accuracy",), "", "", (), label, source="dataset" if dataset else
                 "files", train_file=files[0] if files else None, validation_file=files[1] if files else None,
                 dataset=dataset, label_column=label)
    frames, digest, order = _read(probe)
    train, where = frames["train"]
    for split in ("train", "dev"):
        df, at = frames[split]
        _columns(df, at, (label,))
    columns = text_columns or _default_text_columns(train, where, label)
    for split in ("train", "dev"):
        _columns(frames[split][0], frames[split][1], (*columns, label))
    kind, labels = _label_scheme(train[label].tolist(), where, label, metric, order, train.attrs.get("lines"))
    task = Task(name or _name(train_file, dataset), "", "", tuple(columns), labels, _metrics(labels, metric), "", "",
                tuple(columns), label, source=probe.source, train_file=probe.train_file,
                validation_file=probe.validation_file, dataset=dataset, label_column=label, label_type=kind,
                data_hash=digest)
    for split in ("train", "dev"):  # every row, now: a bad value fails before any work
        _examples(task, *frames[split], split)
    return task


def check_run_data(recorded: dict[str, Any] | None, task: Task, where: str) -> None:
    """One line when a run (or supernet) recorded in ``where`` was made with other data than ``task``'s."""
    if task.is_glue or not recorded:
        return
    old = recorded.get("data_hash")
    if old and old != task.data_hash:
        src = recorded.get("dataset") or ", ".join(str(recorded.get(k)) for k in ("train_file", "validation_file"))
        raise DataError(f"{where} was made with other data ({src}, content hash {old}); the data now hashes "
                        f"{task.data_hash}: pass another folder, or the data it was made with")
