"""The task metrics (accuracy, f1 of class 1, Matthews correlation, Pearson, Spearman) by name."""

from __future__ import annotations

import numpy as np


def _accuracy(pred: np.ndarray, gold: np.ndarray) -> float:
    return float((pred == gold).mean()) if len(gold) else float("nan")


def _f1(pred: np.ndarray, gold: np.ndarray) -> float:
    tp = float(((pred == 1) & (gold == 1)).sum())
    fp = float(((pred == 1) & (gold != 1)).sum())
    fn = float(((pred != 1) & (gold == 1)).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def _matthews(pred: np.ndarray, gold: np.ndarray) -> float:
    from sklearn.metrics import matthews_corrcoef  # noqa: PLC0415  lazy: sklearn

    return float(matthews_corrcoef(gold, pred))


def _pearson(pred: np.ndarray, gold: np.ndarray) -> float:
    from scipy.stats import pearsonr  # noqa: PLC0415  lazy: scipy

    if np.std(pred) == 0 or np.std(gold) == 0:
        return 0.0
    return float(pearsonr(pred, gold)[0])


def _spearman(pred: np.ndarray, gold: np.ndarray) -> float:
    from scipy.stats import spearmanr  # noqa: PLC0415  lazy: scipy

    if np.std(pred) == 0 or np.std(gold) == 0:
        return 0.0
    return float(spearmanr(pred, gold)[0])


METRICS = {"accuracy": _accuracy, "f1": _f1, "matthews": _matthews, "pearson": _pearson, "spearman": _spearman}
CLASSIFICATION_METRICS = ("accuracy", "f1", "matthews")
REGRESSION_METRICS = ("pearson", "spearman")
TASK_METRICS = (*CLASSIFICATION_METRICS, *REGRESSION_METRICS)  # what --metric may name
