"""Latency predictors: features, the LightGBM model, evaluation, few-shot transfer, files.

The search uses :func:`load_predictor` and :meth:`Predictor.predict_interval` (take ``high`` against a
hard latency budget). Importing this package does not import torch.
"""

from __future__ import annotations

from .io import PredictorError, PredictorKey
from .latency import LatencyPredictor, Prediction
from .registry import Predictor, fit_and_save, known_devices, list_predictors, load_predictor
from .transfer import TransferPredictor

__all__ = [
    "LatencyPredictor",
    "Prediction",
    "Predictor",
    "PredictorError",
    "PredictorKey",
    "TransferPredictor",
    "fit_and_save",
    "known_devices",
    "list_predictors",
    "load_predictor",
]
