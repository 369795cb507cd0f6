"""Task-agnostic distillation (KD-NAS v2 style): no labels, no task head. The student learns the teacher's
hidden states and last-layer attention relations (MiniLMv2) on unlabeled text, and is scored by its
distillation loss on held-out text: ``kd_score = exp(-dev loss)`` (in (0, 1], higher is better), which is
the accuracy term A of the search reward when no task data is at hand.

Text: a file with one passage per line, or, by default, English prose every Python installation carries:
the docstrings of a fixed list of standard-library modules, split into sentences (deterministic for a
given Python version).

    >>> data = prepare_text(teacher.tokenizer, load_text(None), max_examples=2000)
    >>> res = distill(teacher, "agnostic", "2,256,4,1024", data=data, epochs=1)   # kdnas_bench.distill.trainer
    >>> res.metrics   # {"kd_score": 0.41, "kd_loss": 0.89}
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..defaults import DEFAULTS
from ..errors import KdnasError
from .accelerator import accelerator_of, batches_on, teacher_model
from .cache import forward
from .data import AGNOSTIC, Encoded, Task
from .losses import needs_of
from .teacher import Teacher, default_backbone_path, load_teacher

DEFAULT_LOSSES = DEFAULTS.agnostic_losses
# A pseudo task: two (unused) labels keep the student's classifier head the usual shape.
TASK = Task(AGNOSTIC, "", "", ("text",), ("0", "1"), ("kd_score", "kd_loss"), "", "", ("text",), "")
STDLIB_MODULES = (
    "abc", "argparse", "array", "asyncio", "base64", "bisect", "calendar", "codecs", "collections", "concurrent.futures",
    "configparser", "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal", "difflib", "email", "enum",
    "fractions", "functools", "gettext", "glob", "gzip", "hashlib", "heapq", "hmac", "html", "http.client",
    "imaplib", "inspect", "io", "ipaddress", "itertools", "json", "logging", "mailbox", "mimetypes", "multiprocessing",
    "numbers", "operator", "optparse", "os", "pathlib", "pickle", "pprint", "queue", "random", "re", "sched",
    "secrets", "selectors", "shelve", "shlex", "shutil", "signal", "smtplib", "socket", "sqlite3", "statistics",
    "string", "struct", "subprocess", "tarfile", "tempfile", "textwrap", "threading", "timeit", "tokenize", "trace",
    "traceback", "typing", "unittest", "urllib.parse", "urllib.request", "uuid", "warnings", "weakref", "xml.dom",
    "zipfile", "zoneinfo",
)


@dataclass
class TextData:
    """Tokenised unlabeled text: train and held-out dev passages, and where they came from."""

    train: Encoded
    dev: Encoded
    source: str
    total: int


def _sentences(doc: str) -> list[str]:
    """Prose sentences of a docstring: paragraphs with code, examples, lists or tables are skipped."""
    out = []
    for para in re.split(r"\n\s*\n", doc):
        lines = para.splitlines()
        if not lines or any(ln.startswith((" ", "\t", "-", "*", ">>>", "...")) or ">>>" in ln for ln in lines):
            continue
        for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", " ".join(ln.strip() for ln in lines)):
            words = s.split()
            if not 6 <= len(words) <= 60 or any(c in s for c in "#{}=|<>`"):
                continue
            if s.count("(") > 2 or sum(w.strip(".,;:()'\"").isalpha() for w in words) < 0.75 * len(words):
                continue
            out.append(s.strip())
    return out


def stdlib_text() -> list[str]:
    """Sentences from the docstrings of :data:`STDLIB_MODULES` and their public members, deduplicated."""
    seen: set[str] = set()
    out: list[str] = []
    for name in STDLIB_MODULES:
        try:
            mod = importlib.import_module(name)
        except Exception:  # a module missing from this build of Python
            continue
        docs = [inspect.getdoc(mod) or ""]
        for attr in sorted(getattr(mod, "__all__", None) or dir(mod)):
            if attr.startswith("_"):
                continue
            obj = getattr(mod, attr, None)
            if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj):
                docs.append(inspect.getdoc(obj) or "")
        for d in docs:
            for s in _sentences(d):
                if s not in seen:
                    seen.add(s)
                    out.append(s)
    return out


def load_text(path: str | Path | None) -> tuple[list[str], str]:
    """Passages and a description of their source: ``path`` (one passage per line) or the stdlib docstrings."""
    if path is None:
        texts = stdlib_text()
        desc = (f"{len(texts)} sentences from Python {sys.version_info.major}.{sys.version_info.minor} "
                f"standard-library docstrings ({len(STDLIB_MODULES)} modules)")
    else:
        p = Path(path)
        if not p.is_file():
            raise KdnasError(f"text file not found: {p}")
        try:
            texts = [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise KdnasError(f"cannot read text file {p}: {exc}") from None
        desc = f"{len(texts)} passages from {p}"
    if len(texts) < 20:
        raise KdnasError(f"too little text for task-agnostic distillation: {desc} (need at least 20 passages)")
    return texts, desc


def prepare_text(tokenizer: Any, texts: tuple[list[str], str] | list[str], *, max_examples: int | None = None,
                 dev_fraction: float = 0.1, max_dev: int = 500, seed: int = 0, max_length: int = 64) -> TextData:
    """A seeded shuffled split into dev (``dev_fraction``, at most ``max_dev``) and train (the rest, or a
    ``max_examples`` subset of it)."""
    passages, source = texts if isinstance(texts, tuple) else (texts, f"{len(texts)} passages")
    order = np.random.default_rng(seed).permutation(len(passages))
    n_dev = max(10, min(max_dev, int(len(passages) * dev_fraction)))
    dev_idx, train_idx = order[:n_dev], order[n_dev:]
    if max_examples is not None:
        train_idx = train_idx[:max_examples]

    def enc(idx: np.ndarray) -> Encoded:
        out = tokenizer([passages[i] for i in idx], truncation=True, max_length=max_length, padding=False)
        types = out.get("token_type_ids") or [[0] * len(x) for x in out["input_ids"]]
        return Encoded(list(out["input_ids"]), list(types), np.zeros(len(idx), dtype=np.int64),
                       int(tokenizer.pad_token_id or 0), source)

    return TextData(enc(train_idx), enc(dev_idx), source, len(passages) - n_dev)


def default_teacher() -> Teacher:
    """The packaged all-MiniLM-L6-v2 backbone (its classifier head is fresh and unused here)."""
    return load_teacher(default_backbone_path(), num_labels=2)


@torch.no_grad()
def kd_loss(student: Any, teacher: Teacher, losses: list[Any], data: Encoded, batch_size: int = 128) -> float:
    """Mean weighted distillation loss over ``data`` (example-weighted), on the device the student is on."""
    needs = needs_of(losses)
    acc = accelerator_of(student)
    t_model = teacher_model(teacher, acc)
    student.eval()
    for loss in losses:
        loss.eval()
    total, n = 0.0, 0
    for batch in batches_on(data, acc, batch_size, shuffle=False):
        with acc.autocast():
            t_out = forward(t_model, batch, needs)
            s_out = forward(student, batch, needs)
            value = sum(float(loss.weight * loss(s_out, t_out, batch)) for loss in losses if loss.weight)
        total += value * len(batch["labels"])
        n += len(batch["labels"])
    return total / max(1, n)
