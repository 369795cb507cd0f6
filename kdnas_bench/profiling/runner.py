"""Measure one config (interleaved with the canary), or run a resumable profiling campaign into the store."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import pandas as pd

from ..errors import KdnasError
from ..space import Arch, SearchSpace, Shape, iter_configs
from . import canary as canary_mod
from .backends import Backend
from .device import environment, load_average
from .memory import METHOD as MEMORY_METHOD
from .memory import MemoryProbe, MemoryResult
from .store import Dataset, row_id
from .timing import INTERLEAVE_MODES, PairedTiming, Timing, TimingConfig, time_callable, time_interleaved


@dataclass
class Canary:
    """The canary config loaded on its own backend instance (so the profiled model can change under
    it), timed interleaved with every config: in back-to-back bursts (``mode="burst"``, see :mod:`.timing`),
    call by call (``"call"``, the older protocol) or in short chunks."""

    backend: Backend
    mode: str = "burst"
    handle: Any = None
    arch: Arch = canary_mod.CANARY_ARCH
    shape: Shape = canary_mod.CANARY_SHAPE
    burst_seconds: float | None = None  # seconds per burst / chunk (None: the mode's default)

    def __post_init__(self) -> None:
        if self.mode not in INTERLEAVE_MODES:
            raise KdnasError(f"unknown canary interleave mode {self.mode!r} (choose from {', '.join(INTERLEAVE_MODES)})")

    def run(self) -> object:
        if self.handle is None:
            self.handle = self.backend.load(self.arch, self.shape)
            self.backend.sync()
        return self.backend.run(self.handle)

    def close(self) -> None:
        self.handle = None
        self.backend.close()


@dataclass(frozen=True)
class Measurement:
    arch: Arch
    shape: Shape
    timing: Timing | None
    error: str | None
    load_before: float
    load_after: float
    paired: PairedTiming | None = None  # with the canary
    memory: MemoryResult | None = None  # peak resident memory, from a fresh child process
    memory_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.timing is not None

    @property
    def canary_ms(self) -> float | None:
        return self.paired.canary.median_ms if self.paired is not None else None


def measure(backend: Backend, arch: Arch, shape: Shape, config: TimingConfig | None = None,
            canary: Canary | None = None, memory: MemoryProbe | None = None) -> Measurement:
    """Measure ``arch`` at ``shape`` on ``backend`` (interleaved with ``canary`` when given; then its peak
    memory with ``memory``, outside the timed window). Any failure (OOM, export error) becomes an error
    string on the measurement instead of an exception."""
    before = load_average()
    paired = None
    try:
        handle = backend.load(arch, shape)
        backend.sync()
        if canary is not None:
            canary.run()  # loaded (and warm) before the row's window starts
            paired = time_interleaved(lambda: backend.run(handle), canary.run, backend.clock(), config,
                                      mode=canary.mode, chunk_seconds=canary.burst_seconds)
            timing: Timing | None = paired.target
        else:
            timing = time_callable(lambda: backend.run(handle), backend.clock(), config)
        error = None
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        timing, paired, error = None, None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:500]
        backend.close()  # drop a half-built model / session (and CUDA memory after an OOM)
    after = load_average()
    mem, mem_error = None, None
    if memory is not None and timing is not None:
        try:
            mem = memory.measure(arch, shape)
        except KdnasError as exc:
            mem_error = str(exc)[:500]
    return Measurement(arch, shape, timing, error, before, after, paired, mem, mem_error)


def to_row(
    m: Measurement,
    env: dict[str, Any],
    config: TimingConfig,
    *,
    sampler: str | None = None,
    seed: int | None = None,
    sample_index: int | None = None,
    round_index: int | None = None,
) -> dict[str, Any]:
    a, s = m.arch, m.shape
    row: dict[str, Any] = {
        "row_id": row_id(env["device_id"], env["backend"], env["threads"], a.layers, a.hidden, a.heads, a.ffn, s.batch, s.seq),
        "device_id": env["device_id"],
        "backend": env["backend"],
        "threads": env["threads"],
        **a.to_dict(),
        "batch": s.batch,
        "seq": s.seq,
        "status": "ok" if m.ok else "failed",
        "error": m.error,
        "warmup": config.warmup,
        "min_calls": config.min_calls,
        "min_seconds": config.min_seconds,
        "load_before": m.load_before,
        "load_after": m.load_after,
        "timestamp": datetime.now(UTC),
        "sampler": sampler,
        "seed": seed,
        "sample_index": sample_index,
        "env_id": env["env_id"],
        "env": json.dumps(env, sort_keys=True),
        "round": round_index,
        "wall_seconds": m.timing.wall_seconds if m.timing is not None else None,
    }
    if m.timing is not None:
        row.update(m.timing.stats())
        row["times_ms"] = [t * 1e3 for t in m.timing.times]
    if m.paired is not None:
        c = m.paired.canary
        row.update({"canary_ms": c.median_ms, "canary_n": c.n, "canary_iqr_ratio": c.iqr_ratio,
                    "canary_shift": m.paired.canary_shift, "ratio": m.paired.ratio, "interleave": m.paired.mode,
                    "drift_flag": canary_mod.flag(m.paired.canary_shift, c.iqr_ratio)})
    if m.memory is not None:
        row.update(m.memory.to_row())
        row["memory_method"] = MEMORY_METHOD
    row["memory_error"] = m.memory_error
    return row


@dataclass(frozen=True)
class CampaignConfig:
    samples: int
    sampler: str = "sobol"
    seed: int = 0
    shapes_per_arch: int = 4
    timing: TimingConfig = field(default_factory=TimingConfig)
    max_failure_streak: int = 25

    def __post_init__(self) -> None:
        if self.samples <= 0:
            raise KdnasError(f"--samples must be positive, got {self.samples}")
        if self.shapes_per_arch <= 0:
            raise KdnasError(f"shapes per arch must be positive, got {self.shapes_per_arch}")


@dataclass
class CampaignResult:
    rows_before: int
    rows_after: int
    measured: int = 0
    failed: int = 0
    noisy: int = 0
    flagged: int = 0
    cvs: list[float] = field(default_factory=list)
    canary_ms: list[float] = field(default_factory=list)
    exhausted: bool = False
    stopped_by: str | None = None  # adaptive profiling: "minutes", "target", "samples" or "exhausted"
    curve: list[dict[str, Any]] = field(default_factory=list)

    @property
    def median_cv(self) -> float:
        return statistics.median(self.cvs) if self.cvs else float("nan")

    @property
    def canary_drift(self) -> float | None:
        """The last row's canary time relative to the median canary of this run (1.0: reference speed)."""
        if not self.canary_ms:
            return None
        return self.canary_ms[-1] / statistics.median(self.canary_ms)


ProgressFn = Callable[[CampaignResult, Measurement | None], None]


class RowSink(Protocol):
    """Where a session's rows go: a :class:`Dataset` open for writing (or a read-only view of one)."""

    def read(self) -> pd.DataFrame: ...

    def append(self, rows: list[dict[str, Any]]) -> None: ...


class Session:
    """Measures configs into a dataset held open for writing: skips stored configs, appends rows per
    arch (a SIGKILL loses at most the arch in flight), counts, and stops after a streak of failures."""

    def __init__(self, dataset: RowSink, backend: Backend, timing: TimingConfig, *, canary: Canary | None = None,
                 sampler: str | None = None, seed: int | None = None, max_failure_streak: int = 25,
                 progress: ProgressFn | None = None, memory: MemoryProbe | None = None) -> None:
        self.dataset, self.backend, self.timing, self.canary = dataset, backend, timing, canary
        self.memory = memory
        self.sampler, self.seed, self.max_failure_streak, self.progress = sampler, seed, max_failure_streak, progress
        self.env = environment(backend.name, backend.threads)
        self.existing = dataset.read()
        self.done: set[str] = set(self.existing["row_id"]) if len(self.existing) else set()
        ok = int((self.existing["status"] == "ok").sum()) if len(self.existing) else 0
        self.result = CampaignResult(rows_before=ok, rows_after=ok)
        self._buffer: list[dict[str, Any]] = []
        self._new: list[dict[str, Any]] = []
        self._current: Arch | None = None
        self._streak = 0
        if progress:
            progress(self.result, None)

    def row_id(self, arch: Arch, shape: Shape) -> str:
        e = self.env
        return row_id(e["device_id"], e["backend"], e["threads"], arch.layers, arch.hidden, arch.heads, arch.ffn,
                      shape.batch, shape.seq)

    def has(self, arch: Arch, shape: Shape) -> bool:
        return self.row_id(arch, shape) in self.done

    def measure(self, arch: Arch, shape: Shape, *, index: int | None = None, round_index: int | None = None
                ) -> Measurement:
        if arch != self._current:
            self.flush()
        self._current = arch
        m = measure(self.backend, arch, shape, self.timing, self.canary, self.memory)
        row = to_row(m, self.env, self.timing, sampler=self.sampler, seed=self.seed, sample_index=index,
                     round_index=round_index)
        self._buffer.append(row)
        self._new.append(row)
        self.done.add(row["row_id"])
        res = self.result
        res.measured += 1
        if m.timing is not None:
            res.rows_after += 1
            res.cvs.append(m.timing.cv)
            res.noisy += int(m.timing.noisy)
            res.flagged += int(bool(row.get("drift_flag")))
            if m.canary_ms is not None:
                res.canary_ms.append(m.canary_ms)
            self._streak = 0
        else:
            res.failed += 1
            self._streak += 1
            if self._streak >= self.max_failure_streak:
                self.flush()
                raise KdnasError(f"{self._streak} configs in a row failed on {self.backend.name}; last error: {m.error}")
        if self.progress:
            self.progress(res, m)
        return m

    def frame(self) -> pd.DataFrame:
        """The stored rows plus the rows measured since (ok and failed)."""
        if not self._new:
            return self.existing
        new = pd.DataFrame(self._new)
        return pd.concat([self.existing, new], ignore_index=True) if len(self.existing) else new

    def flush(self) -> None:
        self.dataset.append(self._buffer)
        self._buffer = []

    def close(self) -> None:
        self.flush()  # completed rows only; the config in flight is re-measured on resume
        self.backend.close()
        if self.canary is not None:
            self.canary.close()
        if self.memory is not None:
            self.memory.close()


def run_campaign(
    space: SearchSpace,
    dataset: Dataset,
    backend: Backend,
    config: CampaignConfig,
    progress: ProgressFn | None = None,
    canary: Canary | None = None,
    memory: MemoryProbe | None = None,
) -> CampaignResult:
    """Measure configs from the seeded stream until the dataset holds ``config.samples`` ok rows.

    Rerunning the same command skips every config already stored, ok or failed."""
    with dataset.writer():
        session = Session(dataset, backend, config.timing, canary=canary, sampler=config.sampler, seed=config.seed,
                          max_failure_streak=config.max_failure_streak, progress=progress, memory=memory)
        result = session.result
        skipped = 0
        limit = space.size * len(space.shapes)
        try:
            for index, arch, shape in iter_configs(
                space, sampler=config.sampler, seed=config.seed, shapes_per_arch=config.shapes_per_arch
            ):
                if result.rows_after >= config.samples:
                    break
                if session.has(arch, shape):
                    skipped += 1
                    if skipped > 20 * limit + 10 * config.samples:
                        result.exhausted = True
                        break
                    continue
                session.measure(arch, shape, index=index)
        finally:
            session.close()
        dataset.compact()
    return result
