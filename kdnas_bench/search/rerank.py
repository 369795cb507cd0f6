"""Multi-fidelity: re-rank the best one-shot (supernet) candidates per budget by proxy distillation.

Successive halving: the ``top`` candidates of each budget by supernet reward enter rung 0 (proxy
distillation on ``examples`` training examples for ``epochs``, each starting from its supernet weights);
the best ``1/eta`` by the same reward go on to the next rung with ``eta`` times the examples, until one is
left, which becomes the budget's winner. Rung evaluations are shared across budgets and appended to
``RUN/rerank.jsonl`` as they finish, so a rerun resumes.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..space import Arch
from .domain import SearchError
from .evaluators import Evaluator, evaluate_candidate
from .reward import budget_key
from .runfolder import RERANK_FILE, ranked
from .study import SearchResult, Study, Winner


@dataclass(frozen=True)
class RerankConfig:
    top: int = 4  # candidates per budget entering the first rung
    examples: int = 500  # proxy examples of the first rung (times eta per rung)
    epochs: float = 2.0
    eta: int = 2

    def __post_init__(self) -> None:
        if self.top < 1 or self.examples < 1 or self.epochs <= 0 or self.eta < 2:
            raise SearchError(f"re-ranking needs top >= 1, examples >= 1, epochs > 0 and eta >= 2, got {self}")

    def rungs(self) -> int:
        return max(1, math.ceil(math.log(self.top, self.eta))) if self.top > 1 else 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read(path: Path) -> dict[tuple[int, Arch], dict[str, Any]]:
    done: dict[tuple[int, Arch], dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
                done[(int(rec["rung"]), Arch.from_dict(rec["arch"]))] = rec
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # a line torn by a kill: redone
    return done


def _append(path: Path, rec: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(rec) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def rerank(study: Study, result: SearchResult, cfg: RerankConfig, make_evaluator: Callable[[int, float], Evaluator],
           on_event: Callable[[str, dict[str, Any]], None] | None = None) -> SearchResult:
    """Replace each budget's winner by the survivor of successive halving over its ``cfg.top`` best candidates.
    ``make_evaluator(examples, epochs)`` gives the proxy evaluator of a rung."""
    emit = on_event or (lambda kind, data: None)
    spec = study.config.reward
    log = study.run_dir / RERANK_FILE
    done = _read(log)
    winners = []
    for w in result.winners:
        key = budget_key(w.budget_ms)
        order = ranked((rec["rewards"][key], a) for a, rec in study.records.items()
                       if rec["rewards"].get(key) is not None)
        alive = [a for _, a in order[: cfg.top]]
        trail: list[dict[str, Any]] = []
        rung = 0
        last: dict[Arch, dict[str, Any]] = {}
        while True:
            examples = cfg.examples * cfg.eta**rung
            evaluator = make_evaluator(examples, cfg.epochs)
            scored = []
            for arch in alive:
                rec = done.get((rung, arch))
                if rec is None:
                    ev = evaluate_candidate(evaluator, arch)  # a failed candidate (out of memory) ranks last
                    rec = {"rung": rung, "examples": examples, "epochs": cfg.epochs, "arch": arch.to_dict(),
                           "metric": ev.metric, "metrics": ev.metrics, "seconds": ev.seconds,
                           **({"error": ev.error} if ev.error else {})}
                    _append(log, rec)
                    done[(rung, arch)] = rec
                    emit("rerank", rec)
                mid, _, high, _ = study.latency[arch]
                reward = None if rec.get("error") else spec.reward(rec["metric"], mid, w.budget_ms, high)
                scored.append((reward if reward is not None else -math.inf, arch))
                last[arch] = rec
            scored = ranked(scored)
            trail.append({"rung": rung, "examples": examples, "epochs": cfg.epochs,
                          "candidates": [{"arch": str(a), "reward": r, "metric": last[a]["metric"]} for r, a in scored]})
            if len(scored) <= 1:
                break
            alive = [a for _, a in scored[: max(1, math.ceil(len(scored) / cfg.eta))]]
            rung += 1
        best_reward, best = scored[0]
        if last[best].get("error"):  # every re-ranked candidate failed: the one-shot winner stays
            winners.append(Winner(w.budget_ms, w.arch, w.predicted_latency_ms, w.predicted_latency_ms_high,
                                  w.proxy_metric, w.reward, {**w.extra, "rerank": trail}))
            continue
        mid, _, high, _ = study.latency[best]
        winner = Winner(w.budget_ms, best, mid, high, last[best]["metric"], best_reward,
                        {"oneshot_metric": study.records[best]["metric"], "oneshot_winner": str(w.arch),
                         "rerank": trail})
        winners.append(winner)
    return SearchResult(winners, result.evaluations, result.run_dir, result.history, result.evaluated_now)
