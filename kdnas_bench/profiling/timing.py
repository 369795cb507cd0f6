"""THE timing primitive. Every backend is timed by :func:`time_callable`; only the clock differs
(``perf_counter_ns`` around each call on CPU, CUDA events on GPU).

Rules (GUIDE §2): untimed warm-up; stop on a minimum count *and* a minimum duration, both capped;
keep every raw time; stats computed from the raw times, never trimmed; a noisy run
(IQR/median > ``noisy_iqr``) is re-measured and flagged if it stays noisy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


class Clock(Protocol):
    """Times ``k`` back-to-back calls of ``fn`` and returns one duration (seconds) per call."""

    def time_calls(self, fn: Callable[[], object], k: int) -> list[float]: ...


class PerfCounterClock:
    """CPU wall time with ``time.perf_counter_ns`` around each call."""

    def time_calls(self, fn: Callable[[], object], k: int) -> list[float]:
        out = []
        for _ in range(k):
            t0 = time.perf_counter_ns()
            fn()
            out.append((time.perf_counter_ns() - t0) * 1e-9)
        return out


class CudaEventClock:
    """GPU time with a pair of CUDA events per call; one synchronisation per chunk, before reading."""

    def __init__(self) -> None:
        import torch  # noqa: PLC0415  lazy: torch

        self._torch = torch

    def time_calls(self, fn: Callable[[], object], k: int) -> list[float]:
        cuda = self._torch.cuda
        starts = [cuda.Event(enable_timing=True) for _ in range(k)]
        ends = [cuda.Event(enable_timing=True) for _ in range(k)]
        for i in range(k):
            starts[i].record()
            fn()
            ends[i].record()
        cuda.synchronize()
        return [s.elapsed_time(e) * 1e-3 for s, e in zip(starts, ends, strict=True)]


@dataclass(frozen=True)
class TimingConfig:
    warmup: int = 5
    min_calls: int = 20
    min_seconds: float = 0.5
    max_calls: int = 1000
    max_seconds: float = 10.0
    noisy_iqr: float = 0.10  # IQR / median above this counts as noisy
    remeasure: int = 1  # extra attempts for a noisy config

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) for v in (self.min_seconds, self.max_seconds, self.noisy_iqr)):
            raise ValueError("min_seconds, max_seconds and noisy_iqr must be finite")
        if self.warmup < 0 or self.remeasure < 0:
            raise ValueError("warmup and remeasure must be >= 0")
        if self.min_calls < 1 or self.max_calls < self.min_calls:
            raise ValueError("need 1 <= min_calls <= max_calls")
        if self.min_seconds < 0 or self.max_seconds < self.min_seconds:
            raise ValueError("need 0 <= min_seconds <= max_seconds")
        if self.noisy_iqr <= 0:
            raise ValueError("noisy_iqr must be positive")


@dataclass(frozen=True)
class Timing:
    """Raw per-call times (seconds) of one measurement, with the statistics derived from them."""

    times: tuple[float, ...]
    attempts: int = 1
    noisy: bool = False
    wall_seconds: float = 0.0
    _arr: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.times:
            raise ValueError("a timing needs at least one call")
        object.__setattr__(self, "_arr", np.asarray(self.times, dtype=np.float64) * 1e3)

    @property
    def n(self) -> int:
        return len(self.times)

    @property
    def median_ms(self) -> float:
        return float(np.median(self._arr))

    @property
    def mean_ms(self) -> float:
        return float(self._arr.mean())

    @property
    def std_ms(self) -> float:
        return float(self._arr.std(ddof=1)) if self.n > 1 else 0.0

    @property
    def min_ms(self) -> float:
        return float(self._arr.min())

    @property
    def p90_ms(self) -> float:
        return float(np.percentile(self._arr, 90))

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self._arr, 99))

    @property
    def cv(self) -> float:
        return self.std_ms / self.mean_ms if self.mean_ms > 0 else 0.0

    @property
    def iqr_ratio(self) -> float:
        q1, q3 = np.percentile(self._arr, [25, 75])
        return float((q3 - q1) / self.median_ms) if self.median_ms > 0 else 0.0

    def stats(self) -> dict[str, float | int | bool]:
        return {
            "median_ms": self.median_ms,
            "mean_ms": self.mean_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "min_ms": self.min_ms,
            "std_ms": self.std_ms,
            "cv": self.cv,
            "iqr_ratio": self.iqr_ratio,
            "n": self.n,
            "attempts": self.attempts,
            "noisy": self.noisy,
        }


def _one_run(fn: Callable[[], object], clock: Clock, cfg: TimingConfig) -> list[float]:
    for _ in range(cfg.warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    chunk = 1
    while True:
        times.extend(clock.time_calls(fn, chunk))
        elapsed = time.perf_counter() - start
        n = len(times)
        if n >= cfg.max_calls or elapsed >= cfg.max_seconds:
            return times
        if n >= cfg.min_calls and elapsed >= cfg.min_seconds:
            return times
        # grow the chunk while calls are short (fewer clock/sync round trips), never past the caps
        per_call = elapsed / n
        remaining = max(cfg.min_calls - n, (cfg.min_seconds - elapsed) / max(per_call, 1e-9))
        chunk = int(max(1, min(remaining, cfg.max_calls - n, 64)))


def time_callable(fn: Callable[[], object], clock: Clock | None = None, config: TimingConfig | None = None) -> Timing:
    """Warm up, time ``fn`` until both minimums are met (or a cap is hit), re-measure if noisy."""
    clock = clock or PerfCounterClock()
    cfg = config or TimingConfig()
    t0 = time.perf_counter()
    best: Timing | None = None
    for attempt in range(1, cfg.remeasure + 2):
        timing = Timing(tuple(_one_run(fn, clock, cfg)), attempts=attempt)
        if best is None or timing.iqr_ratio < best.iqr_ratio:
            best = timing
        if timing.iqr_ratio <= cfg.noisy_iqr:
            best = timing
            break
    assert best is not None
    noisy = best.iqr_ratio > cfg.noisy_iqr
    return Timing(best.times, attempts=attempt, noisy=noisy, wall_seconds=time.perf_counter() - t0)


# -- drift-aware timing: the config interleaved with a fixed canary --------------------------------
INTERLEAVE_MODES = ("burst", "call", "chunk")
# "burst": alternate back-to-back bursts of about BURST_SECONDS of the config and of the canary, each burst
# opened by one untimed call; every timed call then runs as in a plain back-to-back loop (warm caches), so
# small configs are not slowed by the canary evicting their weights between calls as in "call" mode
BURST_SECONDS = 0.1


@dataclass(frozen=True)
class PairedTiming:
    """A config timed interleaved with the canary in the same seconds. ``ratio`` (config median over
    canary median) is what a shared VM's speed drift leaves nearly unchanged (GUIDE §2 rule 9)."""

    target: Timing
    canary: Timing
    mode: str

    def __post_init__(self) -> None:
        if self.mode not in INTERLEAVE_MODES:
            raise ValueError(f"unknown interleave mode {self.mode!r}")

    @property
    def ratio(self) -> float:
        return self.target.median_ms / self.canary.median_ms

    @property
    def canary_shift(self) -> float:
        """Relative change of the canary's median from the first to the second half of the row: how much
        the machine's speed moved while this row was measured."""
        c = np.asarray(self.canary.times, dtype=np.float64)
        if c.size < 4:
            return 0.0
        half = c.size // 2
        return float(np.median(c[half:]) / np.median(c[:half]) - 1.0)


def _interleaved_run(fn: Callable[[], object], ref: Callable[[], object], clock: Clock, cfg: TimingConfig,
                     mode: str, chunk_seconds: float) -> tuple[list[float], list[float]]:
    for _ in range(cfg.warmup):
        fn()
        ref()
    target: list[float] = []
    canary: list[float] = []
    # the window is measured by the timed durations themselves (config + canary), so a scripted clock
    # in the tests drives the stopping rule exactly as the real one does
    elapsed = 0.0
    k_t = k_c = 1
    while True:
        if mode == "burst":  # the first bursts are one call each; later ones sized from the calls so far
            if target:
                k_t, k_c = _burst_sizes(target, canary, cfg, elapsed, chunk_seconds)
            fn()  # untimed: the first call after the canary's burst runs on the canary's caches
        t = clock.time_calls(fn, k_t)
        if mode == "burst":
            ref()
        c = clock.time_calls(ref, k_c)
        target.extend(t)
        canary.extend(c)
        elapsed += sum(t) + sum(c)
        n = len(target)
        if n >= cfg.max_calls or elapsed >= cfg.max_seconds:
            return target, canary
        if n >= cfg.min_calls and elapsed >= cfg.min_seconds:
            return target, canary
        if mode == "chunk":  # alternate blocks of ~chunk_seconds of each
            per_t, per_c = sum(target) / len(target), sum(canary) / len(canary)
            k_t = int(max(1, min(chunk_seconds / max(per_t, 1e-9), cfg.max_calls - n)))
            k_c = int(max(1, chunk_seconds / max(per_c, 1e-9)))


def _burst_sizes(target: list[float], canary: list[float], cfg: TimingConfig, elapsed: float,
                 burst_seconds: float) -> tuple[int, int]:
    """Calls in the next bursts of the config and of the canary: about ``burst_seconds`` each, less when the
    row's minimums (calls, seconds — split between the two) are nearly met, never past ``max_calls``."""
    n = len(target)
    per_t, per_c = max(sum(target) / n, 1e-9), max(sum(canary) / len(canary), 1e-9)
    seconds = min(burst_seconds, max((cfg.min_seconds - elapsed) / 2, 0.0))
    k_t = int(max(1, min(max(cfg.min_calls - n, seconds / per_t), burst_seconds / per_t, cfg.max_calls - n)))
    k_c = int(max(1, min(burst_seconds, k_t * per_t) / per_c))
    return k_t, k_c


def time_interleaved(fn: Callable[[], object], ref: Callable[[], object], clock: Clock | None = None,
                     config: TimingConfig | None = None, *, mode: str = "burst",
                     chunk_seconds: float | None = None) -> PairedTiming:
    """Time ``fn`` interleaved with the canary ``ref``: back-to-back bursts of about ``chunk_seconds`` (default
    ``BURST_SECONDS``) each opened by one untimed call (``mode="burst"``, the default), one call each in turn
    (``"call"``), or alternating blocks of about ``chunk_seconds`` (default 0.05 s) without the untimed call
    (``"chunk"``). Same warm-up, stopping rule (the window counts both) and noisy re-measurement as
    :func:`time_callable`."""
    if mode not in INTERLEAVE_MODES:
        raise ValueError(f"unknown interleave mode {mode!r} (choose from {', '.join(INTERLEAVE_MODES)})")
    clock = clock or PerfCounterClock()
    cfg = config or TimingConfig()
    if chunk_seconds is None:
        chunk_seconds = BURST_SECONDS if mode == "burst" else 0.05
    t0 = time.perf_counter()
    best: tuple[Timing, Timing] | None = None
    attempt = 0
    for attempt in range(1, cfg.remeasure + 2):
        t, c = _interleaved_run(fn, ref, clock, cfg, mode, chunk_seconds)
        pair = (Timing(tuple(t), attempts=attempt), Timing(tuple(c), attempts=attempt))
        if best is None or pair[0].iqr_ratio < best[0].iqr_ratio:
            best = pair
        if pair[0].iqr_ratio <= cfg.noisy_iqr:
            best = pair
            break
    assert best is not None
    wall = time.perf_counter() - t0
    target = Timing(best[0].times, attempts=attempt, noisy=best[0].iqr_ratio > cfg.noisy_iqr, wall_seconds=wall)
    canary = Timing(best[1].times, attempts=attempt, noisy=best[1].iqr_ratio > cfg.noisy_iqr, wall_seconds=wall)
    return PairedTiming(target, canary, mode)
