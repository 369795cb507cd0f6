"""``profile`` and ``measure`` as library calls, each on its typed request
(:class:`~kdnas_bench.profiling.requests.ProfileRequest`, :class:`~kdnas_bench.profiling.requests.MeasureRequest`).
They sit above the profiler because adaptive profiling refits fold predictors between rounds and ``measure``'s speed
factor is the canary against this device's predictor. Both report through ``on_event(kind, data)`` (as
:func:`kdnas_bench.search.run_search` does) and return plain results; the command line only renders them.

    >>> result = run_profile(ProfileRequest(space="tests/data/tiny.toml", store="/tmp/store", samples=5))
    >>> result.summary["rows"], result.summary["rows_per_minute"]
    >>> run_measure(MeasureRequest(arch=parse_arch("tinybert-4l"), seq=128)).record["median_ms"]
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import KdnasError
from ..models import count_params, flops
from ..paths import default_store
from ..profiling.adaptive import AdaptiveConfig, run_adaptive
from ..profiling.canary import drift_summary
from ..profiling.device import environment
from ..profiling.jobs import memory_summary
from ..profiling.memory import METHOD
from ..profiling.requests import (
    EventFn,
    MeasureRequest,
    ProfileRequest,
    build_backend,
    load_space,
    memory_probe,
    no_events,
)
from ..profiling.runner import CampaignConfig, CampaignResult, Canary, Measurement, measure, run_campaign
from ..profiling.store import ProfileStore
from ..validate import check_writable
from .calibrate import reference_of
from .crossval import cross_validate
from .identity import speed_warning, warn_once
from .lookup import load_predictor


@dataclass(frozen=True)
class ProfileResult:
    """A profiling run: ``summary`` (what ``profile --json`` prints), the run's counts (``campaign``), the
    environment stamped on its rows (``env``) and whether it was adaptive."""

    summary: dict[str, Any]
    campaign: CampaignResult
    env: dict[str, Any]
    adaptive: bool


def run_profile(req: ProfileRequest, on_event: EventFn | None = None) -> ProfileResult:
    """Measure sampled students of ``req.space`` on this device into the profile store, resumably.

    Events: ``start`` (``env``, ``backend``, ``threads``, ``store``, ``space``, ``space_size``, ``sampler``,
    ``seed``, ``mode``, ``canary``, ``memory``, ``total``: the rows asked for, 0 when open) once everything is set
    up, then ``progress`` (``result``: the :class:`CampaignResult` so far, ``measurement``: the last one, or None)
    as rows are measured. Bad input raises a one-line :class:`KdnasError` before any timing."""
    emit = on_event or no_events
    space = load_space(req.space).restrict_shapes(list(req.seqs) if req.seqs else None,
                                                  list(req.batches) if req.batches else None)
    timing = req.timing.config()
    if req.adaptive:
        acfg = AdaptiveConfig(minutes=req.minutes, target=req.target, samples=req.samples, sampler=req.sampler,
                              seed=req.seed, shapes_per_arch=req.shapes_per_arch, timing=timing)
    else:
        ccfg = CampaignConfig(samples=req.rows_wanted, sampler=req.sampler, seed=req.seed,
                              shapes_per_arch=req.shapes_per_arch, timing=timing)
    bk = build_backend(req.backend, req.threads, req.onnx_cache, space)
    env = environment(bk.name, req.threads)
    store_path = check_writable("--store", Path(req.store) if req.store else default_store(writable=True))
    dataset = ProfileStore(store_path).dataset(env["device_id"], bk.name, req.threads)
    can = Canary(build_backend(req.backend, req.threads, req.onnx_cache), req.canary) if req.canary != "none" else None
    probe = memory_probe(req.backend, req.threads, req.onnx_cache, req.memory, space)
    emit("start", {"env": env, "backend": bk.name, "threads": req.threads, "store": str(dataset.path),
                   "space": space.name, "space_size": space.size, "sampler": req.sampler, "seed": req.seed,
                   "mode": req.mode_text(), "canary": req.canary, "memory": probe is not None,
                   "total": req.rows_wanted})
    started = time.perf_counter()

    def progress(res: CampaignResult, m: Measurement | None) -> None:
        emit("progress", {"result": res, "measurement": m})

    if req.adaptive:
        result = run_adaptive(space, dataset, bk, acfg, cross_validate=cross_validate, progress=progress, canary=can,
                              memory=probe)
    else:
        result = run_campaign(space, dataset, bk, ccfg, progress=progress, canary=can, memory=probe)
    elapsed = time.perf_counter() - started
    summary = {
        "device_id": env["device_id"], "backend": bk.name, "threads": req.threads, "store": str(dataset.path),
        "rows_before": result.rows_before, "rows": result.rows_after, "measured": result.measured,
        "failed": result.failed, "noisy": result.noisy, "median_cv": result.median_cv,
        "seconds": elapsed, "rows_per_minute": 60 * result.measured / elapsed if result.measured else 0.0,
        "exhausted": result.exhausted, "canary": req.canary, "drift_flagged_now": result.flagged,
        "drift": drift_summary(dataset.read().query("status == 'ok'")),
        "adaptive": req.adaptive, "stopped_by": result.stopped_by, "curve": result.curve if req.adaptive else None,
        "memory": memory_summary(dataset.read()) if probe else None,
    }
    return ProfileResult(summary, result, env, req.adaptive)


def speed_fields(canary_ms: float | None, median_ms: float, device_id: str, backend: str, threads: int,
                 predictors_dir: str | Path | None) -> dict[str, Any]:
    """``canary_ms`` and, when this device has a canary-normalised predictor, ``speed_factor`` (canary over its
    reference), ``speed_reference_ms`` and ``at_reference_ms`` (the median at the reference speed)."""
    if canary_ms is None:
        return {}
    try:
        pred = load_predictor(device_id, backend, threads, root=Path(predictors_dir) if predictors_dir else None)
        ref = reference_of(pred.meta, "its predictor")
    except KdnasError as exc:
        return {"canary_ms": canary_ms, "speed_factor": None, "speed_note": f"no speed factor: {exc}"}
    factor = canary_ms / ref
    warn_once(pred.key, "speed", speed_warning(pred.key, pred.meta, factor))
    return {"canary_ms": canary_ms, "speed_factor": factor, "speed_reference_ms": ref,
            "at_reference_ms": median_ms / factor}


@dataclass(frozen=True)
class MeasureResult:
    """One measurement: ``record`` (what ``measure --json`` prints), the raw ``measurement`` and the ``env``."""

    record: dict[str, Any]
    measurement: Measurement
    env: dict[str, Any]


def run_measure(req: MeasureRequest, on_event: EventFn | None = None) -> MeasureResult:
    """Measure ``req.arch`` at ``req.shape`` on this device, now (with the canary in the same seconds for the speed
    factor, and the peak memory with ``req.memory``). A failed measurement is a one-line :class:`KdnasError`.
    Events: ``start`` (``backend``, ``device_id``) before the timing."""
    emit = on_event or no_events
    bk = build_backend(req.backend, req.threads, req.onnx_cache)
    env = environment(bk.name, req.threads)
    probe = memory_probe(req.backend, req.threads, req.onnx_cache, True) if req.memory else None
    can = Canary(build_backend(req.backend, req.threads, req.onnx_cache)) if req.speed_factor else None
    emit("start", {"backend": bk.name, "device_id": env["device_id"]})
    m = measure(bk, req.arch, req.shape, req.timing.config(), canary=can, memory=probe)
    for done in (x for x in (bk, can, probe) if x is not None):
        done.close()
    if m.timing is None:
        raise KdnasError(f"measuring {req.arch} at {req.batch}x{req.seq} on {bk.name} failed: {m.error}")
    record: dict[str, Any] = {
        "arch": req.arch.to_dict(), "seq": req.seq, "batch": req.batch, "backend": bk.name, "threads": req.threads,
        "device_id": env["device_id"], **m.timing.stats(), "params": count_params(req.arch),
        "flops": flops(req.arch, req.shape).total, "load_before": m.load_before, "load_after": m.load_after,
        **speed_fields(m.canary_ms, m.timing.median_ms, env["device_id"], bk.name, req.threads, req.predictors),
    }
    if req.memory:
        record |= {**(m.memory.to_row() if m.memory else {}), "memory_error": m.memory_error,
                   "memory_method": METHOD if m.memory else None}
    return MeasureResult(record, m, env)
