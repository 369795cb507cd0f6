"""Latency predictors: features, the LightGBM model, evaluation, few-shot transfer, files.

The search uses :func:`load_predictor` and :meth:`Predictor.predict_interval` (take ``high`` against a
hard latency budget). Importing this package does not import torch; its names are imported on first use,
so a light submodule (``transfer_methods``) can be read without LightGBM or pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "PredictorError": "io", "PredictorKey": "io", "LatencyPredictor": "latency", "Prediction": "latency",
    "Predictor": "lookup", "fit_and_save": "fitting", "list_predictors": "lookup", "load_predictor": "lookup",
    "TransferPredictor": "transfer",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)


__all__ = sorted(_WHERE)
