"""Measure one student's latency now, on this machine (the final check of a search, ``compare``, benchmarks)."""

from __future__ import annotations

from typing import Any

from ..errors import KdnasError
from ..space import Arch, Shape
from . import device as device_mod
from .backends import is_gpu, make_backend
from .memory import METHOD, MemoryProbe, unsupported
from .timing import TimingConfig
from .verdict import measure_until_quiet

# the timing of a one-off check: longer than a profile row's, since one number is reported from it
CHECK_TIMING = TimingConfig(warmup=5, min_calls=20, min_seconds=1.0, max_seconds=10.0)


def this_machine_is(device_id: str, backend: str) -> bool:
    """Whether this machine is ``device_id`` (its GPU counts only for a GPU backend)."""
    return device_mod.hardware(with_gpu=is_gpu(backend)).device_id == device_id


def measure_latency(arch: Arch, shape: Shape, backend: str, threads: int, *,
                    reference_ms: float | None = None, until_quiet: bool = False,
                    canary_arch: Arch | None = None) -> dict[str, Any]:
    """``measured_latency_ms`` (median), ``measured_p90_ms``, ``measured_cv`` and ``measured_iqr_ratio`` of ``arch``
    at ``shape``, or ``measured_latency_ms: None`` and ``measure_error`` when it failed. With ``reference_ms`` (a
    predictor's reference canary time) the config is timed in bursts with the canary, as the profiler does, and
    the machine's speed in those seconds is reported beside it: ``measured_speed_factor`` (canary / reference)
    and ``measured_at_reference_ms`` (the median at the predictor's reference speed). ``until_quiet``: measured in
    rounds until one is quiet or a cap is hit (:func:`.verdict.measure_until_quiet`: the budget check of a search),
    with ``measured_rounds`` and ``measured_quiet`` added. ``canary_arch``: interleave with this model at ``shape``
    instead of the canary (e.g. the teacher, with its predicted latency as ``reference_ms``: a model of the same
    family slows down as the candidate does, where the small canary need not)."""
    from .runner import Canary  # noqa: PLC0415  lazy: pandas, pyarrow (via profiling.runner)

    bk = make_backend(backend, threads)
    canary = None
    if reference_ms:
        canary = (Canary(make_backend(backend, threads)) if canary_arch is None else
                  Canary(make_backend(backend, threads), arch=canary_arch, shape=shape))
    try:
        once = _Once(bk, canary, arch, shape, reference_ms)
        return measure_until_quiet(once) if until_quiet else once()
    finally:
        bk.close()
        if canary is not None:
            canary.close()


class _Once:
    """One measurement of ``arch`` (interleaved with ``canary`` when given), as :func:`measure_latency`'s fields."""

    def __init__(self, bk: Any, canary: Any, arch: Arch, shape: Shape, reference_ms: float | None) -> None:
        self.bk, self.canary, self.arch, self.shape, self.reference_ms = bk, canary, arch, shape, reference_ms

    def __call__(self) -> dict[str, Any]:
        from .runner import measure  # noqa: PLC0415  lazy: pandas, pyarrow (via profiling.runner)

        m = measure(self.bk, self.arch, self.shape, CHECK_TIMING, self.canary)
        if m.timing is None:
            return {"measured_latency_ms": None, "measure_error": m.error}
        out: dict[str, Any] = {"measured_latency_ms": m.timing.median_ms, "measured_p90_ms": m.timing.p90_ms,
                               "measured_cv": m.timing.cv, "measured_iqr_ratio": m.timing.iqr_ratio}
        if self.reference_ms and m.canary_ms:
            factor = m.canary_ms / self.reference_ms
            out |= {"measured_canary_ms": m.canary_ms, "measured_speed_factor": factor,
                    "measured_at_reference_ms": m.timing.median_ms / factor}
        return out


def measure_memory(arch: Arch, shape: Shape, backend: str, threads: int) -> dict[str, Any]:
    """``measured_peak_mb`` (peak resident memory of a forward pass over the bare runtime, in a fresh child
    process, :mod:`.memory`) and ``weight_mb``, or ``measured_peak_mb: None`` and ``memory_error``."""
    reason = unsupported()
    if reason:
        return {"measured_peak_mb": None, "memory_error": reason}
    probe = MemoryProbe(backend, threads)
    try:
        mem = probe.measure(arch, shape)
        return {"measured_peak_mb": mem.peak_mb, "weight_mb": mem.weight_bytes / 2**20, "memory_method": METHOD}
    except KdnasError as exc:
        return {"measured_peak_mb": None, "memory_error": str(exc)}
    finally:
        probe.close()
