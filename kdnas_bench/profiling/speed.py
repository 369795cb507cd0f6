"""The machine's speed now: the canary timed for a few seconds, in bursts, as the profiler times it.

Each burst is opened by one untimed call and then timed back to back (the profiler's ``burst`` protocol,
:mod:`.timing`), so the canary time now is comparable with the canary times stored beside the profile rows.
The burst medians' spread is the factor's uncertainty (:mod:`kdnas_bench.predictors.calibrate`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..errors import KdnasError
from .backends import make_backend
from .canary import CANARY_ARCH, CANARY_SHAPE
from .timing import Clock, PerfCounterClock

SPEED_SECONDS = 3.0  # default timed seconds of `--speed now`
SPEED_BURSTS = 6
WARMUP = 5


@dataclass(frozen=True)
class CanaryNow:
    """The canary's median (ms) over the bursts, each burst's median, and when and for how long it was timed."""

    canary_ms: float
    burst_ms: tuple[float, ...]
    seconds: float
    measured_at: str
    backend: str
    threads: int

    def to_dict(self) -> dict[str, Any]:
        return {"canary_ms": self.canary_ms, "burst_ms": list(self.burst_ms), "seconds": self.seconds,
                "measured_at": self.measured_at, "backend": self.backend, "threads": self.threads}


def time_bursts(fn: Callable[[], object], clock: Clock, seconds: float, bursts: int) -> list[list[float]]:
    """``bursts`` bursts of about ``seconds / bursts`` timed seconds of ``fn`` each (at least 3 calls), each
    opened by one untimed call; the durations measured by ``clock``, so a scripted clock drives it exactly."""
    if not (seconds > 0 and bursts >= 1):
        raise KdnasError(f"need seconds > 0 and bursts >= 1, got {seconds}, {bursts}")
    per_burst = seconds / bursts
    out: list[list[float]] = []
    for _ in range(bursts):
        fn()
        times: list[float] = []
        while len(times) < 3 or sum(times) < per_burst:
            times.extend(clock.time_calls(fn, 1))
        out.append(times)
    return out


def canary_now(backend: str, threads: int, *, seconds: float = SPEED_SECONDS, bursts: int = SPEED_BURSTS,
               backend_obj: Any = None) -> CanaryNow:
    """Time the canary on ``backend`` with ``threads`` for about ``seconds`` (``backend_obj``: an already
    built backend, e.g. a scripted one in tests)."""
    bk = make_backend(backend, threads) if backend_obj is None else backend_obj
    started = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    try:
        handle = bk.load(CANARY_ARCH, CANARY_SHAPE)
        bk.sync()
        for _ in range(WARMUP):
            bk.run(handle)
        timed = time_bursts(lambda: bk.run(handle), bk.clock() if hasattr(bk, "clock") else PerfCounterClock(),
                            seconds, bursts)
    finally:
        if backend_obj is None:
            bk.close()
    medians = [float(np.median(b)) * 1e3 for b in timed]
    return CanaryNow(float(np.median(medians)), tuple(medians), time.perf_counter() - t0, started, backend, threads)
