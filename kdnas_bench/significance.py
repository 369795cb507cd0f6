"""Is student A ahead of student B, behind it, or not distinguishable? Two tests, one verdict vocabulary.

* :func:`welch` — Welch's t-test over seeds: A's and B's dev metrics from independent seeds (unequal
  variances). It answers "is the difference larger than seed noise?". With three seeds a side it has little
  power: only differences several seed-stds wide come out distinguishable.
* :func:`paired_bootstrap` — a paired bootstrap over dev examples: both students' predictions on the same
  resampled dev sets (one resample for all seeds), the metric averaged over each side's seeds, the
  difference recorded per resample. It answers "would another dev set of this size give the same sign?".

Both return a :class:`Comparison` whose ``verdict`` is ``"ahead"``, ``"behind"`` or ``"not distinguishable"``
(two-sided at ``alpha``, 0.05 by default). Plain statistics, below every other layer: the search's baselines
and the reports both use them (:mod:`kdnas_bench.report.significance` adds the GLUE metrics).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .errors import KdnasError

AHEAD, BEHIND, TIED = "ahead", "behind", "not distinguishable"


@dataclass(frozen=True)
class Comparison:
    """A minus B: the mean difference, a two-sided p-value, a confidence interval and the verdict."""

    test: str
    diff: float
    p_value: float
    ci_low: float
    ci_high: float
    verdict: str
    n_a: int
    n_b: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _verdict(diff: float, p: float, alpha: float) -> str:
    if not math.isfinite(p) or p >= alpha or diff == 0:
        return TIED
    return AHEAD if diff > 0 else BEHIND


def welch(a: Sequence[float], b: Sequence[float], *, alpha: float = 0.05) -> Comparison:
    """Welch's t-test of mean(a) - mean(b) over independent seeds. Needs two values a side; when both sides
    have zero spread the verdict follows the sign of any difference (the seeds agree exactly)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) < 2 or len(y) < 2:
        raise KdnasError(f"Welch's t needs at least two seeds a side, got {len(x)} and {len(y)}")
    diff = float(x.mean() - y.mean())
    va, vb = float(x.var(ddof=1)) / len(x), float(y.var(ddof=1)) / len(y)
    se = math.sqrt(va + vb)
    if se == 0.0:
        p = 1.0 if diff == 0 else 0.0
        return Comparison("welch", diff, p, diff, diff, _verdict(diff, p, alpha), len(x), len(y))
    from scipy import stats  # noqa: PLC0415  lazy: scipy

    df = (va + vb) ** 2 / ((va**2 / (len(x) - 1) if va else 0.0) + (vb**2 / (len(y) - 1) if vb else 0.0))
    p = float(2 * stats.t.sf(abs(diff) / se, df))
    half = float(stats.t.ppf(1 - alpha / 2, df)) * se
    return Comparison("welch", diff, p, diff - half, diff + half, _verdict(diff, p, alpha), len(x), len(y))


Metric = Callable[[np.ndarray, np.ndarray], float]


def paired_bootstrap(preds_a: Sequence[Sequence[float]], preds_b: Sequence[Sequence[float]], gold: Sequence[float],
                     metric: Metric, *, resamples: int = 2000, seed: int = 0, alpha: float = 0.05) -> Comparison:
    """Paired bootstrap over dev examples. ``preds_a`` / ``preds_b``: one prediction vector per seed (label ids,
    or scores for regression), each aligned with ``gold``; ``metric(pred, gold)``: the task's primary metric.
    Each resample draws dev indices with replacement and scores every seed of both sides on them; the p-value
    is twice the smaller share of resamples on either side of zero."""
    gold_arr = np.asarray(gold)
    pa, pb = [np.asarray(p) for p in preds_a], [np.asarray(p) for p in preds_b]
    if not pa or not pb:
        raise KdnasError("a paired bootstrap needs predictions of at least one seed a side")
    if any(p.shape != gold_arr.shape for p in pa + pb):
        raise KdnasError(f"every prediction vector must have one value per dev example ({len(gold_arr)})")
    if resamples < 100:
        raise KdnasError(f"a bootstrap needs at least 100 resamples, got {resamples}")
    observed = float(np.mean([metric(p, gold_arr) for p in pa]) - np.mean([metric(p, gold_arr) for p in pb]))
    rng = np.random.default_rng(seed)
    n = len(gold_arr)
    diffs = np.empty(resamples)
    for i in range(resamples):
        idx = rng.integers(0, n, n)
        g = gold_arr[idx]
        diffs[i] = np.mean([metric(p[idx], g) for p in pa]) - np.mean([metric(p[idx], g) for p in pb])
    diffs = diffs[np.isfinite(diffs)]
    if len(diffs) == 0:
        return Comparison("paired-bootstrap", observed, math.nan, math.nan, math.nan, TIED, len(pa), len(pb))
    p = min(1.0, 2 * min(float((diffs <= 0).mean()), float((diffs >= 0).mean())))
    lo, hi = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    return Comparison("paired-bootstrap", observed, p, float(lo), float(hi), _verdict(observed, p, alpha),
                      len(pa), len(pb))
