"""A search run's folder, read in one place: what was asked for (``run.json``), the evaluations
(``evaluations.jsonl``, as typed :class:`EvalRecord`), the result (``result.json``), and the one rule that
picks a budget's winner (:func:`best`), which the search, the re-ranking, ``report`` and ``compare`` share.

The files are written by :class:`~kdnas_bench.search.study.Study` (and ``rerank.jsonl`` by the re-ranking,
``summary.json`` by :func:`~kdnas_bench.search.api.run_search`); readers here never modify them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import KdnasError
from ..space import Arch
from .reward import budget_key
from .runlog import LOG_FILE, check_result, check_run_config, read_json_object, read_log

RUN_FILE = "run.json"
RESULT_FILE = "result.json"
SUMMARY_FILE = "summary.json"
RERANK_FILE = "rerank.jsonl"


@dataclass(frozen=True)
class EvalRecord:
    """One evaluated candidate: its metric, predicted latency at the search shape and reward per budget
    (``None``: infeasible under that budget)."""

    arch: Arch
    episode: int
    metric: float
    latency_ms: float
    latency_ms_high: float
    rewards: dict[str, float | None]
    metric_name: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    latency_ms_low: float | None = None
    out_of_range: bool = False
    secondary: float | None = None  # the evaluator's tie-breaker of equal metrics (higher is better)

    def __post_init__(self) -> None:
        if self.episode < 0 or not (self.latency_ms > 0 and self.latency_ms_high > 0):
            raise KdnasError(f"an evaluation record needs episode >= 0 and positive latencies: {self}")

    def reward(self, budget_ms: float) -> float | None:
        return self.rewards.get(budget_key(budget_ms))

    @classmethod
    def from_dict(cls, rec: dict[str, Any]) -> EvalRecord:
        """From a log line already checked by :func:`~kdnas_bench.search.runlog.check_record`."""
        return cls(Arch.from_dict(rec["arch"]), int(rec["episode"]), float(rec["metric"]), float(rec["latency_ms"]),
                   float(rec["latency_ms_high"]), dict(rec["rewards"]), rec.get("metric_name"),
                   dict(rec.get("metrics") or {}), float(rec.get("seconds") or 0.0), rec.get("latency_ms_low"),
                   bool(rec.get("out_of_range", False)), _number(rec.get("secondary")))

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch.to_dict(), "episode": self.episode, "metric": self.metric,
                "metric_name": self.metric_name, "metrics": self.metrics, "seconds": self.seconds,
                "latency_ms": self.latency_ms, "latency_ms_low": self.latency_ms_low,
                "latency_ms_high": self.latency_ms_high, "out_of_range": self.out_of_range, "rewards": self.rewards,
                **({} if self.secondary is None else {"secondary": self.secondary})}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def ranked(scored: Iterable[tuple[float, Arch]],
           secondary: Mapping[Arch, float | None] | None = None) -> list[tuple[float, Arch]]:
    """(reward, arch) pairs best first: the highest reward, ties to the higher ``secondary`` score (the
    evaluator's finer tie-breaker, e.g. fidelity to the teacher; a candidate without one after those with one),
    then to the smaller arch (fewer layers, then hidden, heads, FFN). The one ordering every winner choice uses.
    An infeasible candidate is scored ``-inf``."""
    second = secondary or {}

    def key(t: tuple[float, Arch]) -> tuple[float, float, Arch]:
        s = second.get(t[1])
        return (-t[0] if not math.isnan(t[0]) else math.inf, -s if s is not None and math.isfinite(s) else math.inf, t[1])

    return sorted(scored, key=key)


def best(records: Iterable[EvalRecord], budget_ms: float) -> EvalRecord | None:
    """The winner of ``budget_ms`` among ``records`` (see :func:`ranked`), or None when none is feasible."""
    by_arch: dict[Arch, EvalRecord] = {}
    scored: list[tuple[float, Arch]] = []
    for r in records:
        reward = r.reward(budget_ms)
        if reward is not None:
            by_arch[r.arch] = r
            scored.append((reward, r.arch))
    top = ranked(scored, {a: r.secondary for a, r in by_arch.items()})
    return by_arch[top[0][1]] if top else None


def provisional_winner(rec: EvalRecord, budget_ms: float) -> dict[str, Any]:
    """A winner entry (as in ``result.json``) for an unfinished run's best record so far."""
    return {"budget_ms": float(budget_ms), "arch": rec.arch.to_dict(), "predicted_latency_ms": rec.latency_ms,
            "predicted_latency_ms_high": rec.latency_ms_high, "proxy_metric": rec.metric,
            "reward": rec.reward(budget_ms)}


def run_data(run_dir: Path) -> dict[str, Any] | None:
    """The data spec an existing run recorded for a task of one's own (``run.json`` → evaluator → ``data``), or
    None (no run yet, a GLUE task, or a file that the search's own checks will report)."""
    try:
        config = read_json_object(run_dir / RUN_FILE, "run metadata").get("config")
    except KdnasError:
        return None
    evaluator = config.get("evaluator") if isinstance(config, dict) else None
    data = evaluator.get("data") if isinstance(evaluator, dict) else None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class RunFolder:
    """Read access to a search run folder. Every reader raises a one-line :class:`KdnasError` naming the file."""

    path: Path

    def __post_init__(self) -> None:
        if not (self.path / RUN_FILE).is_file():
            raise KdnasError(f"{self.path} is not a search run (no {RUN_FILE}): pass the --out folder of "
                             "`kdnas-bench search`")

    def config(self) -> dict[str, Any]:
        """The search's configuration (``run.json`` → ``config``), type-checked."""
        return check_run_config(read_json_object(self.path / RUN_FILE, "run metadata").get("config"),
                                str(self.path / RUN_FILE))

    def evaluations(self) -> tuple[list[EvalRecord], int]:
        """The evaluated candidates and the count of log lines skipped (torn by a crash; counted, not moved)."""
        log = read_log(self.path / LOG_FILE, heal=False)
        return [EvalRecord.from_dict(r) for r in log.records], log.skipped

    @property
    def finished(self) -> bool:
        return (self.path / RESULT_FILE).is_file()

    def result(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(winners, history) of ``result.json``, type-checked; an error when the search has not finished."""
        path = self.path / RESULT_FILE
        if not path.is_file():
            raise KdnasError(f"{self.path} has no {RESULT_FILE} yet: finish (or resume) the search first")
        return check_result(read_json_object(path, "run result"), str(path))

    def winners(self, records: list[EvalRecord] | None = None) -> list[dict[str, Any]]:
        """The run's winners: ``result.json``'s when finished, else the best feasible record so far per budget."""
        if self.finished:
            return self.result()[0]
        records = self.evaluations()[0] if records is None else records
        out = []
        for b in (self.config().get("reward") or {}).get("budgets_ms") or []:
            rec = best(records, float(b))
            if rec is not None:
                out.append(provisional_winner(rec, float(b)))
        return out

    def metric_name(self) -> str | None:
        """The name of the evaluations' metric (the first record's), or None without records."""
        records, _ = self.evaluations()
        return records[0].metric_name if records else None
