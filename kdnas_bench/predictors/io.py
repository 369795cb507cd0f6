"""Predictor files and the registry of fitted predictors.

Layout (``predictors/`` in the checkout by default)::

    predictors/<device_id>/<backend>-t<threads>/
        model.txt      LightGBM text model (the correction trees; the source model's for a transfer)
        meta.json      everything else: feature schema, base coefficients, interval, training ranges,
                       hash of the profile rows used, metrics, library versions

No pickle: a predictor is readable and diffable, and a file from another kdnas-bench version fails
with a clear message instead of unpickling into something wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import pandas

from .. import __version__
from ..errors import PredictorError
from ..keys import DatasetKey
from .features import FEATURE_SCHEMA, FEATURES
from .files import FORMAT_VERSION, KIND, META_FILE, MODEL_FILE

PredictorKey = DatasetKey  # one key for a profile dataset and its predictor


def library_versions() -> dict[str, str]:
    import lightgbm  # noqa: PLC0415  lazy: lightgbm
    import scipy  # noqa: PLC0415  lazy: scipy

    return {
        "kdnas_bench": __version__,
        "lightgbm": lightgbm.__version__,
        "numpy": np.__version__,
        "pandas": pandas.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
    }


def rows_sha256(row_ids: Any, medians_ms: Any) -> str:
    """Hash of the profile rows a predictor was fitted on (row id and median, sorted by row id)."""
    pairs = sorted(zip((str(r) for r in row_ids), (float(m) for m in medians_ms), strict=True))
    h = hashlib.sha256()
    for rid, med in pairs:
        h.update(f"{rid}:{med!r}\n".encode())
    return h.hexdigest()


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# -- folders --------------------------------------------------------------------------------------
def save_folder(folder: Path, files: dict[str, str], meta: dict[str, Any]) -> Path:
    """Write the model text files (``model.txt``, ...) and ``meta.json`` (with their sha256) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "feature_schema": FEATURE_SCHEMA,
        "features": list(FEATURES),
        **meta,
        "files": {name: _sha256_text(text) for name, text in files.items()},
    }
    for name, text in files.items():
        _write_atomic(folder / name, text)
    _write_atomic(folder / META_FILE, json.dumps(_jsonable(meta), indent=2, sort_keys=False) + "\n")
    return folder


def read_folder(folder: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """Read and check a predictor folder: kind, format, feature schema and model checksums."""
    folder = Path(folder)
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise PredictorError(f"no predictor in {folder} (missing {META_FILE})")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PredictorError(f"corrupt predictor metadata {meta_path}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        raise PredictorError(f"{meta_path} is not a kdnas-bench latency predictor")
    if meta.get("format_version") != FORMAT_VERSION:
        raise PredictorError(f"{meta_path} has predictor format {meta.get('format_version')}, "
                             f"this kdnas-bench reads {FORMAT_VERSION}; refit it with `kdnas-bench fit`")
    if meta.get("feature_schema") != FEATURE_SCHEMA or meta.get("features") != list(FEATURES):
        raise PredictorError(
            f"{meta_path} was fitted with feature schema {meta.get('feature_schema')} "
            f"({len(meta.get('features') or [])} features); this kdnas-bench uses schema {FEATURE_SCHEMA} "
            f"({len(FEATURES)} features); refit it with `kdnas-bench fit`"
        )
    listed = meta.get("files")
    if not isinstance(listed, dict) or MODEL_FILE not in listed:
        raise PredictorError(f"corrupt predictor metadata {meta_path}: no model files listed")
    files = {}
    for name, expected in listed.items():
        path = folder / str(name)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PredictorError(f"cannot read predictor model {path}: {exc}") from None
        if expected != _sha256_text(text):
            raise PredictorError(f"corrupt predictor model {path}: checksum does not match {META_FILE}")
        files[str(name)] = text
    return files, meta


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
