"""Features of an (arch, shape) config for the latency predictors, vectorised over many configs.

The analytic features come from :mod:`kdnas_bench.models` (the same functions that ``tests/test_models.py``
checks against the real model); they are evaluated on numpy columns instead of one ``Arch`` at a time,
so 100,000 configs take milliseconds.

Every feature is non-decreasing in layers, hidden, ffn, seq and batch (``MONOTONE`` marks them +1 for
LightGBM). ``heads`` is the only feature that may act either way, and it depends on nothing else, so a
model that respects the constraints cannot predict a lower latency for a bigger model or input.
Changing the list or a formula means bumping ``FEATURE_SCHEMA``: saved predictors record it and refuse
to load under another one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from ..errors import KdnasError
from ..models import activation_bytes, count_params, flops
from ..space import MAX_DIM, Arch, Shape

FEATURE_SCHEMA = 1
CONFIG_KEYS = ("layers", "hidden", "heads", "ffn", "seq", "batch")
RAW = CONFIG_KEYS
ANALYTIC = (
    "tokens",  # batch * seq per forward
    "head_dim",  # hidden / heads
    "params",  # parameters of BertForSequenceClassification
    "flops_linear",  # QKV/O projections + FFN (matmuls)
    "flops_attention",  # QK^T and attention @ V (seq^2 part)
    "flops_total",
    "act_bytes",  # main activations written per forward
    "layer_tokens",  # layers * tokens: per-token, per-layer work (LayerNorm, GELU, softmax launches)
)
FEATURES = RAW + ANALYTIC
# +1: the prediction may not fall when the feature grows. heads (0) is the only free one.
MONOTONE = {name: (0 if name == "heads" else 1) for name in FEATURES}
MONOTONE_DIMS = ("layers", "hidden", "ffn", "seq", "batch")
# a config is out of range when one of these is outside what the training rows spanned (the derived
# features of a config inside this box are interpolations of the same dims, so they are not checked)
RANGE_KEYS = (*RAW, "tokens")


class FeatureError(KdnasError):
    """A config that cannot be turned into features (missing keys, invalid arch or shape)."""


def _check_columns(cols: Mapping[str, np.ndarray], where: str = "configs") -> None:
    n = {len(v) for v in cols.values()}
    if len(n) > 1:
        raise FeatureError(f"{where}: columns have different lengths")
    for key in CONFIG_KEYS:
        v = cols[key]
        bad = np.flatnonzero((v <= 0) | (v > MAX_DIM))
        if bad.size:
            i = int(bad[0])
            raise FeatureError(f"{where}[{i}]: {key} must be a positive integer (at most {MAX_DIM:,}), got {v[i]}")
    bad = np.flatnonzero(cols["hidden"] % cols["heads"])
    if bad.size:
        i = int(bad[0])
        raise FeatureError(f"{where}[{i}]: heads ({cols['heads'][i]}) must divide hidden ({cols['hidden'][i]})")


def _as_int_column(values: Any, key: str, where: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == object or arr.dtype.kind not in "iuf" or arr.dtype == bool:
        for i, v in enumerate(arr.tolist()):
            if isinstance(v, bool) or not isinstance(v, int | float) or (isinstance(v, float) and not math.isfinite(v)):
                raise FeatureError(f"{where}[{i}]: {key} must be an integer, got {v!r}")
            if abs(v) >= 2**62:
                raise FeatureError(f"{where}[{i}]: {key} holds a value too large for a config ({v:.3g})")
            if float(v) != int(v):
                raise FeatureError(f"{where}[{i}]: {key} must be an integer, got {v!r}")
        try:
            arr = arr.astype(np.int64)
        except OverflowError:
            raise FeatureError(f"{where}: {key} holds a value too large for a config") from None
    if arr.dtype.kind == "f":
        frac = np.flatnonzero(arr != np.round(arr))
        if frac.size:
            i = int(frac[0])
            raise FeatureError(f"{where}[{i}]: {key} must be an integer, got {arr[i]}")
        if np.any(np.abs(arr) >= 2**62):
            raise FeatureError(f"{where}: {key} holds a value too large for a config")
    return arr.astype(np.int64)


def config_columns(configs: Any, where: str = "configs") -> dict[str, np.ndarray]:
    """Validated int64 columns (layers, hidden, heads, ffn, seq, batch) from a DataFrame, a mapping of
    columns, a list of dicts, or a list of ``(Arch, Shape)`` pairs."""
    if isinstance(configs, pd.DataFrame):
        missing = [k for k in CONFIG_KEYS if k not in configs.columns]
        if missing:
            raise FeatureError(f"{where}: missing column(s) {', '.join(missing)}")
        raw = {k: configs[k].to_numpy() for k in CONFIG_KEYS}
    elif isinstance(configs, Mapping):
        missing = [k for k in CONFIG_KEYS if k not in configs]
        if missing:
            raise FeatureError(f"{where}: missing key(s) {', '.join(missing)}")
        raw = {k: np.atleast_1d(np.asarray(configs[k])) for k in CONFIG_KEYS}
    else:
        items = list(configs)
        if items and isinstance(items[0], tuple | list) and len(items[0]) == 2 and isinstance(items[0][0], Arch):
            pairs: Sequence[tuple[Arch, Shape]] = items  # type: ignore[assignment]
            raw = {k: np.fromiter((getattr(a, k) for a, _ in pairs), np.int64, len(pairs))
                   for k in ("layers", "hidden", "heads", "ffn")}
            raw["seq"] = np.fromiter((s.seq for _, s in pairs), np.int64, len(pairs))
            raw["batch"] = np.fromiter((s.batch for _, s in pairs), np.int64, len(pairs))
        else:
            raw = _columns_from_dicts(items, where)
    cols = {k: _as_int_column(raw[k], k, where) for k in CONFIG_KEYS}
    _check_columns(cols, where)
    return cols


def _columns_from_dicts(items: Iterable[Any], where: str) -> dict[str, np.ndarray]:
    rows = list(items)
    try:  # fast path: every item a dict with integer values (bool is an int subclass: checked below)
        table = np.array([[item[k] for k in CONFIG_KEYS] for item in rows], dtype=object)
        if table.size and all(type(v) is int for v in table.ravel()):
            arr = table.astype(np.int64)
            return {k: arr[:, j] for j, k in enumerate(CONFIG_KEYS)}
    except (KeyError, TypeError, IndexError, OverflowError):
        pass  # the slow path below names the offending item
    out: dict[str, list[Any]] = {k: [] for k in CONFIG_KEYS}
    for i, item in enumerate(rows):
        if not isinstance(item, Mapping):
            raise FeatureError(f"{where}[{i}]: expected an object with {', '.join(CONFIG_KEYS)}, got {type(item).__name__}")
        missing = [k for k in CONFIG_KEYS if k not in item]
        if missing:
            raise FeatureError(f"{where}[{i}]: missing key(s) {', '.join(missing)}")
        for k in CONFIG_KEYS:
            out[k].append(item[k])
    return {k: np.asarray(v, dtype=object) if v else np.zeros(0, np.int64) for k, v in out.items()}


def features_from_columns(cols: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """The feature table (columns in ``FEATURES`` order, float64) for validated config columns."""
    arch = SimpleNamespace(**{k: cols[k] for k in ("layers", "hidden", "heads", "ffn")})
    shape = SimpleNamespace(batch=cols["batch"], seq=cols["seq"])
    a: Any = arch  # models.py's formulas are plain arithmetic on the attributes: numpy columns work too
    s: Any = shape
    fl = flops(a, s)
    out = {k: cols[k].astype(np.float64) for k in RAW}
    out["tokens"] = (cols["batch"] * cols["seq"]).astype(np.float64)
    out["head_dim"] = cols["hidden"] / cols["heads"]
    out["params"] = np.broadcast_to(np.asarray(count_params(a), np.float64), cols["layers"].shape).copy()
    out["flops_linear"] = np.asarray(fl.linear, np.float64)
    out["flops_attention"] = np.asarray(fl.attention, np.float64)
    out["flops_total"] = np.asarray(fl.total, np.float64)
    out["act_bytes"] = np.asarray(activation_bytes(a, s), np.float64)
    out["layer_tokens"] = out["layers"] * out["tokens"]
    return pd.DataFrame(out, columns=list(FEATURES))


def featurize(configs: Any, where: str = "configs") -> pd.DataFrame:
    """Validate configs (see :func:`config_columns`) and compute their features."""
    return features_from_columns(config_columns(configs, where))


def feature_ranges(x: pd.DataFrame) -> dict[str, list[float]]:
    return {k: [float(x[k].min()), float(x[k].max())] for k in FEATURES}


def out_of_range(x: pd.DataFrame, ranges: Mapping[str, Sequence[float]], rel_tol: float = 1e-9) -> np.ndarray:
    """Boolean mask: configs with layers, hidden, heads, ffn, seq, batch or tokens outside the training range."""
    mask = np.zeros(len(x), dtype=bool)
    for k in RANGE_KEYS:
        if k in ranges:
            lo, hi = ranges[k]
            v = x[k].to_numpy()
            mask |= (v < lo * (1 - rel_tol)) | (v > hi * (1 + rel_tol))
    return mask
