"""Measure one student's latency now, on this machine (the final check of a search, ``compare``, benchmarks)."""

from __future__ import annotations

from typing import Any

from ..space import Arch, Shape
from .timing import TimingConfig

# the timing of a one-off check: longer than a profile row's, since one number is reported from it
CHECK_TIMING = TimingConfig(warmup=5, min_calls=20, min_seconds=1.0, max_seconds=10.0)


def this_machine_is(device_id: str, backend: str) -> bool:
    """Whether this machine is ``device_id`` (its GPU counts only for a GPU backend)."""
    from .backends import is_gpu
    from .device import hardware

    return hardware(with_gpu=is_gpu(backend)).device_id == device_id


def measure_latency(arch: Arch, shape: Shape, backend: str, threads: int, *,
                    reference_ms: float | None = None) -> dict[str, Any]:
    """``measured_latency_ms`` (median), ``measured_p90_ms`` and ``measured_cv`` of ``arch`` at ``shape``, or
    ``measured_latency_ms: None`` and ``measure_error`` when it failed. With ``reference_ms`` (a predictor's
    reference canary time) the config is timed in bursts with the canary, as the profiler does, and the
    machine's speed in those seconds is reported beside it: ``measured_speed_factor`` (canary / reference)
    and ``measured_at_reference_ms`` (the median at the predictor's reference speed)."""
    from .backends import make_backend
    from .runner import Canary, measure

    bk = make_backend(backend, threads)
    canary = Canary(make_backend(backend, threads)) if reference_ms else None
    try:
        m = measure(bk, arch, shape, CHECK_TIMING, canary)
    finally:
        bk.close()
        if canary is not None:
            canary.close()
    if m.timing is None:
        return {"measured_latency_ms": None, "measure_error": m.error}
    out: dict[str, Any] = {"measured_latency_ms": m.timing.median_ms, "measured_p90_ms": m.timing.p90_ms,
                           "measured_cv": m.timing.cv}
    if reference_ms and m.canary_ms:
        factor = m.canary_ms / reference_ms
        out |= {"measured_canary_ms": m.canary_ms, "measured_speed_factor": factor,
                "measured_at_reference_ms": m.timing.median_ms / factor}
    return out


def measure_memory(arch: Arch, shape: Shape, backend: str, threads: int) -> dict[str, Any]:
    """``measured_peak_mb`` (peak resident memory of a forward pass over the bare runtime, in a fresh child
    process, :mod:`.memory`) and ``weight_mb``, or ``measured_peak_mb: None`` and ``memory_error``."""
    from ..errors import KdnasError
    from .memory import METHOD, MemoryProbe, unsupported

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
