"""The timing primitive's rules, checked with a deterministic clock (no wall-clock assertions)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest

from kdnas_bench.profiling.timing import PerfCounterClock, Timing, TimingConfig, time_callable


class ScriptedClock:
    """Returns scripted per-call durations and counts calls; stands in for the device clock."""

    def __init__(self, durations: list[float]) -> None:
        self._it = itertools.cycle(durations)
        self.timed_calls = 0

    def time_calls(self, fn: Callable[[], object], k: int) -> list[float]:
        out = []
        for _ in range(k):
            fn()
            out.append(next(self._it))
        self.timed_calls += k
        return out


def test_stats_come_from_raw_times() -> None:
    t = Timing(tuple(v / 1e3 for v in [10.0, 11.0, 12.0, 13.0, 100.0]))
    arr = np.array([10.0, 11.0, 12.0, 13.0, 100.0])
    assert t.median_ms == pytest.approx(12.0)
    assert t.mean_ms == pytest.approx(arr.mean())
    assert t.p90_ms == pytest.approx(np.percentile(arr, 90))
    assert t.p99_ms == pytest.approx(np.percentile(arr, 99))
    assert t.cv == pytest.approx(arr.std(ddof=1) / arr.mean())
    assert t.iqr_ratio == pytest.approx((13.0 - 11.0) / 12.0)
    assert t.n == 5  # nothing trimmed


def test_warmup_is_untimed_and_min_count_is_met() -> None:
    calls = []
    clock = ScriptedClock([0.001])
    cfg = TimingConfig(warmup=5, min_calls=20, min_seconds=0.0, max_seconds=60)
    t = time_callable(lambda: calls.append(1), clock, cfg)
    assert len(calls) == 5 + clock.timed_calls
    assert t.n == clock.timed_calls >= 20


def test_min_duration_extends_a_fast_run() -> None:
    cfg = TimingConfig(warmup=0, min_calls=3, min_seconds=0.05, max_seconds=5, max_calls=100_000)
    t = time_callable(lambda: None, PerfCounterClock(), cfg)
    assert t.n > 3  # a no-op takes far less than 0.05 s, so the duration rule drove the count


def test_max_calls_caps() -> None:
    cfg = TimingConfig(warmup=0, min_calls=10, min_seconds=100.0, max_seconds=200.0, max_calls=50)
    t = time_callable(lambda: None, ScriptedClock([0.001]), cfg)
    assert t.n == 50


def test_noisy_config_is_remeasured_and_flagged() -> None:
    cfg = TimingConfig(warmup=0, min_calls=8, min_seconds=0.0, remeasure=2)
    noisy = time_callable(lambda: None, ScriptedClock([0.001, 0.002]), cfg)
    assert noisy.attempts == 3 and noisy.noisy
    steady = time_callable(lambda: None, ScriptedClock([0.001]), cfg)
    assert steady.attempts == 1 and not steady.noisy


def test_bad_config_rejected() -> None:
    with pytest.raises(ValueError):
        TimingConfig(min_calls=10, max_calls=5)
    with pytest.raises(ValueError):
        TimingConfig(min_seconds=5, max_seconds=1)
