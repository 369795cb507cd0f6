"""A search run: episodes of ask -> evaluate -> tell, one strategy per budget, sharing evaluations.

Persistence (``RUN/``): ``run.json`` (what was asked for), ``evaluations.jsonl`` (one line per finished
evaluation, fsynced as it lands); the caller writes ``result.json`` (:func:`~.result.write_result`) once its
post-steps are done. Resuming replays the seeded strategies and
takes finished evaluations from the file instead of redoing them, so a killed search rerun with the
same ``--out`` ends with the same winners.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..lazy import lazy_module
from ..space import ARCH_DIMS, Arch, Shape
from .domain import Domain, SearchError
from .evaluators.base import Evaluator
from .executor import Executor, LocalExecutor
from .request import check_study
from .result import Evaluation, EventFn, SearchResult, Winner, write_result
from .reward import RewardSpec, budget_key
from .runfolder import RUN_FILE, EvalRecord, best
from .runlog import LOG_FILE, read_json_object, read_log
from .strategies import make_strategy

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_module("pandas")

RUN_SCHEMA = 1


@dataclass(frozen=True)
class SearchConfig:
    device_id: str
    backend: str
    threads: int
    shape: Shape
    reward: RewardSpec
    strategy: str = "kdnas"
    episodes: int = 15
    candidates: int = 20
    seed: int = 0
    strategy_params: dict[str, Any] = field(default_factory=dict)
    evaluator: dict[str, Any] = field(default_factory=dict)
    space: str = ""
    budget_mb: float | None = None  # peak-memory hard constraint (MiB); left out of run.json when unset
    head_dim: int | None = None  # candidates restricted to this head size; left out of run.json when unset

    def __post_init__(self) -> None:
        check_study(episodes=self.episodes, candidates=self.candidates, budget_mb=self.budget_mb, head_dim=self.head_dim)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for optional in ("budget_mb", "head_dim"):
            if d[optional] is None:
                d.pop(optional)
        d["shape"] = {"batch": self.shape.batch, "seq": self.shape.seq}
        d["reward"] = self.reward.to_dict()
        return d


class LatencyTable:
    """Predicted latency (mid, low, high) of every candidate arch at the search shape, computed once."""

    def __init__(self, predictor: Any, archs: list[Arch], shape: Shape) -> None:
        cols = {d: np.array([getattr(a, d) for a in archs]) for d in ARCH_DIMS}
        frame = pd.DataFrame({**cols, "seq": shape.seq, "batch": shape.batch})
        pred = predictor.predict_interval(frame)
        self.archs = archs
        self.archs_set = frozenset(archs)
        self._rows = {
            a: (float(pred.mid[i]), float(pred.low[i]), float(pred.high[i]), bool(pred.out_of_range[i]))
            for i, a in enumerate(archs)
        }

    def __getitem__(self, arch: Arch) -> tuple[float, float, float, bool]:
        return self._rows[arch]

    def fastest(self, by_high: bool) -> tuple[Arch, float]:
        i = 2 if by_high else 0
        arch = min(self._rows, key=lambda a: (self._rows[a][i], a))
        return arch, self._rows[arch][i]


class Study:
    """Runs the episodes of one search in its run folder; only coordinates (the strategies propose, the
    evaluator scores, the executor runs the evaluations)."""

    def __init__(self, run_dir: str | Path, config: SearchConfig, evaluator: Evaluator, latency: LatencyTable,
                 executor: Executor | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.config = config
        self.evaluator = evaluator
        self.latency = latency
        self.executor: Executor = executor or LocalExecutor()
        self.records: dict[Arch, dict[str, Any]] = {}
        self.notes: list[str] = []  # what opening the run repaired (a torn last log line), for the user

    # -- persistence ------------------------------------------------------------------------------
    def check_run(self) -> bool:
        """Whether the run folder already holds this search (``run.json``); a different search there is refused in
        one line naming the options that differ, stored vs asked. Nothing is written."""
        meta = self.run_dir / RUN_FILE
        if not meta.exists():
            return False
        wanted = json.loads(json.dumps({"schema": RUN_SCHEMA, "config": self.config.to_dict()}))
        stored = _with_form(read_json_object(meta, "run metadata"))
        if stored != wanted:
            diffs = config_diff(stored, wanted)
            shown = "; ".join(diffs[:4]) + (f"; and {len(diffs) - 4} more" if len(diffs) > 4 else "")
            raise SearchError(f"run dir {self.run_dir} holds a different search ({shown or 'run.json differs'}); "
                              "pass another --out or the same options")
        return True

    def _open_run(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        meta = self.run_dir / RUN_FILE
        wanted = {"schema": RUN_SCHEMA, "config": self.config.to_dict()}
        if not self.check_run():
            tmp = meta.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(wanted, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, meta)
        found = read_log(self.run_dir / LOG_FILE, heal=True)  # a torn last line is set aside, then redone
        self.notes = found.notes
        keys = [budget_key(b) for b in self.config.reward.budgets_ms]
        for rec in found.records:
            if any(k not in rec["rewards"] for k in keys):
                raise SearchError(f"{self.run_dir / LOG_FILE}: a record of {rec['arch']} lacks the reward for "
                                  f"budget(s) {', '.join(k for k in keys if k not in rec['rewards'])} ms")
            self.records[Arch.from_dict(rec["arch"])] = rec
        self._note_moved_latencies()

    def _note_moved_latencies(self) -> None:
        """A note when the stored evaluations were scored on other predicted latencies than this run's (a refitted
        predictor, or ``--speed now`` on a busier machine): the replayed episodes may then ask other candidates."""
        known = [(a, rec) for a, rec in self.records.items() if a in self.latency.archs_set]
        moved = sum(not math.isclose(rec["latency_ms"], self.latency[a][0], rel_tol=1e-6) for a, rec in known)
        if moved:
            self.notes.append(f"{self.run_dir / LOG_FILE}: {moved} of {len(known)} stored evaluations were scored on "
                              "other predicted latencies (a refitted predictor or --speed now); the resumed episodes "
                              "use this run's and may evaluate other candidates")

    def _append(self, rec: dict[str, Any]) -> None:
        with open(self.run_dir / LOG_FILE, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    # -- records and rewards ----------------------------------------------------------------------
    def _record(self, arch: Arch, ev: Evaluation, episode: int) -> dict[str, Any]:
        """An evaluation's log record; a failed one (``ev.error``) has metric NaN, no reward under any budget
        (never a winner, never told to the strategy) and its message under ``error``."""
        mid, low, high, oor = self.latency[arch]
        spec = self.config.reward
        rewards = {budget_key(b): None if ev.error else spec.reward(ev.metric, mid, b, high) for b in spec.budgets_ms}
        rec = {"arch": arch.to_dict(), "episode": episode, "metric": ev.metric, "metric_name": ev.metric_name,
               "metrics": ev.metrics, "seconds": ev.seconds, "latency_ms": mid, "latency_ms_low": low,
               "latency_ms_high": high, "out_of_range": oor, "rewards": rewards}
        if ev.secondary is not None:  # the tie-breaker of equal metrics
            rec |= {"secondary": ev.secondary, "secondary_name": ev.secondary_name}
        if ev.error:
            rec["error"] = ev.error
        if ev.node:
            rec["node"] = ev.node
        return rec

    def _winners(self) -> list[Winner]:
        winners = []
        records = [EvalRecord.from_dict(rec) for rec in self.records.values()]
        for b in self.config.reward.budgets_ms:
            rec = best(records, b)
            if rec is None:
                failed = [r for r in self.records.values() if r.get("error")]
                why = f" ({len(failed)} candidate(s) failed, e.g. {failed[0]['error']})" if failed else ""
                raise SearchError(f"no evaluated candidate is feasible for the {b:g} ms budget{why}")
            reward = rec.reward(b)
            assert reward is not None  # best() only returns a feasible record
            winners.append(Winner(b, rec.arch, rec.latency_ms, rec.latency_ms_high, rec.metric, reward))
        return winners

    # -- the loop ---------------------------------------------------------------------------------
    def run(self, on_event: EventFn | None = None) -> SearchResult:
        emit = on_event or (lambda kind, data: None)
        self._open_run()
        for note in self.notes:
            emit("note", {"text": note})
        cfg = self.config
        spec = cfg.reward
        domains = {}
        for b in spec.budgets_ms:
            feasible = [a for a in self.latency.archs if spec.feasible(b, self.latency[a][0], self.latency[a][2])]
            factor = {a: spec.factor(self.latency[a][0], b) for a in feasible}
            domains[b] = Domain(feasible, choices=_choices(self.latency.archs), latency_factor=factor)
        strategies = {b: make_strategy(cfg.strategy, domains[b], seed=cfg.seed + 7919 * i, **cfg.strategy_params)
                      for i, b in enumerate(spec.budgets_ms)}
        per_budget = math.ceil(cfg.candidates / len(spec.budgets_ms))
        history: list[dict[str, Any]] = []
        evaluated_now = 0
        for episode in range(cfg.episodes):
            asked: list[Arch] = []
            for b in spec.budgets_ms:
                for a in strategies[b].ask(per_budget):
                    if a not in asked:
                        asked.append(a)
            emit("episode", {"episode": episode, "asked": asked})
            todo = [a for a in asked if a not in self.records]
            for arch, ev in self.executor.run(self.evaluator, todo):
                rec = self._record(arch, ev, episode)
                self._append(rec)
                self.records[arch] = rec
                evaluated_now += 1
                emit("evaluation", rec)
            for a in asked:  # tell in ask order, whatever order evaluations finished in
                for b in spec.budgets_ms:
                    r = self.records[a]["rewards"][budget_key(b)]
                    if r is not None:
                        strategies[b].tell(a, r, self.records[a])
            best = {budget_key(b): max((rec["rewards"][budget_key(b)] for rec in self.records.values()
                                        if rec["rewards"].get(budget_key(b)) is not None), default=None)
                    for b in spec.budgets_ms}
            history.append({"episode": episode, "asked": len(asked), "evaluations": len(self.records), "best_reward": best})
            emit("episode_done", history[-1])
            if not asked:
                break  # every strategy exhausted its domain
        return SearchResult(self._winners(), len(self.records), str(self.run_dir), history, evaluated_now)

    def write_result(self, result: SearchResult) -> None:
        write_result(self.run_dir, result)


# run.json fields under the option that sets them (the others are named by their path in run.json)
OPTION_OF = {"device_id": "--device", "backend": "--backend", "threads": "--threads", "shape.batch": "--batch",
             "shape.seq": "--seq", "reward.budgets_ms": "--budget-ms", "reward.w": "--reward-w",
             "reward.mode": "--mode", "reward.form": "--reward", "strategy": "--strategy", "episodes": "--episodes",
             "candidates": "--candidates",
             "seed": "--seed", "space": "--space", "budget_mb": "--budget-mb", "head_dim": "--head-dim",
             "evaluator.kind": "--evaluator", "evaluator.teacher": "--teacher", "evaluator.path": "--table",
             "evaluator.proxy_examples": "--proxy-examples", "evaluator.epochs": "--proxy-epochs",
             "evaluator.losses": "--losses", "evaluator.init": "--init", "evaluator.supernet": "--supernet"}


def _flat(doc: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(doc, dict):
        return {prefix: doc}
    out: dict[str, Any] = {}
    for k, v in doc.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def config_diff(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """``"--seed 0 (stored) vs 1 (now)"`` for each ``run.json`` field that differs (an option's name where one sets
    it; a field one side lacks shows as "unset")."""
    old = _flat(stored.get("config")) if isinstance(stored.get("config"), dict) else {"config": stored.get("config")}
    new = _flat(wanted["config"])
    diffs = []
    for key in sorted(set(old) | set(new), key=lambda k: (k not in OPTION_OF, k)):
        if old.get(key, "unset") != new.get(key, "unset"):
            name = OPTION_OF.get(key, key)
            diffs.append(f"{name} {_shown(old.get(key, 'unset'))} (stored) vs {_shown(new.get(key, 'unset'))} (now)")
    if stored.get("schema") != wanted.get("schema"):
        diffs.append(f"schema {stored.get('schema')} (stored) vs {wanted.get('schema')} (now)")
    return diffs


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)

def _with_form(meta: dict[str, Any]) -> dict[str, Any]:
    """A run folder written before the hard reward existed ran the soft one: its ``run.json`` says so now."""
    config = meta.get("config")
    reward = config.get("reward") if isinstance(config, dict) else None
    if isinstance(reward, dict):
        reward.setdefault("form", "soft")
    return meta


def _choices(archs: list[Arch]) -> dict[str, tuple[int, ...]]:
    return {d: tuple(sorted({getattr(a, d) for a in archs})) for d in ARCH_DIMS}


def check_budgets(latency: LatencyTable, spec: RewardSpec) -> None:
    """A budget below the fastest candidate is an error that names the fastest predicted latency."""
    by_high = not spec.hard and spec.mode == "hard"
    arch, fastest = latency.fastest(by_high)
    for b in spec.budgets_ms:
        if b < fastest:
            what = "predicted upper bound" if by_high else "predicted latency"
            raise SearchError(f"budget {b:g} ms is below the fastest arch in the space ({arch}: {what} {fastest:.3g} ms)")
