"""The names and format of a predictor folder: ``meta.json`` plus LightGBM text files."""

from __future__ import annotations

KIND = "kdnas-bench-latency-predictor"
FORMAT_VERSION = 1
META_FILE = "meta.json"
MODEL_FILE = "model.txt"  # the (source) LatencyPredictor's trees
RESIDUAL_FILE = "residual.txt"  # a transfer's residual trees (method "residual")
