"""The significance helper on constructed cases: clear gaps are "ahead" / "behind", overlapping seed spreads
and coin-flip predictions are "not distinguishable", and the figures match the textbook formulas."""

from __future__ import annotations

import numpy as np
import pytest

from kdnas_bench.errors import KdnasError
from kdnas_bench.report.significance import AHEAD, BEHIND, TIED, paired_bootstrap, task_metric, welch


def test_welch_separated_seeds_are_ahead_and_behind() -> None:
    a, b = [0.870, 0.872, 0.868], [0.850, 0.852, 0.851]
    c = welch(a, b)
    assert c.verdict == AHEAD and c.p_value < 0.01 and c.ci_low > 0 and c.diff == pytest.approx(0.019, abs=1e-9)
    assert welch(b, a).verdict == BEHIND


def test_welch_overlapping_seeds_are_not_distinguishable() -> None:
    c = welch([0.87, 0.86, 0.85], [0.86, 0.85, 0.87])
    assert c.verdict == TIED and c.p_value > 0.5 and c.ci_low < 0 < c.ci_high
    # a difference of one seed-std with three seeds a side is not enough either
    assert welch([0.870, 0.860, 0.880], [0.860, 0.850, 0.870]).verdict == TIED


def test_welch_matches_the_formula() -> None:
    from scipy import stats

    a, b = [1.0, 2.0, 4.0, 3.5], [0.5, 0.7, 1.9]
    ref = stats.ttest_ind(a, b, equal_var=False)
    c = welch(a, b)
    assert c.p_value == pytest.approx(float(ref.pvalue), rel=1e-9) and c.test == "welch"


def test_welch_needs_two_seeds_and_handles_zero_spread() -> None:
    with pytest.raises(KdnasError, match="two seeds"):
        welch([0.8], [0.7, 0.71])
    assert welch([0.8, 0.8], [0.8, 0.8]).verdict == TIED
    assert welch([0.8, 0.8], [0.7, 0.7]).verdict == AHEAD


def test_paired_bootstrap_sees_a_real_gap_and_not_a_coin_flip() -> None:
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 2, 400)
    acc = task_metric("sst2")

    def noisy(err: float, seed: int) -> np.ndarray:
        r = np.random.default_rng(seed)
        return np.where(r.random(len(gold)) < err, 1 - gold, gold)

    good = [noisy(0.10, s) for s in range(3)]
    bad = [noisy(0.30, 10 + s) for s in range(3)]
    c = paired_bootstrap(good, bad, gold, acc, resamples=500)
    assert c.verdict == AHEAD and c.diff == pytest.approx(0.2, abs=0.05) and c.ci_low > 0
    assert paired_bootstrap(bad, good, gold, acc, resamples=500).verdict == BEHIND
    same = paired_bootstrap([noisy(0.2, 5)], [noisy(0.2, 6)], gold, acc, resamples=500)
    assert same.verdict == TIED and same.ci_low < 0 < same.ci_high


def test_paired_bootstrap_on_regression_scores_and_bad_input() -> None:
    rng = np.random.default_rng(0)
    gold = rng.normal(size=300)
    close, far = gold + 0.3 * rng.normal(size=300), gold + 1.5 * rng.normal(size=300)
    assert paired_bootstrap([close], [far], gold, task_metric("stsb"), resamples=300).verdict == AHEAD
    with pytest.raises(KdnasError, match="one value per dev example"):
        paired_bootstrap([close[:10]], [far], gold, task_metric("stsb"))
    with pytest.raises(KdnasError, match="100 resamples"):
        paired_bootstrap([close], [far], gold, task_metric("stsb"), resamples=10)
