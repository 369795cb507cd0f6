"""Latency predictors: features, the LightGBM model, evaluation, few-shot transfer, files.

The search uses :func:`load_predictor` and :meth:`Predictor.predict_interval` (take ``high`` against a
hard latency budget). Importing this package does not import torch; its names are imported on first use,
so a light submodule (``transfer_methods``) can be read without LightGBM or pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:
    from .fitting import fit_and_save
    from .io import PredictorError, PredictorKey
    from .latency import LatencyPredictor, Prediction
    from .lookup import Predictor, list_predictors, load_predictor
    from .transfer import TransferPredictor

__all__ = ["LatencyPredictor", "Prediction", "Predictor", "PredictorError", "PredictorKey", "TransferPredictor",
           "fit_and_save", "list_predictors", "load_predictor"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "PredictorError": "io", "PredictorKey": "io", "LatencyPredictor": "latency", "Prediction": "latency",
    "Predictor": "lookup", "fit_and_save": "fitting", "list_predictors": "lookup", "load_predictor": "lookup",
    "TransferPredictor": "transfer",
})
