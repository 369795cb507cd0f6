"""The store-side measuring verbs as library calls, each on its typed request (:mod:`.requests`):
:func:`show_space` (``space show``), :func:`list_devices` (``devices``) and :func:`run_remeasure` (``remeasure``,
the device's noise floor, or with ``memory_only`` the memory of stored rows measured again). They report through
``on_event(kind, data)`` (as :func:`kdnas_bench.search.run_search` does) and return plain results; the command
line only renders them. ``profile`` and ``measure`` are in :mod:`kdnas_bench.predictors.profile_jobs` (adaptive
profiling refits predictors; ``measure``'s speed factor reads this device's predictor).

    >>> devices = list_devices(DevicesRequest(store="profiles"))           # one dict per dataset
    >>> floor = run_remeasure(RemeasureRequest(backend="torch", samples=20)).doc   # ``_floor.json``
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import KdnasError
from ..paths import default_store
from ..space import SearchSpace
from ..validate import check_writable
from .canary import drift_summary
from .device import environment
from .floor import remeasure
from .memory_update import MemoryUpdate, remeasure_memory
from .requests import (
    DevicesRequest,
    EventFn,
    RemeasureRequest,
    SpaceShowRequest,
    build_backend,
    load_space,
    memory_probe,
    no_events,
)
from .runner import Canary
from .store import Dataset, ProfileStore

SPACE_DIMS = ("layers", "hidden", "heads", "ffn", "seq", "batch")


@dataclass(frozen=True)
class SpaceView:
    """A search space (``space``) and its values (``info``: :meth:`SearchSpace.to_dict`)."""

    space: SearchSpace
    info: dict[str, Any]

    @property
    def configs(self) -> int:
        return self.space.size * len(self.space.shapes)


def show_space(req: SpaceShowRequest) -> SpaceView:
    space = load_space(req.space)
    return SpaceView(space, space.to_dict())


def memory_summary(df: Any) -> dict[str, Any] | None:
    """The memory columns of a dataset's ok rows (None when none carries memory)."""
    ok = df[(df["status"] == "ok") & df["peak_rss_bytes"].notna()]
    if not len(ok):
        return None
    return {"rows": len(ok), "peak_mb_min": float(ok["peak_rss_bytes"].min()) / 2**20,
            "peak_mb_max": float(ok["peak_rss_bytes"].max()) / 2**20, "errors": int(df["memory_error"].notna().sum()),
            "methods": {int(k): int(v) for k, v in ok["memory_method"].value_counts().items()}}


def dataset_summary(d: Dataset) -> dict[str, Any]:
    """One profile dataset as ``kdnas-bench devices --json`` lists it."""
    df = d.read()
    ok = df[df["status"] == "ok"] if len(df) else df
    env = json.loads(df["env"].iloc[-1]) if len(df) else None
    return {
        "device_id": d.key.device_id,
        "backend": d.key.backend,
        "threads": d.key.threads,
        "rows": len(ok),
        "failed_rows": len(df) - len(ok),
        "noisy_rows": int(ok["noisy"].sum()) if len(ok) else 0,
        "median_cv": float(ok["cv"].median()) if len(ok) else None,
        "first_timestamp": df["timestamp"].min().isoformat() if len(df) else None,
        "last_timestamp": df["timestamp"].max().isoformat() if len(df) else None,
        "environment": env,
        "path": str(d.path),
        "drift": drift_summary(ok) if len(ok) else None,
    }


def list_devices(req: DevicesRequest) -> list[dict[str, Any]]:
    """Every profile dataset of the store: :func:`dataset_summary` each."""
    return [dataset_summary(d) for d in ProfileStore(Path(req.store) if req.store else default_store()).datasets()]


@dataclass(frozen=True)
class RemeasureResult:
    """``doc``: the ``_floor.json`` document written (latency), or the memory update (``memory_only``);
    ``dataset``: the profile dataset measured again."""

    dataset: Dataset
    doc: dict[str, Any] | None = None
    memory: MemoryUpdate | None = None

    def to_json(self) -> dict[str, Any]:
        """What ``remeasure --json`` prints: the floor without its per-row lists, or the memory update."""
        if self.memory is not None:
            return {**self.memory.to_dict(), "store": str(self.dataset.path)}
        return {k: v for k, v in (self.doc or {}).items() if k not in ("remeasured", "fresh")}


def _existing(dataset: Dataset, device_id: str, backend: str, threads: int) -> Dataset:
    if not dataset.path.exists():
        raise KdnasError(f"no profile of this device ({device_id} {backend} t{threads}) in "
                         f"{dataset.path.parent.parent}; run `kdnas-bench profile` first")
    return dataset


def _stored_canary(dataset: Dataset) -> str:
    """The canary mode most of a dataset's rows were measured with (like with like; "burst" when unrecorded)."""
    modes = dataset.read().get("interleave")
    return str(modes.dropna().mode().iloc[0]) if modes is not None and modes.notna().any() else "burst"


def run_remeasure(req: RemeasureRequest, on_event: EventFn | None = None) -> RemeasureResult:
    """Measure stored rows of this device again, now, and write the dataset's ``_floor.json``; with
    ``req.memory_only``, their memory columns instead. Events: ``start`` (``stored``, ``fresh``: the counts to
    measure) before the latency work; with ``memory_only``, ``memory_start`` and ``memory_progress`` (``done``,
    ``total``)."""
    emit = on_event or no_events
    if req.memory_only:
        return _remeasure_memory(req, emit)
    model_space = load_space(req.space)  # its [model] section: the models the profile measured
    space = model_space if req.fresh_rows else None
    bk = build_backend(req.backend, req.threads, req.onnx_cache, model_space)
    env = environment(bk.name, req.threads)
    store = ProfileStore(Path(req.store) if req.store else default_store())
    dataset = _existing(store.dataset(env["device_id"], bk.name, req.threads), env["device_id"], bk.name, req.threads)
    canary = req.canary or _stored_canary(dataset)
    can = Canary(build_backend(req.backend, req.threads, req.onnx_cache), canary) if canary != "none" else None
    emit("start", {"stored": req.stored_rows, "fresh": req.fresh_rows, "dataset": str(dataset.path)})
    try:
        doc = remeasure(dataset, bk, samples=req.stored_rows, fresh=req.fresh_rows, space=space, canary=can,
                        seed=req.pick_seed)
    finally:
        emit("end", {})
    return RemeasureResult(dataset, doc=doc)


def _remeasure_memory(req: RemeasureRequest, emit: EventFn) -> RemeasureResult:
    model_space = load_space(req.space)  # the models the profile measured: the space's vocabulary and labels
    env = environment(req.backend, req.threads)
    store_path = check_writable("--store", Path(req.store) if req.store else default_store(writable=True))
    dataset = _existing(ProfileStore(store_path).dataset(env["device_id"], req.backend, req.threads),
                        env["device_id"], req.backend, req.threads)
    probe = memory_probe(req.backend, req.threads, req.onnx_cache, True, model_space)
    emit("memory_start", {"dataset": str(dataset.path)})
    try:
        try:
            doc = remeasure_memory(dataset, probe, include_unmeasured=req.include_unmeasured, limit=req.samples,
                                   progress=lambda n, total: emit("memory_progress", {"done": n, "total": total}))
        finally:
            emit("memory_end", {})
    finally:
        probe.close()
    return RemeasureResult(dataset, memory=doc)
