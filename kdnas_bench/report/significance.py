"""Is student A ahead of student B, behind it, or not distinguishable? The tests of
:mod:`kdnas_bench.significance` (:func:`welch` over seeds, :func:`paired_bootstrap` over dev examples), and the
primary dev metric of a GLUE task as the bootstrap's metric (:func:`task_metric`)."""

from __future__ import annotations

from ..distill.data import METRICS, get_task
from ..significance import AHEAD, BEHIND, TIED, Comparison, Metric, paired_bootstrap, welch

__all__ = ["AHEAD", "BEHIND", "TIED", "Comparison", "Metric", "paired_bootstrap", "task_metric", "welch"]


def task_metric(task: str) -> Metric:
    """The primary dev metric of a GLUE task as a ``metric(pred, gold)`` function for :func:`paired_bootstrap`."""
    fn = METRICS[get_task(task).primary_metric]
    return lambda pred, gold: float(fn(pred, gold))
