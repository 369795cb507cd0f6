"""Measure one config, or run a resumable profiling campaign into the store."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..errors import KdnasError
from ..space import Arch, SearchSpace, Shape, iter_configs
from .backends import Backend
from .device import environment, load_average
from .store import Dataset, row_id
from .timing import Timing, TimingConfig, time_callable


@dataclass(frozen=True)
class Measurement:
    arch: Arch
    shape: Shape
    timing: Timing | None
    error: str | None
    load_before: float
    load_after: float

    @property
    def ok(self) -> bool:
        return self.timing is not None


def measure(backend: Backend, arch: Arch, shape: Shape, config: TimingConfig | None = None) -> Measurement:
    """Measure ``arch`` at ``shape`` on ``backend``. Any failure (OOM, export error) becomes an error
    string on the measurement instead of an exception."""
    before = load_average()
    try:
        handle = backend.load(arch, shape)
        backend.sync()
        timing = time_callable(lambda: backend.run(handle), backend.clock(), config)
        error = None
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        timing, error = None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:500]
        backend.close()  # drop a half-built model / session (and CUDA memory after an OOM)
    return Measurement(arch, shape, timing, error, before, load_average())


def to_row(
    m: Measurement,
    env: dict[str, Any],
    config: TimingConfig,
    *,
    sampler: str | None = None,
    seed: int | None = None,
    sample_index: int | None = None,
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
    }
    if m.timing is not None:
        row.update(m.timing.stats())
        row["times_ms"] = [t * 1e3 for t in m.timing.times]
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
    cvs: list[float] = field(default_factory=list)
    exhausted: bool = False

    @property
    def median_cv(self) -> float:
        return statistics.median(self.cvs) if self.cvs else float("nan")


ProgressFn = Callable[[CampaignResult, Measurement | None], None]


def run_campaign(
    space: SearchSpace,
    dataset: Dataset,
    backend: Backend,
    config: CampaignConfig,
    progress: ProgressFn | None = None,
) -> CampaignResult:
    """Measure configs from the seeded stream until the dataset holds ``config.samples`` ok rows.

    Rows are appended per arch (a handful at a time), so a SIGKILL loses at most the arch in flight;
    rerunning the same command skips every config already stored, ok or failed."""
    env = environment(backend.name, backend.threads)
    with dataset.writer():
        existing = dataset.read()
        done = set(existing["row_id"]) if len(existing) else set()
        ok_rows = int((existing["status"] == "ok").sum()) if len(existing) else 0
        result = CampaignResult(rows_before=ok_rows, rows_after=ok_rows)
        if progress:
            progress(result, None)
        buffer: list[dict[str, Any]] = []
        current: Arch | None = None
        streak = skipped = 0
        limit = space.size * len(space.shapes)
        try:
            for index, arch, shape in iter_configs(
                space, sampler=config.sampler, seed=config.seed, shapes_per_arch=config.shapes_per_arch
            ):
                if result.rows_after >= config.samples:
                    break
                rid = row_id(env["device_id"], env["backend"], env["threads"], arch.layers, arch.hidden, arch.heads, arch.ffn,
                             shape.batch, shape.seq)
                if rid in done:
                    skipped += 1
                    if skipped > 20 * limit + 10 * config.samples:
                        result.exhausted = True
                        break
                    continue
                if arch != current and buffer:
                    dataset.append(buffer)
                    buffer = []
                current = arch
                m = measure(backend, arch, shape, config.timing)
                buffer.append(to_row(m, env, config.timing, sampler=config.sampler, seed=config.seed, sample_index=index))
                done.add(rid)
                result.measured += 1
                if m.timing is not None:
                    result.rows_after += 1
                    result.cvs.append(m.timing.cv)
                    result.noisy += int(m.timing.noisy)
                    streak = 0
                else:
                    result.failed += 1
                    streak += 1
                    if streak >= config.max_failure_streak:
                        dataset.append(buffer)
                        buffer = []
                        raise KdnasError(f"{streak} configs in a row failed on {backend.name}; last error: {m.error}")
                if progress:
                    progress(result, m)
        finally:
            dataset.append(buffer)  # completed rows only; the config in flight is re-measured on resume
            backend.close()
        dataset.compact()
    return result
