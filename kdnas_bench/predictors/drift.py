"""Drift handling of the predictors: fit on canary-normalised rows, and the devices' noise floors.

See :mod:`kdnas_bench.profiling.canary` for the canary and :mod:`kdnas_bench.profiling.floor` for
``kdnas-bench remeasure``, which writes the floors read here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ..paths import default_store
from ..profiling.canary import normalise
from .io import PredictorError, PredictorKey


def normalise_rows(df: pd.DataFrame, loaded: pd.DataFrame, drift: str = "canary", reference_ms: float | None = None
                   ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Drift-normalise the rows to fit (and the loaded rows, with the same reference): the target a
    predictor learns is the latency at the reference canary speed — ``reference_ms`` when given (e.g. a
    quiet profile's, for rows measured on a busy machine), else the median canary of ``df``."""
    if drift not in ("canary", "none"):
        raise PredictorError(f"unknown drift handling {drift!r} (choose canary or none)")
    if drift == "none":
        return df, loaded, {"mode": "none", "reason": "asked (--drift none)"}
    if reference_ms is not None and not reference_ms > 0:
        raise PredictorError(f"--reference-ms must be positive, got {reference_ms}")
    out, info = normalise(df, reference_ms)
    if reference_ms is not None:
        info["reference_from"] = "given (--reference-ms)"
    if len(loaded):
        loaded, _ = normalise(loaded, info.get("reference_canary_ms"))
    return out, loaded, info


def device_floor(key: PredictorKey, store: Path | str | None = None) -> dict[str, Any] | None:
    """The noise floor measured for a dataset (``kdnas-bench remeasure``): re-measurement agreement,
    raw and drift-normalised, or ``None`` when it was never measured."""
    path = Path(store or default_store()) / key.relpath / "_floor.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(doc, dict):
        return None
    return {k: doc.get(k) for k in ("raw", "normalised", "measured_at", "source")}
