"""Checks of a predictor folder's contents *before* they reach LightGBM or numpy.

LightGBM's text parser trusts its input: a truncated ``model.txt`` (with its checksum updated, so the
sha256 in ``meta.json`` does not catch it) aborts or segfaults the whole process. :func:`check_model_text`
walks the text first — the header, every tree's declared byte size (LightGBM slices the text by
``tree_sizes``), every array's length and every child index — and raises a one-line
:class:`PredictorError` naming the file and what is wrong. :func:`check_state` does the same for the
learned state in ``meta.json`` (coefficient count, interval half-width, training ranges).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from ..errors import KdnasError

# per tree (LightGBM parses trees in parallel threads, where an error aborts the process instead of
# raising): arrays of one entry per internal node and of one entry per leaf, required or optional
_NODE_ARRAYS = ("split_feature", "threshold", "left_child", "right_child")
_NODE_OPTIONAL = ("split_gain", "decision_type", "internal_value", "internal_weight", "internal_count")
_LEAF_OPTIONAL = ("leaf_weight", "leaf_count")
_TREE_KEYS = {"num_leaves", "num_cat", "leaf_value", "is_linear", "shrinkage", *_NODE_ARRAYS, *_NODE_OPTIONAL,
              *_LEAF_OPTIONAL}
_PARAM_LINE = re.compile(r"^\[[A-Za-z0-9_]+: [^\[\]\n]*\]$")
_HEADER_KEYS = ("version", "num_class", "num_tree_per_iteration", "max_feature_idx", "feature_names")


class ModelCheckError(KdnasError):
    """Raised as the io module's PredictorError by the callers (kept separate to avoid an import cycle)."""


def _header(lines: list[str], where: str) -> tuple[dict[str, str], int]:
    if not lines or lines[0].strip() != "tree":
        raise ModelCheckError(f"corrupt predictor model {where}: not a LightGBM text model (first line "
                              f"{lines[0][:40] if lines else ''!r}, expected 'tree')")
    head: dict[str, str] = {}
    i = 1
    while i < len(lines) and lines[i].strip():
        key, sep, value = lines[i].partition("=")
        if sep:
            head[key.strip()] = value.strip()
        i += 1
    missing = [k for k in _HEADER_KEYS if k not in head]
    if missing:
        raise ModelCheckError(f"corrupt predictor model {where}: header lacks {', '.join(missing)}")
    return head, i


def _ints(text: str, what: str, where: str) -> list[int]:
    try:
        return [int(v) for v in text.split()]
    except ValueError:
        raise ModelCheckError(f"corrupt predictor model {where}: {what} holds a non-integer") from None


def _check_tree(block: str, index: int, n_features: int, where: str) -> None:
    fields: dict[str, str] = {}
    at = f"{where} (Tree={index})"
    for line in block.splitlines()[1:]:
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or key not in _TREE_KEYS or key in fields:
            raise ModelCheckError(f"corrupt predictor model {at}: unexpected line {line[:40]!r}")
        fields[key] = value.strip()
    if "num_leaves" not in fields:
        raise ModelCheckError(f"corrupt predictor model {at}: no num_leaves (the file is cut short?)")
    leaves = _ints(fields["num_leaves"], "num_leaves", at)
    if len(leaves) != 1 or leaves[0] < 1:
        raise ModelCheckError(f"corrupt predictor model {at}: num_leaves must be one positive integer")
    n = leaves[0]
    if fields.get("num_cat") != "0":
        raise ModelCheckError(f"corrupt predictor model {at}: num_cat must be 0 (kdnas-bench uses no categorical "
                              f"splits), got {fields.get('num_cat')!r}")
    if fields.get("is_linear", "0") != "0":
        raise ModelCheckError(f"corrupt predictor model {at}: linear trees are not used by kdnas-bench")
    # LightGBM writes a single-leaf tree (no split: e.g. a few near-equal rows) with an empty leaf_weight
    wanted = {"leaf_value": n, **{k: n for k in _LEAF_OPTIONAL if k in fields and (n > 1 or fields[k])}}
    if n > 1:
        wanted |= {k: n - 1 for k in (*_NODE_ARRAYS, *_NODE_OPTIONAL)} | {k: n for k in _LEAF_OPTIONAL}
    if "shrinkage" in fields:
        wanted["shrinkage"] = 1
    for key, count in wanted.items():
        raw = fields.get(key)
        values = raw.split() if raw is not None else []
        if len(values) != count:
            raise ModelCheckError(f"corrupt predictor model {at}: {key} has {len(values)} values, "
                                  f"expected {count} for {n} leaves")
        try:
            floats = [float(v) for v in values]
        except ValueError:
            raise ModelCheckError(f"corrupt predictor model {at}: {key} holds a non-number") from None
        if not all(math.isfinite(v) for v in floats):
            raise ModelCheckError(f"corrupt predictor model {at}: {key} holds a non-finite value")
    if n > 1:
        feats = _ints(fields["split_feature"], "split_feature", at)
        if any(not 0 <= f < n_features for f in feats):
            raise ModelCheckError(f"corrupt predictor model {at}: split_feature outside 0..{n_features - 1}")
        for side in ("left_child", "right_child"):
            for c in _ints(fields[side], side, at):
                if not (0 <= c < n - 1 if c >= 0 else 0 <= ~c < n):
                    raise ModelCheckError(f"corrupt predictor model {at}: {side} {c} points outside the tree")
        if any(not 0 <= d < 16 or d & 1 for d in _ints(fields["decision_type"], "decision_type", at)):
            raise ModelCheckError(f"corrupt predictor model {at}: decision_type marks a split kdnas-bench "
                                  "does not use (categorical or unknown)")
        for key in ("leaf_count", "internal_count"):
            if key in fields:
                _ints(fields[key], key, at)


def check_model_text(text: str, where: str, *, n_features: int) -> int:
    """Validate a LightGBM text model; returns its number of trees. Raises ModelCheckError."""
    if not text.strip():
        raise ModelCheckError(f"corrupt predictor model {where}: the file is empty")
    lines = text.split("\n")
    head, _ = _header(lines, where)
    feats = _ints(head["max_feature_idx"], "max_feature_idx", where)
    if feats != [n_features - 1] or len(head["feature_names"].split()) != n_features:
        raise ModelCheckError(f"corrupt predictor model {where}: {head['max_feature_idx']}+1 features, "
                              f"expected {n_features}")
    if _ints(head["num_class"], "num_class", where) != [1] or _ints(
            head["num_tree_per_iteration"], "num_tree_per_iteration", where) != [1]:
        raise ModelCheckError(f"corrupt predictor model {where}: not a single-output regression model")
    if "\nend of trees" not in text:
        raise ModelCheckError(f"corrupt predictor model {where}: no 'end of trees' line (the file is cut short)")
    tail = text[text.index("\nend of trees"):]
    if "\nparameters:" in tail:  # LightGBM parses this block in C++ and crashes on a malformed line
        params, found, _ = tail.partition("\nparameters:")[2].partition("\nend of parameters")
        if not found:
            raise ModelCheckError(f"corrupt predictor model {where}: no 'end of parameters' line (the file is cut short)")
        for line in params.split("\n"):
            if line.strip() and not _PARAM_LINE.match(line):
                raise ModelCheckError(f"corrupt predictor model {where}: malformed parameter line {line[:40]!r}")
    data = text.encode("utf-8")
    first = data.find(b"\nTree=")
    end = data.find(b"\nend of trees")
    starts = []
    pos = first
    while 0 <= pos < end:
        starts.append(pos + 1)
        pos = data.find(b"\nTree=", pos + 1)
    blocks = [data[s:e].decode("utf-8") for s, e in zip(starts, [*starts[1:], end + 1], strict=True)]
    for i, block in enumerate(blocks):
        if not block.startswith(f"Tree={i}\n"):
            raise ModelCheckError(f"corrupt predictor model {where}: tree {i} is out of order or missing")
        _check_tree(block, i, n_features, where)
    if "tree_sizes" in head:  # LightGBM slices the text by these byte counts: they must add up exactly
        sizes = _ints(head["tree_sizes"], "tree_sizes", where)
        if len(sizes) != len(blocks):
            raise ModelCheckError(f"corrupt predictor model {where}: tree_sizes lists {len(sizes)} trees, "
                                  f"the file holds {len(blocks)}")
        offset = starts[0] if starts else 0
        for i, size in enumerate(sizes):
            if size <= 0 or not data.startswith(f"Tree={i}\n".encode(), offset) or offset + size > end + 1:
                raise ModelCheckError(f"corrupt predictor model {where}: tree_sizes does not match tree {i}")
            offset += size
    return len(blocks)


def _pair(value: Any) -> bool:
    return (isinstance(value, list | tuple) and len(value) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value)
            and value[0] <= value[1])


def check_state(state: Any, where: str, base_terms: Sequence[str], range_keys: Sequence[str]) -> None:
    """The learned state of ``meta.json`` (``model``): typed, of the right lengths, finite."""
    if not isinstance(state, dict):
        raise ModelCheckError(f"corrupt predictor metadata {where}: field 'model' must be an object")
    if not isinstance(state.get("params"), dict):
        raise ModelCheckError(f"corrupt predictor metadata {where}: field 'model.params' must be an object")
    check_coefficients(state.get("base_coef"), len(base_terms), f"{where}: field 'model.base_coef'")
    q = state.get("log_halfwidth")
    if q is not None and (isinstance(q, bool) or not isinstance(q, int | float) or not q >= 0):
        raise ModelCheckError(f"corrupt predictor metadata {where}: field 'model.log_halfwidth' must be a "
                              f"non-negative number, got {q!r}")
    ranges = state.get("ranges")
    if not isinstance(ranges, dict):
        raise ModelCheckError(f"corrupt predictor metadata {where}: field 'model.ranges' must be an object")
    for key in range_keys:
        if not _pair(ranges.get(key)):
            raise ModelCheckError(f"corrupt predictor metadata {where}: field 'model.ranges.{key}' must be "
                                  f"[low, high] numbers, got {ranges.get(key)!r}")
    rows = state.get("rows")
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise ModelCheckError(f"corrupt predictor metadata {where}: field 'model.rows' must be a count, got {rows!r}")


def check_coefficients(coef: Any, n: int, what: str) -> None:
    if not isinstance(coef, list) or len(coef) != n:
        got = f"{len(coef)} values" if isinstance(coef, list) else repr(coef)
        raise ModelCheckError(f"corrupt predictor metadata {what} must list {n} numbers, got {got}")
    if not all(isinstance(c, int | float) and not isinstance(c, bool) and math.isfinite(c) for c in coef):
        raise ModelCheckError(f"corrupt predictor metadata {what} holds a non-number")
