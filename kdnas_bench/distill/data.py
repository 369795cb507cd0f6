"""Tasks: the GLUE registry, metrics, loading (hub or local TSV), tokenisation, proxy subsets, batching.

A GLUE task's data comes from the Hugging Face hub (``datasets.load_dataset("glue", ...)``) when no
``data_dir`` is given, or from a folder in the original GLUE TSV layout (``SST-2/train.tsv``, ...).
Offline without ``data_dir`` fails at once instead of sitting through the hub's retries.

A task of the user's own (train and validation files, or a ``datasets`` name) is the same :class:`Task`
with ``source`` "files" or "dataset", built and read by :mod:`.taskfiles`; its :meth:`Task.spec` (a JSON
object with the files' content hash) travels wherever a GLUE task's name does.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import did_you_mean
from .metrics import METRICS
from .taskspec import DataError, Examples, Task, TaskRef, hub_reachable

AGNOSTIC = "agnostic"  # the task name of task-agnostic distillation (unlabeled text; see .agnostic)

__all__ = ["AGNOSTIC", "BATCHING", "METRICS", "TASKS", "DataError", "Encoded", "Examples", "Task", "TaskRef", "batch_order",
           "batches", "collate", "encode", "get_task", "hub_reachable", "load_split", "proxy_indices", "read_tsv"]


# -- the GLUE registry -----------------------------------------------------------------------------
_NLI = ("entailment", "not_entailment")
TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("cola", "cola", "validation", ("sentence",), ("0", "1"), ("matthews", "accuracy"), "CoLA", "dev.tsv",
             ("sentence",), "label", header=("source", "label", "original_mark", "sentence")),
        Task("sst2", "sst2", "validation", ("sentence",), ("0", "1"), ("accuracy",), "SST-2", "dev.tsv",
             ("sentence",), "label"),
        Task("mrpc", "mrpc", "validation", ("sentence1", "sentence2"), ("0", "1"), ("f1", "accuracy"), "MRPC",
             "dev.tsv", ("#1 String", "#2 String"), "Quality", encoding="utf-8-sig"),
        Task("stsb", "stsb", "validation", ("sentence1", "sentence2"), (), ("pearson", "spearman"), "STS-B",
             "dev.tsv", ("sentence1", "sentence2"), "score"),
        Task("qqp", "qqp", "validation", ("question1", "question2"), ("0", "1"), ("accuracy", "f1"), "QQP",
             "dev.tsv", ("question1", "question2"), "is_duplicate"),
        Task("mnli-m", "mnli", "validation_matched", ("premise", "hypothesis"),
             ("entailment", "neutral", "contradiction"), ("accuracy",), "MNLI", "dev_matched.tsv",
             ("sentence1", "sentence2"), "gold_label"),
        Task("mnli-mm", "mnli", "validation_mismatched", ("premise", "hypothesis"),
             ("entailment", "neutral", "contradiction"), ("accuracy",), "MNLI", "dev_mismatched.tsv",
             ("sentence1", "sentence2"), "gold_label"),
        Task("qnli", "qnli", "validation", ("question", "sentence"), _NLI, ("accuracy",), "QNLI", "dev.tsv",
             ("question", "sentence"), "label"),
        Task("rte", "rte", "validation", ("sentence1", "sentence2"), _NLI, ("accuracy",), "RTE", "dev.tsv",
             ("sentence1", "sentence2"), "label"),
    )
}
_ALIASES = {"mnli": "mnli-m", "mnlim": "mnli-m", "mnlimatched": "mnli-m", "mnlimm": "mnli-mm",
            "mnlimismatched": "mnli-mm"}


def get_task(name: TaskRef) -> Task:
    """A GLUE task by name, forgiving about case, dashes and underscores (``SST-2``, ``sst2``, ``MNLI-mm``);
    a :class:`Task` as it is; a task spec (:meth:`Task.spec`) read back."""
    if isinstance(name, Task):
        return name
    if isinstance(name, dict):
        return Task.from_spec(name)
    key = str(name).lower().replace("-", "").replace("_", "")
    for task in TASKS.values():
        if task.name.replace("-", "") == key:
            return task
    if key in _ALIASES:
        return TASKS[_ALIASES[key]]

    raise DataError(f"unknown task {name!r}{did_you_mean(str(name).lower(), list(TASKS))} (choose from {', '.join(TASKS)})")


def _label_id(task: Task, raw: str, where: str) -> int | float:
    raw = raw.strip()
    if task.is_regression:
        try:
            return float(raw)
        except ValueError:
            raise DataError(f"{where}: label {raw!r} is not a number") from None
    if raw in task.labels:
        return task.labels.index(raw)
    raise DataError(f"{where}: label {raw!r} is not one of {', '.join(task.labels)}")


def read_tsv(task: Task, path: Path) -> Examples:
    """One GLUE TSV file (quoting off; CoLA without header; MRPC with a BOM)."""
    if not path.is_file():
        raise DataError(f"data file not found: {path} (expected the GLUE TSV layout, e.g. {task.folder}/train.tsv)")
    csv.field_size_limit(sys.maxsize)
    raw = path.read_bytes()
    try:
        text = raw.decode(task.encoding)
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not {task.encoding} text "
                        f"(byte 0x{raw[exc.start]:02x})") from None
    rows = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE) if r]
    if task.header is None:
        if not rows:
            raise DataError(f"empty data file: {path}")
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    else:
        header = list(task.header)
    if not rows:
        raise DataError(f"empty data file: {path} (no data rows)")
    needed = (*task.tsv_text, task.tsv_label)
    missing = [c for c in needed if c not in header]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} (header: {', '.join(header)})")
    cols = [header.index(c) for c in needed]
    width = len(header)
    texts: list[list[str]] = [[] for _ in task.tsv_text]
    labels = []
    for n, row in enumerate(rows, start=1 if task.header else 2):
        if len(row) != width:
            kind = "extra" if len(row) > width else "missing"
            raise DataError(f"{path}:{n}: {kind} columns ({len(row)} fields, expected {width})")
        for j, c in enumerate(cols[:-1]):
            texts[j].append(row[c])
        labels.append(_label_id(task, row[cols[-1]], f"{path}:{n}"))
    dtype = np.float32 if task.is_regression else np.int64
    return Examples(tuple(tuple(t) for t in texts), np.asarray(labels, dtype=dtype), str(path))


def _from_hub(task: Task, split: str) -> Examples:
    if not hub_reachable():
        raise DataError(
            f"the Hugging Face hub is not reachable (offline) and no --data-dir was given: pass --data-dir "
            f"pointing at a GLUE TSV folder (the GLUE TSV download, e.g. glue/ with glue/{task.folder}/train.tsv)"
        )
    try:
        import datasets  # noqa: PLC0415  lazy: datasets, optional

        ds = datasets.load_dataset("glue", task.hub_config, split=split)
    except Exception as exc:  # datasets raises many kinds; all mean "cannot get the data"
        raise DataError(f"cannot load glue/{task.hub_config} [{split}] from the hub: {exc}; "
                        "pass --data-dir with the GLUE TSV files instead") from None
    texts = tuple(tuple(str(x) for x in ds[f]) for f in task.text_fields)
    dtype = np.float32 if task.is_regression else np.int64
    return Examples(texts, np.asarray(ds["label"], dtype=dtype), f"hub:glue/{task.hub_config}/{split}")


def load_split(task: TaskRef, split: str, data_dir: str | Path | None = None) -> Examples:
    """``split`` is ``"train"`` or ``"dev"``."""
    task = get_task(task)
    if split not in ("train", "dev"):
        raise DataError(f"split must be 'train' or 'dev', got {split!r}")
    if not task.is_glue:
        from .taskfiles import load_own_split  # noqa: PLC0415  lazy: pandas, pyarrow (via distill.taskfiles)

        return load_own_split(task, split)
    if data_dir is None:
        return _from_hub(task, "train" if split == "train" else task.hub_dev_split)
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"--data-dir not found: {root}")
    folder = root / task.folder if (root / task.folder).is_dir() else root
    return read_tsv(task, folder / ("train.tsv" if split == "train" else task.dev_file))


# -- proxy subsets ---------------------------------------------------------------------------------
def proxy_indices(labels: np.ndarray, n: int, *, seed: int = 0, regression_bins: int = 5) -> np.ndarray:
    """``n`` indices drawn without replacement, stratified by class (by quantile bin for regression),
    with per-stratum counts by largest remainder; the same (labels, n, seed) give the same indices.
    Returned in a seeded shuffled order."""
    labels = np.asarray(labels)
    total = len(labels)
    if n >= total:
        return np.arange(total)
    if labels.dtype.kind == "f":
        edges = np.quantile(labels, np.linspace(0, 1, regression_bins + 1)[1:-1])
        strata = np.searchsorted(edges, labels, side="right")
    else:
        strata = labels
    rng = np.random.default_rng(seed)
    keys, counts = np.unique(strata, return_counts=True)
    quota = counts * n / total
    take = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - take), kind="stable")[: n - take.sum()]:
        take[i] += 1
    chosen = [rng.permutation(np.flatnonzero(strata == k))[:t] for k, t in zip(keys, take, strict=True)]
    return rng.permutation(np.concatenate(chosen))


# -- tokenised data and batches --------------------------------------------------------------------
@dataclass
class Encoded:
    """Tokenised examples: ragged token ids and segment ids, plus labels. Batches are padded per batch."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    labels: np.ndarray
    pad_id: int = 0
    source: str = ""
    teacher_cache: Any = field(default=None, repr=False)  # set by trainer.cache_teacher

    def __len__(self) -> int:
        return len(self.labels)

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def subset(self, idx: Sequence[int] | np.ndarray) -> Encoded:
        idx = [int(i) for i in idx]
        return Encoded([self.input_ids[i] for i in idx], [self.token_type_ids[i] for i in idx],
                       self.labels[np.asarray(idx, dtype=np.int64)], self.pad_id, self.source)


def encode(examples: Examples, tokenizer: Any, *, max_length: int = 128) -> Encoded:
    """Tokenise (no padding; truncation to ``max_length``)."""
    if len(examples) == 0:
        raise DataError(f"no examples to encode ({examples.source or 'empty set'})")
    out = tokenizer(*[list(f) for f in examples.texts], truncation=True, max_length=max_length, padding=False)
    types = out.get("token_type_ids") or [[0] * len(ids) for ids in out["input_ids"]]
    return Encoded(list(out["input_ids"]), list(types), examples.labels, int(tokenizer.pad_token_id or 0),
                   examples.source)


def collate(data: Encoded, idx: Sequence[int]) -> dict[str, Any]:
    """Pad the examples ``idx`` to their longest one: input_ids, attention_mask, token_type_ids, labels."""
    import torch  # noqa: PLC0415  lazy: torch

    seqs = [data.input_ids[i] for i in idx]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), data.pad_id, dtype=torch.long)
    types = torch.zeros((len(seqs), width), dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, i in enumerate(idx):
        n = len(data.input_ids[i])
        ids[row, :n] = torch.tensor(data.input_ids[i])
        types[row, :n] = torch.tensor(data.token_type_ids[i])
        mask[row, :n] = 1
    labels = torch.as_tensor(data.labels[np.asarray(idx, dtype=np.int64)])
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types, "labels": labels,
            "index": torch.as_tensor(np.asarray(idx, dtype=np.int64))}


BATCHING = ("length", "random")


def batches(data: Encoded, batch_size: int, *, shuffle: bool, seed: int = 0,
            batching: str = "random", group: int = 50) -> Iterator[dict[str, Any]]:
    """Seeded shuffled batches for training; length-sorted batches (least padding) for evaluation.

    ``batching="length"`` (training): shuffle, cut into groups of ``group`` batches, sort each group by
    length, batch it and shuffle the batches' order. On SST-2 train (mean 13 tokens, p99 44) random
    batches of 32 pad to 3.0x the real tokens, length-grouped ones to 1.05x."""
    for chunk in batch_order(data, batch_size, shuffle=shuffle, seed=seed, batching=batching, group=group):
        yield collate(data, chunk.tolist())


def batch_order(data: Encoded, batch_size: int, *, shuffle: bool, seed: int = 0, batching: str = "random",
                group: int = 50) -> list[np.ndarray]:
    """The example indices of each batch :func:`batches` yields, in order (a GPU builds the same batches on
    the device from them)."""
    if batching not in BATCHING:
        raise DataError(f"batching must be one of {', '.join(BATCHING)}, got {batching!r}")
    n = len(data)
    if not shuffle:
        order = np.argsort(data.lengths(), kind="stable")
    else:
        rng = np.random.default_rng(seed)
        order = rng.permutation(n)
    if not shuffle or batching == "random":
        chunks = [order[start : start + batch_size] for start in range(0, n, batch_size)]
    else:
        lengths, span = data.lengths(), batch_size * group
        chunks = []
        for g in range(0, n, span):
            idx = order[g : g + span]
            idx = idx[np.argsort(lengths[idx], kind="stable")]
            chunks.extend(idx[s : s + batch_size] for s in range(0, len(idx), batch_size))
        chunks = [chunks[int(k)] for k in rng.permutation(len(chunks))]
    return chunks
