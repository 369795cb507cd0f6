"""Multi-fidelity: re-rank the best one-shot (supernet) candidates per budget by proxy distillation.

Successive halving: ``top`` candidates of each budget enter rung 0 — the best of each depth by supernet reward,
then the best of the rest (:func:`shortlist`) — for a proxy distillation on ``examples`` training examples for
``epochs``, each starting from its supernet weights; the best ``1/eta`` by the same reward go on to the next
rung with ``eta`` times the examples, until the next rung would hold a single candidate (it would decide
nothing, so it is skipped): the best of the last rung becomes the budget's winner; a budget with a single
candidate to re-rank keeps its one-shot winner. Ties of a rung's metric go to the evaluation's finer secondary
score. Under the hard reward with a latency gate (the budget check,
:meth:`~.budgetcheck.BudgetCheck.admits`), a candidate whose predicted interval straddles the budget enters
only once measured within it; the next best one takes the place of one refused. Rung evaluations are shared
across budgets and appended to ``RUN/rerank.jsonl`` as they finish, so a rerun resumes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ..space import Arch
from .domain import SearchError
from .executor import Evaluates, evaluate_candidate
from .result import EventFn, SearchResult, Winner
from .reward import RewardSpec
from .runfolder import RERANK_FILE, EvalRecord, RunFolder, ranked
from .runlog import append_line, keyed_lines

RERANK_BY = ("metric", "fidelity")


@dataclass(frozen=True)
class RerankConfig:
    top: int = 4  # candidates per budget entering the first rung
    examples: int = 500  # proxy examples of the first rung (times eta per rung)
    epochs: float = 2.0
    eta: int = 2
    by: str = "metric"  # a rung's order: the reward (its dev metric), or "fidelity" to the teacher (minus the KD loss)
    lr: float | None = None  # the rungs' learning rate (None: distill's default)

    def __post_init__(self) -> None:
        if self.top < 1 or self.examples < 1 or self.epochs <= 0 or self.eta < 2 or (self.lr is not None and self.lr <= 0):
            raise SearchError(f"re-ranking needs top >= 1, examples >= 1, epochs > 0, eta >= 2 and lr > 0, got {self}")
        if self.by not in RERANK_BY:
            raise SearchError(f"re-ranking by {self.by!r}: choose from {', '.join(RERANK_BY)}")

    def rungs(self) -> int:
        """Rungs of a full first rung: none of a single candidate; the last holds at least two."""
        n, rungs = self.top, 0
        while n > 1:
            rungs += 1
            n = math.ceil(n / self.eta)
        return rungs

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.by == "metric":  # the default leaves run.json as it was before the choice existed
            d.pop("by")
        if self.lr is None:
            d.pop("lr")
        return d


def _read(path: Path) -> dict[tuple[int, Arch], dict[str, Any]]:
    return keyed_lines(path, lambda rec: (int(rec["rung"]), Arch.from_dict(rec["arch"])))


# (arch, budget in ms, its one-shot record) -> may it enter the budget's re-ranking
Gate = Callable[[Arch, float, EvalRecord], bool]


def shortlist(order: list[tuple[float, Arch]], top: int, budget_ms: float, by_arch: dict[Arch, EvalRecord],
              admit: Gate | None) -> tuple[list[Arch], list[str]]:
    """The re-ranking's first rung for ``budget_ms``: ``top`` archs of ``order`` (best first) that ``admit`` lets
    in (all of them without a gate), and the ones it refused on the way. First the best of each depth, the depths
    in the order of their best candidate, then the best of the rest: a one-shot score compares sub-networks of one
    depth far better than sub-networks of different depths (on MRPC the supernet scored every student within 0.8
    points of the constant answer, while a short distillation put the six-layer student ahead), so the
    distillations, not the supernet, decide how deep the student is."""
    alive: list[Arch] = []
    refused: list[str] = []
    depths: set[int] = set()
    for by_depth in (True, False):
        for _, arch in order:
            if len(alive) == top:
                return alive, refused
            if arch in alive or str(arch) in refused or (by_depth and arch.layers in depths):
                continue
            if admit is None or admit(arch, budget_ms, by_arch[arch]):
                alive.append(arch)
                depths.add(arch.layers)
            else:
                refused.append(str(arch))
    return alive, refused


def order_rung(scored: list[tuple[float, Arch]], secondary: dict[Arch, float | None],
               by: str) -> list[tuple[float, Arch]]:
    """A rung's (reward, arch) pairs best first: by reward, ties to the secondary score (``by="metric"``), or by the
    secondary score — closeness to the teacher — with a failed or over-budget candidate last and the reward breaking
    ties (``by="fidelity"``)."""
    if by != "fidelity":
        return ranked(scored, secondary)
    reward_of = {a: r for r, a in scored}
    order = ranked([(s if s is not None and reward_of[a] != -math.inf else -math.inf, a)
                    for a, s in secondary.items()], reward_of)
    return [(reward_of[a], a) for _, a in order]


def rerank(records: list[EvalRecord], spec: RewardSpec, result: SearchResult, cfg: RerankConfig,
           make_evaluator: Callable[[int, float], Evaluates], log: Path,
           on_event: EventFn | None = None, admit: Gate | None = None) -> SearchResult:
    """Replace each budget's winner by the survivor of successive halving over its ``cfg.top`` best
    ``records`` (those ``admit`` lets in, when given). ``make_evaluator(examples, epochs)`` gives the proxy
    evaluator of a rung; ``log`` keeps the rung evaluations (read back on a rerun)."""
    emit = on_event or (lambda kind, data: None)
    done = _read(log)
    by_arch = {r.arch: r for r in records}
    winners = []
    for w in result.winners:
        order = ranked(((r, a) for a, rec in by_arch.items() if (r := rec.reward(w.budget_ms)) is not None),
                       {a: rec.secondary for a, rec in by_arch.items()})
        alive, refused = shortlist(order, cfg.top, w.budget_ms, by_arch, admit)
        gated = {"rerank_refused": refused} if refused else {}
        if len(alive) <= 1:  # a rung of one candidate decides nothing: the one-shot winner (or the one let in) stays
            extra = {**w.extra, "rerank": [], "rerank_skipped": "a single candidate", **gated}
            if alive and alive[0] != w.arch:
                one = by_arch[alive[0]]
                reward = spec.reward(one.metric, one.latency_ms, w.budget_ms, one.latency_ms_high)
                winners.append(Winner(w.budget_ms, one.arch, one.latency_ms, one.latency_ms_high, one.metric,
                                      one.metric if reward is None else reward, extra))
            else:
                winners.append(replace(w, extra=extra))
            continue
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
                           **({"secondary": ev.secondary} if ev.secondary is not None else {}),
                           **({"error": ev.error} if ev.error else {})}
                    append_line(log, rec)
                    done[(rung, arch)] = rec
                    emit("rerank", rec)
                one = by_arch[arch]
                reward = None if rec.get("error") else spec.reward(rec["metric"], one.latency_ms, w.budget_ms,
                                                                   one.latency_ms_high)
                scored.append((reward if reward is not None else -math.inf, arch))
                last[arch] = rec
            scored = order_rung(scored, {a: last[a].get("secondary") for a in alive}, cfg.by)
            trail.append({"rung": rung, "examples": examples, "epochs": cfg.epochs,
                          "candidates": [{"arch": str(a), "reward": r, "metric": last[a]["metric"],
                                          **({"secondary": last[a]["secondary"]} if "secondary" in last[a] else {})}
                                         for r, a in scored]})
            alive = [a for _, a in scored[: max(1, math.ceil(len(scored) / cfg.eta))]]
            if len(alive) <= 1:  # the next rung would hold a single candidate: it would decide nothing
                break
            rung += 1
        best_reward, best = scored[0]
        if last[best].get("error"):  # every re-ranked candidate failed: the one-shot winner stays
            winners.append(Winner(w.budget_ms, w.arch, w.predicted_latency_ms, w.predicted_latency_ms_high,
                                  w.proxy_metric, w.reward, {**w.extra, "rerank": trail, **gated}))
            continue
        top = by_arch[best]
        by = {"rerank_by": cfg.by} if cfg.by != "metric" else {}  # the default leaves result.json as it was
        winners.append(Winner(w.budget_ms, best, top.latency_ms, top.latency_ms_high, last[best]["metric"], best_reward,
                              {"oneshot_metric": top.metric, "oneshot_winner": str(w.arch), "rerank": trail, **by,
                               **gated}))
    return SearchResult(winners, result.evaluations, result.run_dir, result.history, result.evaluated_now)


@dataclass(frozen=True)
class RerankStep:
    """The post-step: re-rank ``run``'s winners by the evaluations in its folder."""

    run: Path
    spec: RewardSpec
    cfg: RerankConfig
    make_evaluator: Callable[[int, float], Evaluates]
    emit: EventFn
    admit: Gate | None = None  # the budget check's gate (hard reward, on the device): straddlers measured first

    def __call__(self, result: SearchResult) -> SearchResult:
        by = ", each rung ordered by fidelity to the teacher" if self.cfg.by == "fidelity" else ""
        lr = f" at learning rate {self.cfg.lr:g}" if self.cfg.lr is not None else ""
        self.emit("message", {"text": f"re-ranking {self.cfg.top} per budget (the best of each depth first) by proxy "
                                      f"distillation (successive halving, {self.cfg.examples} examples × "
                                      f"{self.cfg.epochs:g} epochs first{lr}{by}) …"})
        records, _ = RunFolder(self.run).evaluations()
        return rerank(records, self.spec, result, self.cfg, self.make_evaluator, self.run / RERANK_FILE, self.emit,
                      self.admit)
