"""Adaptive profiling (``kdnas-bench profile --minutes N [--target 0.95]``): measure in rounds until the
predictor is good enough or the time is up.

Round 0 measures a space-filling (Sobol) set of archs. After each round the rows are drift-normalised
(:mod:`.canary`), a predictor is cross-validated with folds grouped by arch (so the estimate is for
*unseen archs*), and the next round measures the archs where the fold models disagree most (active
learning; a share of each round is drawn at random so the estimate stays honest). Each round appends a
point to the rows-vs-accuracy curve in the dataset's ``_adaptive.json``.

Resumable like any campaign: rows are stored per arch, the curve after each round, and a rerun
continues from the stored rows (the round number from the rows' ``round`` column). ``minutes`` is the
budget of *this* run; ``samples`` caps the ok rows of the dataset.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from ..errors import KdnasError
from ..space import Arch, SearchSpace, Shape, iter_configs, sample_archs
from .backends import Backend
from .canary import protocols
from .memory import MemoryProbe
from .runner import CampaignResult, Canary, ProgressFn, Session
from .store import Dataset
from .timing import TimingConfig

CURVE_FILE = "_adaptive.json"
MIN_ROWS_FOR_TARGET = 40


@dataclass(frozen=True)
class AdaptiveConfig:
    minutes: float | None = None
    target: float | None = None  # grouped-CV share of rows within ±10 % to stop at
    samples: int | None = None  # cap on the dataset's ok rows
    sampler: str = "sobol"
    seed: int = 0
    shapes_per_arch: int = 4
    first_archs: int = 12
    round_archs: int = 8
    pool: int = 300
    explore: float = 0.25
    folds: int = 5
    timing: TimingConfig = field(default_factory=TimingConfig)
    max_failure_streak: int = 25

    def __post_init__(self) -> None:
        if self.minutes is None and self.target is None and self.samples is None:
            raise KdnasError("adaptive profiling needs --minutes, --target or --samples to know when to stop")
        if self.minutes is not None and not self.minutes > 0:
            raise KdnasError(f"--minutes must be positive, got {self.minutes}")
        if self.target is not None and not 0 < self.target <= 1:
            raise KdnasError(f"--target is a share of configs within ±10 %, in (0, 1], got {self.target}")
        if self.samples is not None and self.samples <= 0:
            raise KdnasError(f"--samples must be positive, got {self.samples}")
        for name in ("shapes_per_arch", "first_archs", "round_archs", "pool"):
            if getattr(self, name) <= 0:
                raise KdnasError(f"{name.replace('_', ' ')} must be positive, got {getattr(self, name)}")
        if not 0 <= self.explore <= 1:
            raise KdnasError(f"explore must be in [0, 1], got {self.explore}")
        if self.folds < 2:
            raise KdnasError(f"folds must be at least 2, got {self.folds}")


def arch_key(df: pd.DataFrame) -> np.ndarray:
    return (df["layers"].astype(str) + "," + df["hidden"].astype(str) + "," + df["heads"].astype(str) + ","
            + df["ffn"].astype(str)).to_numpy()


def pick_next(space: SearchSpace, measured: set[Arch], models: list[Any], n: int, shapes_per_arch: int, pool: int,
              explore: float, seed: int) -> list[tuple[Arch, list[Shape]]]:
    """The next ``n`` archs, each with the ``shapes_per_arch`` shapes where the fold models disagree most:
    most of them the archs of a random pool with the largest disagreement, the rest drawn at random
    (all of them at random while there are too few rows for fold models)."""
    rng = np.random.default_rng(seed)
    cands = [a for a in dict.fromkeys(sample_archs(space, pool, sampler="uniform", seed=seed)) if a not in measured]
    if not cands:
        return []
    shapes = list(space.shapes)
    grid = pd.DataFrame([{**a.to_dict(), "seq": s.seq, "batch": s.batch} for a in cands for s in shapes])
    if models:
        logs = np.stack([np.log(m.predict(grid)) for m in models])  # (models, archs * shapes)
        spread = logs.std(axis=0).reshape(len(cands), len(shapes))
    else:
        spread, explore = np.zeros((len(cands), len(shapes))), 1.0
    k = min(shapes_per_arch, len(shapes))
    top_shapes = np.argsort(-spread, axis=1, kind="stable")[:, :k]
    score = np.take_along_axis(spread, top_shapes, axis=1).mean(axis=1)
    n_exploit = min(len(cands), round(n * (1 - explore)))
    order = list(np.argsort(-score, kind="stable"))
    chosen = order[:n_exploit]
    rest = order[n_exploit:]
    chosen += list(rng.permutation(rest)[: max(0, n - n_exploit)]) if rest else []
    out = []
    for i in chosen:
        picked = top_shapes[i] if i in order[:n_exploit] else rng.permutation(len(shapes))[:k]
        out.append((cands[i], [shapes[j] for j in sorted(picked)]))
    return out


def _curve_point(df: pd.DataFrame, round_index: int, m: dict[str, float] | None, run_started: str) -> dict[str, Any]:
    wall = pd.to_numeric(df["wall_seconds"], errors="coerce") if "wall_seconds" in df else pd.Series(dtype=float)
    return {
        "round": round_index,
        "rows": len(df),
        "archs": len(set(arch_key(df))),
        "profiling_seconds": float(wall.sum()) if len(wall) else None,
        "cv_grouped_by_arch": m,
        "run_started": run_started,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# (ok rows, folds, seed) -> (out-of-fold metrics, the fold models): a latency predictor cross-validated with folds
# grouped by arch; kdnas_bench.predictors.crossval.cross_validate (passed in: the predictors sit above profiling)
FoldFit = Callable[[pd.DataFrame, int, int], tuple[dict[str, float], list[Any]]]


def run_adaptive(space: SearchSpace, dataset: Dataset, backend: Backend, config: AdaptiveConfig, *,
                 cross_validate: FoldFit, progress: ProgressFn | None = None, canary: Canary | None = None,
                 now: Callable[[], float] = time.monotonic, memory: MemoryProbe | None = None) -> CampaignResult:
    """Profile in rounds until ``config.target``, ``config.minutes`` (this run) or ``config.samples``
    is reached; ``cross_validate`` fits the fold models whose disagreement picks each next round. ``now`` is the
    clock the time limit is checked against (scripted in the tests)."""
    deadline = now() + 60 * config.minutes if config.minutes is not None else float("inf")
    run_started = datetime.now(UTC).isoformat(timespec="seconds")
    with dataset.writer():
        session = Session(dataset, backend, config.timing, canary=canary, sampler=f"adaptive-{config.sampler}",
                          seed=config.seed, max_failure_streak=config.max_failure_streak, progress=progress,
                          memory=memory)
        result = session.result
        doc = dataset.read_json(CURVE_FILE) or {"curve": []}
        result.curve = doc["curve"]
        rounds = pd.to_numeric(session.existing["round"], errors="coerce") if len(session.existing) else pd.Series()
        round_index = int(rounds.max()) + 1 if rounds.notna().any() else 0

        def stop_reason() -> str | None:
            if now() >= deadline:
                return "minutes"
            if config.samples is not None and result.rows_after >= config.samples:
                return "samples"
            return None

        # a dataset re-profiled with another canary protocol (e.g. raw rows, then bursts) keeps its older rows, but
        # fit learns from the newest protocol only: the rounds count, and cross-validate, this run's protocol's rows
        mine = canary.mode if canary is not None else "none"

        def current(df: pd.DataFrame) -> pd.DataFrame:
            return df[protocols(df) == mine] if len(df) else df

        def ok_rows() -> pd.DataFrame:
            df = current(session.frame())
            return df[(df["status"] == "ok") & (df["median_ms"] > 0)].reset_index(drop=True)

        models: list[Any] = []
        recorded = [-1]  # rows at the last curve point

        def record() -> dict[str, float] | None:
            df = ok_rows()
            m = None
            if len(df) >= 10 and len(set(arch_key(df))) >= config.folds:
                m, fitted = cross_validate(df, config.folds, config.seed)
                models[:] = fitted
            if len(df) != recorded[0]:
                recorded[0] = len(df)
                result.curve.append(_curve_point(df, round_index, m, run_started))
                dataset.write_json(CURVE_FILE, {"curve": result.curve, "config": _describe(config)})
                if progress:
                    progress(result, None)
            return m

        try:
            # round 0: a space-filling start (resumes the same Sobol stream; configs stored under another
            # protocol are skipped, not measured again, so no stored row is replaced)
            _seed_round(space, config, session, _archs(current(session.frame())), stop_reason)
            round_index = max(round_index, 1)
            while result.stopped_by is None:
                m = record()
                if config.target is not None and m is not None and recorded[0] >= MIN_ROWS_FOR_TARGET \
                        and m["within_10pct"] >= config.target:
                    result.stopped_by = "target"
                    break
                picks = pick_next(space, _archs(session.frame()), models, config.round_archs, config.shapes_per_arch,
                                  config.pool, config.explore, config.seed * 7919 + round_index)
                if not picks:
                    result.stopped_by, result.exhausted = "exhausted", True
                    break
                round_index += 1
                for arch, shapes in picks:
                    for shape in shapes:
                        result.stopped_by = stop_reason()
                        if result.stopped_by is not None:
                            break
                        if not session.has(arch, shape):
                            session.measure(arch, shape, round_index=round_index)
                    if result.stopped_by is not None:
                        break
            record()  # the curve's last point covers every row of this run
        finally:
            session.close()
        dataset.compact()
    return result


def _seed_round(space: SearchSpace, config: AdaptiveConfig, session: Session, measured: set[Arch],
                stop_reason: Callable[[], str | None]) -> None:
    """Round 0: configs of the space-filling stream until ``config.first_archs`` archs of this protocol
    (``measured``) are in; stored configs are skipped."""
    skipped = 0
    for index, arch, shape in iter_configs(space, sampler=config.sampler, seed=config.seed,
                                           shapes_per_arch=config.shapes_per_arch):
        session.result.stopped_by = stop_reason()
        if session.result.stopped_by is not None or (len(measured) >= config.first_archs and arch not in measured):
            return
        if session.has(arch, shape):
            skipped += 1
            if skipped > 20 * space.size * len(space.shapes):
                return
            continue
        measured.add(arch)
        session.measure(arch, shape, index=index, round_index=0)


def _archs(df: pd.DataFrame) -> set[Arch]:
    """Every arch with a stored row (ok or failed)."""
    if not len(df):
        return set()
    cols = df[["layers", "hidden", "heads", "ffn"]].drop_duplicates().to_numpy()
    return {Arch(*(int(v) for v in r)) for r in cols}


def _describe(config: AdaptiveConfig) -> dict[str, Any]:
    return {"minutes": config.minutes, "target": config.target, "samples": config.samples, "sampler": config.sampler,
            "seed": config.seed, "shapes_per_arch": config.shapes_per_arch, "first_archs": config.first_archs,
            "round_archs": config.round_archs, "pool": config.pool, "explore": config.explore, "folds": config.folds}
