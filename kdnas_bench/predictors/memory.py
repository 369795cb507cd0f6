"""Memory predictor: a checked analytic model of a forward pass's peak resident memory and of the weight bytes.

Memory, unlike latency, is nearly deterministic on one software stack (the same config measured twice in
fresh processes gives the same bytes to the page, see :mod:`kdnas_bench.profiling.memory`), and it is a
sum of parts whose sizes are known up to a per-backend constant: the runtime's own pages, the weights
in the backend's precision (embeddings, matmul weights and the rest separately: int8 quantizes the first
two, keeps biases and LayerNorms in fp32), a fixed cost per layer (the runtime's per-node state: 0.5 MiB
a layer in ONNX Runtime int8), and the live activations of one layer. So the model is

    bytes = c0 + c1·embedding params + c2·matmul params + c3·other params + c4·layers
               + c5·tokens·hidden + c6·tokens·ffn + c7·batch·heads·seq² + c8·largest activation

where the largest activation is the biggest single intermediate of a layer (tokens·ffn, batch·heads·seq²
or the fused QKV's 3·tokens·hidden elements): an allocator that serves a forward pass from an arena
(ONNX Runtime's) is sized by its largest request, not by the sum. Without the last two terms the held-out
share within ±10 % of the int8 model was 77 % (anonymous memory, method 2), with them 98 %.

with non-negative coefficients fitted by least squares on *relative* error (each row divided by its
measured bytes) on the profile rows that carry memory columns. Each fit is checked on a held-out 20 % of
the archs (grouped: all shapes of a held-out arch are unseen) and the figures are stored with it.
Saved as ``memory.json`` in the predictor's folder (JSON, no pickle).

Methods are never mixed: each row carries the method that measured its memory (``memory_method``, see
:mod:`kdnas_bench.profiling.memory`; rows stored before the column existed are method 1), and a model is
fitted on the rows of the newest method in the dataset only; ``memory.json`` records that method
(``memory_method``; absent in files written before it: method 1)."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import KdnasError
from ..models import MAX_POSITION, TYPE_VOCAB, VOCAB_SIZE
from ..profiling.memory import method_label
from .evaluate import metrics

MEMORY_FILE = "memory.json"
KIND = "kdnas-bench-memory-model"
FORMAT_VERSION = 1
TERMS = ("const_mb", "embedding_mparams", "matmul_mparams", "other_mparams", "layers", "tokens_hidden_m",
         "tokens_ffn_m", "attention_scores_m", "largest_activation_m")
TARGETS = ("peak_rss_bytes", "weight_bytes")
MIN_ROWS = 12
HOLDOUT = 0.2


def memory_terms(x: pd.DataFrame, num_labels: int = 2) -> np.ndarray:
    """The model's terms for configs (columns layers, hidden, heads, ffn, seq, batch), in millions (the
    constant and the layer count as they are)."""
    L, h, a, f = (x[c].to_numpy(np.float64) for c in ("layers", "hidden", "heads", "ffn"))
    s, b = x["seq"].to_numpy(np.float64), x["batch"].to_numpy(np.float64)
    emb = (VOCAB_SIZE + MAX_POSITION + TYPE_VOCAB) * h
    matmul = L * (4 * h * h + 2 * h * f) + h * h + h * num_labels
    other = L * (4 * h + f + h + 4 * h) + 2 * h + h + num_labels  # biases and LayerNorms
    tokens = b * s
    scores = b * a * s * s
    largest = np.maximum.reduce([tokens * f, scores, 3 * tokens * h])
    return np.column_stack([np.ones_like(h), emb / 1e6, matmul / 1e6, other / 1e6, L, tokens * h / 1e6,
                            tokens * f / 1e6, scores / 1e6, largest / 1e6])


def _fit_coef(terms: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls  # noqa: PLC0415  lazy: scipy

    coef, _ = nnls(terms / y[:, None], np.ones_like(y))  # minimises the relative error
    return coef


@dataclass(frozen=True)
class MemoryModel:
    """One target (``peak_rss_bytes`` or ``weight_bytes``): bytes = terms · coef · 1e6."""

    target: str
    coef: tuple[float, ...]
    metrics: dict[str, Any] = field(default_factory=dict)
    method: int = 1  # the memory-measuring method of the rows it was fitted on

    def __post_init__(self) -> None:
        if not isinstance(self.method, int) or isinstance(self.method, bool) or self.method < 1:
            raise KdnasError(f"memory model method must be a positive integer, got {self.method!r}")
        if self.target not in TARGETS:
            raise KdnasError(f"memory model target must be one of {', '.join(TARGETS)}, got {self.target!r}")
        if len(self.coef) != len(TERMS) or not all(isinstance(c, float) and math.isfinite(c) and c >= 0 for c in self.coef):
            raise KdnasError(f"memory model for {self.target} needs {len(TERMS)} finite non-negative coefficients")

    def predict_bytes(self, configs: pd.DataFrame) -> np.ndarray:
        return memory_terms(configs) @ np.asarray(self.coef) * 1e6

    def predict_mb(self, configs: pd.DataFrame) -> np.ndarray:
        return self.predict_bytes(configs) / 2**20


def memory_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The ok rows that carry a memory measurement (older stores have none), with an integer
    ``memory_method`` column (1 where a frame has none: rows measured before the column existed)."""
    if "peak_rss_bytes" not in df.columns:
        return df.iloc[0:0].assign(memory_method=pd.Series(dtype="int64"))
    keep = (df["status"] == "ok") & df["peak_rss_bytes"].notna() & (df["peak_rss_bytes"] > 0)
    rows = df[keep].reset_index(drop=True)
    method = rows["memory_method"] if "memory_method" in rows.columns else pd.Series(1, index=rows.index)
    return rows.assign(memory_method=method.fillna(1).astype("int64"))


def newest_method_rows(df: pd.DataFrame) -> tuple[pd.DataFrame, int | None, dict[int, int]]:
    """The memory rows of the newest method in ``df``, that method, and the row count of each method."""
    rows = memory_rows(df)
    methods = rows["memory_method"].to_numpy(np.int64)
    counts = {int(m): int((methods == m).sum()) for m in np.unique(methods)}
    if not counts:
        return rows, None, counts
    method = max(counts)
    return rows[rows["memory_method"] == method].reset_index(drop=True), method, counts


def _grouped_holdout(df: pd.DataFrame, seed: int) -> tuple[np.ndarray, np.ndarray]:
    archs = df[["layers", "hidden", "heads", "ffn"]].astype(str).agg(",".join, axis=1).to_numpy()
    uniq = np.unique(archs)
    rng = np.random.default_rng(seed)
    n_test = max(1, round(len(uniq) * HOLDOUT))
    test_archs = set(rng.permutation(uniq)[:n_test])
    test = np.array([a in test_archs for a in archs])
    return np.flatnonzero(~test), np.flatnonzero(test)


def fit_memory(df: pd.DataFrame, *, seed: int = 0) -> dict[str, MemoryModel]:
    """Fit both targets on the memory rows of the newest method in a profile dataset (rows of older
    methods are left out, never mixed in); held-out metrics (grouped by arch) are measured first, then
    each model is refitted on every such row."""
    rows, method, counts = newest_method_rows(df)
    if len(rows) < MIN_ROWS or rows[["layers", "hidden", "heads", "ffn"]].drop_duplicates().shape[0] < 3:
        older = sum(n for m, n in counts.items() if m != method)
        if older:
            raise KdnasError(f"a memory model needs at least {MIN_ROWS} rows over 3 archs measured with one method: "
                             f"{len(rows)} carry method {method}, {older} an older one (methods are not mixed); "
                             "re-measure them with `kdnas-bench remeasure --memory-only`")
        raise KdnasError(f"a memory model needs at least {MIN_ROWS} rows with memory over 3 archs, got {len(rows)} "
                         "(profile with --memory)")
    assert method is not None
    terms = memory_terms(rows)
    train, test = _grouped_holdout(rows, seed)
    out = {}
    for target in TARGETS:
        y = rows[target].to_numpy(np.float64) / 1e6
        held = _fit_coef(terms[train], y[train])
        m = metrics(y[test], terms[test] @ held)
        info = {"heldout": {k: v for k, v in m.items() if k != "rmse_ms"}, "rows": len(rows),
                "archs": int(rows[["layers", "hidden", "heads", "ffn"]].drop_duplicates().shape[0]),
                "split": "20 % of the archs held out (all their shapes)", "seed": seed, "method": method,
                "rows_other_methods": {str(m): n for m, n in counts.items() if m != method}}
        out[target] = MemoryModel(target, tuple(float(c) for c in _fit_coef(terms, y)), info, method)
    return out


def save_memory(folder: Path, models: dict[str, MemoryModel], meta: dict[str, Any] | None = None) -> Path:
    methods = {m.method for m in models.values()}
    if len(methods) != 1:
        raise KdnasError(f"the memory models of one predictor must share one measuring method, got {sorted(methods)}")
    method = methods.pop()
    doc = {"kind": KIND, "format_version": FORMAT_VERSION, "terms": list(TERMS), "unit": "bytes = terms @ coef * 1e6",
           "memory_method": method, "memory_method_label": method_label(method), **(meta or {}),
           "models": {t: {"coef": list(m.coef), "metrics": m.metrics} for t, m in models.items()}}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MEMORY_FILE
    tmp = folder / f".{MEMORY_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_memory(folder: Path) -> dict[str, MemoryModel] | None:
    """The memory models of a predictor folder, ``None`` when it has none; a malformed file is one error."""
    path = Path(folder) / MEMORY_FILE
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KdnasError(f"corrupt memory model {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND or doc.get("format_version") != FORMAT_VERSION:
        raise KdnasError(f"{path} is not a kdnas-bench memory model (format {FORMAT_VERSION})")
    if doc.get("terms") != list(TERMS):
        raise KdnasError(f"{path} was fitted with other terms; refit it with `kdnas-bench fit`")
    models = doc.get("models")
    if not isinstance(models, dict):
        raise KdnasError(f"corrupt memory model {path}: no models")
    method = doc.get("memory_method", 1)  # written before methods were recorded: method 1 (VmRSS / VmHWM)
    out = {}
    for target, m in models.items():
        try:
            coef = tuple(float(c) for c in m["coef"])
            out[target] = MemoryModel(str(target), coef, dict(m.get("metrics") or {}), method)
        except (KeyError, TypeError, ValueError) as exc:
            raise KdnasError(f"corrupt memory model {path}: {target}: {exc}") from None
        except KdnasError as exc:
            raise KdnasError(f"corrupt memory model {path}: {exc}") from None
    return out
