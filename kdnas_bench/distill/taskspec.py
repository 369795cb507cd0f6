"""What a task is (:class:`Task`: a GLUE task, or one of one's own with its spec) and its raw examples; the
error its data raises. :mod:`.data` holds the GLUE registry and the loaders, :mod:`.taskfiles` reads one's own."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import KdnasError
from .metrics import METRICS


class DataError(KdnasError):
    """Unknown task, missing or malformed data file, no way to reach the data."""


@dataclass(frozen=True)
class Task:
    """One task: where its data is, how to read it, and how it is scored. The GLUE tasks fill the hub and TSV
    fields; a task of one's own (``source`` "files" or "dataset") fills ``train_file``/``validation_file`` or
    ``dataset``, ``label_column``, ``text_fields`` (its text columns) and ``data_hash``."""

    name: str  # canonical, e.g. "sst2", "mnli-m"
    hub_config: str  # datasets "glue" config
    hub_dev_split: str
    text_fields: tuple[str, ...]  # hub column names
    labels: tuple[str, ...]  # label names in hub order (index = class id); () for regression
    metrics: tuple[str, ...]  # first one is the primary metric
    folder: str  # GLUE TSV folder
    dev_file: str
    tsv_text: tuple[str, ...]  # TSV column names (or indexes for header-less files)
    tsv_label: str
    header: tuple[str, ...] | None = None  # column names of a header-less file
    encoding: str = "utf-8"
    source: str = "glue"  # "glue", "files" (train/validation files) or "dataset" (a `datasets` name)
    train_file: str | None = None
    validation_file: str | None = None
    dataset: str | None = None  # NAME[:CONFIG]
    label_column: str = "label"
    label_type: str = ""  # own tasks: "str", "int" or "float", as read from the training file
    data_hash: str = ""  # own tasks: sha256 of the data (files' bytes, or the dataset's fingerprint), 16 hex

    @property
    def is_glue(self) -> bool:
        return self.source == "glue"

    def spec(self) -> dict[str, Any] | None:
        """A task of one's own as a JSON object (what run folders, supernets and model folders record, and
        :func:`get_task` reads back); None for a GLUE task, which its name identifies."""
        if self.is_glue:
            return None
        return {"name": self.name, "source": self.source, "train_file": self.train_file,
                "validation_file": self.validation_file, "dataset": self.dataset, "text_columns": list(self.text_fields),
                "label_column": self.label_column, "label_type": self.label_type, "labels": list(self.labels),
                "metrics": list(self.metrics), "data_hash": self.data_hash}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Task:
        """The inverse of :meth:`spec`."""
        try:
            text = tuple(str(c) for c in spec["text_columns"])
            return cls(str(spec["name"]), "", "", text, tuple(str(x) for x in spec["labels"]),
                       tuple(str(m) for m in spec["metrics"]), "", "", text, str(spec["label_column"]),
                       source=str(spec["source"]), train_file=spec.get("train_file"),
                       validation_file=spec.get("validation_file"), dataset=spec.get("dataset"),
                       label_column=str(spec["label_column"]), label_type=str(spec.get("label_type", "")),
                       data_hash=str(spec.get("data_hash", "")))
        except (KeyError, TypeError) as exc:
            raise DataError(f"not a task spec (missing or bad field {exc})") from None

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else len(self.labels)

    @property
    def is_regression(self) -> bool:
        return not self.labels

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]

    def score(self, predictions: np.ndarray, gold: np.ndarray) -> dict[str, float]:
        """The task's metrics for class ids (or scores, for regression) against the gold labels."""
        return {name: METRICS[name](np.asarray(predictions), np.asarray(gold)) for name in self.metrics}


TaskRef = str | Task | dict[str, Any]
"""A reference to a task, as it travels between the layers: a GLUE name (or ``"agnostic"``), a :class:`Task`, or a
task spec (:meth:`Task.spec`, as run folders record it). :func:`~kdnas_bench.distill.data.get_task` turns any of
them into the :class:`Task`."""


@dataclass(frozen=True)
class Examples:
    """Texts (one or two fields) and labels (class ids as int64, or float32 scores)."""

    texts: tuple[tuple[str, ...], ...]  # one tuple per text field, each of length n
    labels: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: Sequence[int] | np.ndarray) -> Examples:
        idx = np.asarray(idx, dtype=np.int64)
        return Examples(tuple(tuple(f[i] for i in idx) for f in self.texts), self.labels[idx], self.source)


def hub_reachable(timeout: float = 1.5) -> bool:
    """False at once when HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set or huggingface.co cannot be reached."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False
