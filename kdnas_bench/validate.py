"""Checks that run before any work: every option's value and every output path.

The CLI wraps each command so that :func:`check_values` sees the parsed options first (the click side, which
names each option as the user writes it, is :mod:`kdnas_bench.cli.checks`):

* every float option must be finite (``nan``, ``inf`` and ``-inf`` are refused, naming the option);
* every integer option must fit in int64, and a few options have ranges (``--seed`` is 0 … 2**32-1);
* every output path (``OUTPUTS``) must be writable *now*: a folder that can be created or written in, a
  file whose folder can be written, never a file where a folder is expected or the reverse. A
  training command therefore fails before it trains, not after.

Checks of files that are *read* live with their readers (see :mod:`kdnas_bench.filechecks`).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import KdnasError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# command path -> {parameter name: "folder" | "file"}: everything a command writes into
OUTPUTS: dict[str, dict[str, str]] = {
    "profile": {"store": "folder", "onnx_cache": "folder"},
    "measure": {"onnx_cache": "folder"},
    "remeasure": {"store": "folder", "onnx_cache": "folder"},
    "fit": {"out": "folder"},
    "search": {"run_dir": "folder", "supernet_dir": "folder"},
    "supernet train": {"out": "folder"},
    "distill": {"out": "folder"},
    "export": {"out": "folder"},
    "teacher finetune": {"out": "folder"},
    "compare": {"html_path": "file", "md_path": "file", "png": "folder"},
    "report": {"html_path": "file", "md_path": "file", "png": "folder"},
    "quickstart": {"out": "folder"},
}

# parameters (any command) naming a folder that is read: when the path exists it must be a folder
INPUT_FOLDERS = ("predictors_dir", "root", "source_root", "store", "data_dir", "folder")

# parameter name -> (lowest, highest) allowed, for options where the type alone is not enough (any command)
RANGES: dict[str, tuple[float, float]] = {
    "seed": (0, 2**32 - 1),  # numpy and torch seeds
    "threads": (1, 1024),
    "from_threads": (1, 1024),
    "warmup": (0, 100_000),  # timing: bounded, so a typo cannot make a measurement run for days
    "min_calls": (1, 1_000_000),
    "min_seconds": (0, 3600),
    "max_seconds": (0, 3600),
    "max_load": (0, 1e6),
}


def check_finite(name: str, value: float) -> float:
    if not math.isfinite(value):
        raise KdnasError(f"{name} must be a finite number, got {value}")
    return value


def check_int64(name: str, value: int) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise KdnasError(f"{name} {value} does not fit in a 64-bit integer")
    return value


def _scalars(value: Any) -> Iterable[Any]:
    return value if isinstance(value, tuple | list) else (value,)


def check_values(command: str, names: Mapping[str, str], values: Mapping[str, Any]) -> None:
    """Every parsed option of ``command`` (e.g. ``"teacher finetune"``): finite, in int64, in range, and
    every output path writable. ``names`` maps each parameter of the command to how the user writes it
    (``--max-load``, ``RUN_DIR``). Raises :class:`KdnasError` naming the first bad option."""
    for pname, name in names.items():
        for v in _scalars(values.get(pname)):
            if isinstance(v, bool) or v is None:
                continue
            if isinstance(v, float):
                check_finite(name, v)
            elif isinstance(v, int):
                check_int64(name, v)
            if pname in RANGES and isinstance(v, int | float):
                lo, hi = RANGES[pname]
                if not lo <= v <= hi:
                    low = {0: "non-negative", 1: "positive"}.get(int(lo), f"at least {lo:g}")
                    raise KdnasError(f"{name} must be {low} and at most {hi:g}, got {v}")
    outputs = OUTPUTS.get(command, {})
    for pname in INPUT_FOLDERS:
        value = values.get(pname)
        if pname in names and pname not in outputs and isinstance(value, str) and os.path.isfile(value):
            raise KdnasError(f"{names[pname]} {value} is not a folder")
    for pname, kind in outputs.items():
        value = values.get(pname)
        if value is not None and pname in names:
            check_writable(names[pname], value, kind)


def _probe(folder: Path) -> str | None:
    """None when a file can be created in ``folder`` (tried for real, then removed), else the reason."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".kdnas-write-check-", dir=folder)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    os.close(fd)
    os.unlink(tmp)
    return None


def check_writable(name: str, value: str | os.PathLike[str], kind: str = "folder") -> Path:
    """``value`` can be written as a ``kind`` ("folder" or "file"): it exists as that kind and can be
    written in, or the nearest existing folder above it can. Nothing is created."""
    try:
        return _check_writable(name, value, kind)
    except OSError as exc:  # e.g. a name too long for the file system
        raise KdnasError(f"{name} {value}: {exc.strerror or exc}") from None


def _check_writable(name: str, value: str | os.PathLike[str], kind: str) -> Path:
    path = Path(value)
    if str(value) == "":
        raise KdnasError(f"{name} is empty; give a path")
    if "\0" in str(value):
        raise KdnasError(f"{name} holds a NUL byte")
    if path.exists():
        if kind == "folder" and not path.is_dir():
            raise KdnasError(f"{name} {value} exists and is not a folder")
        if kind == "file" and path.is_dir():
            raise KdnasError(f"{name} {value} is a folder; give a file name")
        where = path if kind == "folder" else path.parent
    else:
        where = path.parent
        while not where.exists() and where != where.parent:
            where = where.parent
        if not where.is_dir():
            raise KdnasError(f"{name} {value}: {where} is a file, not a folder")
    reason = _probe(where if str(where) else Path("."))
    if reason is not None:
        raise KdnasError(f"{name} {value}: cannot write in {os.path.abspath(where)} ({reason})")
    return path
