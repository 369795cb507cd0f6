"""A whole search as one library call: :func:`run_search` takes a typed :class:`SearchRequest` and returns a
:class:`SearchOutcome`. The CLI (``kdnas-bench search``), the quickstart and the benchmarks all go through it.

The phases: :func:`~.plan.prepare` checks the request and lays the search out (predictor, space, run folder,
the evaluator from :data:`~.evaluators.EVALUATORS`, candidates and their predicted latency, the budgets
against the fastest) -> the evaluator's setup (a supernet is trained here) -> the study runs the episodes ->
each post-step refines the result (re-ranking, final distillation, memory figures) -> ``RUN/result.json`` and
``RUN/summary.json``, written once.

Under ``torchrun`` (several processes) only the supernet step is shared: every process trains the supernet
data-parallel (:mod:`kdnas_bench.supernet.parallel`), then process 0 goes on with the search alone and the
others exit.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..space import Arch
from .asking import search_request
from .evaluators import EVALUATORS, default_teacher
from .executor import EXECUTORS, make_executor
from .final import FinalStep
from .memory_budget import MemoryStep
from .plan import SearchPlan, prepare
from .request import FinalOptions, SearchRequest, SupernetOptions, parse_head_dim
from .result import EventFn, SearchResult, Winner, write_result
from .runfolder import RESULT_FILE, SUMMARY_FILE, RunFolder
from .runlog import read_json_object


@dataclass(frozen=True)
class SearchOutcome:
    """What a search returns: the winners (with final metrics and measured latency when ``final`` ran), the
    run folder, the task's canonical name and the teacher used (None with a table)."""

    result: SearchResult
    run_dir: Path
    task: str
    teacher: str | None
    final: bool
    memory_method: int | None = None  # the measuring method of the memory model behind ``budget_mb``
    stored: bool = False  # a finished run's stored result, returned as it was (nothing redone)

    def summary(self) -> dict[str, Any]:
        """``summary.json``: the result without its per-episode history."""
        data = self.result.to_dict()
        data.pop("history")
        return data


def _study(plan: SearchPlan, emit: EventFn) -> SearchResult:
    """The episodes, on the request's executor."""
    req = plan.request
    executor = make_executor(req.executor, req.ray_address, gpus_per_candidate=plan.ctx.gpus_per_candidate)
    plan.study.executor = executor
    emit("start", {"task": plan.task, "run": str(plan.run), "config": plan.study.config})
    try:
        return plan.study.run(emit)
    finally:
        executor.close()
        emit("end", {})


def _ranks(req: SearchRequest) -> Any:
    """This process's place among the processes ``torchrun`` launched (a single process: nothing shared)."""
    from ..supernet import parallel  # noqa: PLC0415  lazy: torch (via supernet.parallel)

    if not parallel.launched():
        return parallel.SINGLE
    from ..distill.accelerator import resolve  # noqa: PLC0415  lazy: torch (via distill.accelerator)

    return parallel.join(resolve(req.accelerator))[0]


def _prepare(req: SearchRequest, emit: EventFn, progress: bool, ranks: Any) -> SearchPlan:
    """The plan; under torchrun process 0 lays the run out first (a default teacher, a derived space), the others
    then read it, silently."""
    if not ranks.writer:
        ranks.barrier()
        return prepare(req, None, progress=False)
    plan = prepare(req, emit, progress=progress)
    ranks.barrier()
    return plan


def run_search(req: SearchRequest, on_event: EventFn | None = None, *, progress: bool = False) -> SearchOutcome:
    """Run the search ``req`` describes, resumably, in its run folder; return its winners.

    ``on_event(kind, data)`` sees ``message`` (a line for the user), ``start`` (before the episodes),
    ``note``, ``episode``, ``evaluation``, ``episode_done`` (the study's events), ``end`` (after the
    episodes) and ``rerank`` (a re-ranking evaluation). Bad input raises :class:`~kdnas_bench.errors.KdnasError`
    before any expensive work. A finished run (``RUN/result.json``) of the same search is not redone: its stored
    result is returned and nothing is written (``req.redo == "final"``: only the final step is redone). The run
    folder is locked while the search runs (one writer per run folder). Under torchrun, the processes other than
    process 0 exit (``SystemExit(0)``) once they have taken their part in the supernet training."""
    emit: EventFn = on_event or (lambda kind, data: None)
    ranks = _ranks(req)
    plan = _prepare(req, emit, progress, ranks)
    try:
        if ranks.writer and plan.resumed and (plan.run / RESULT_FILE).is_file():
            return _finished(plan, emit)
        if not ranks.writer and not plan.evaluator.oneshot:
            raise SystemExit(0)  # nothing to share: the search is process 0's
        plan.evaluator.setup(plan.ctx)
        if not ranks.writer:
            raise SystemExit(0)  # the rest of the search is process 0's
        for note in plan.notes:
            emit("message", {"text": note})
        result = _study(plan, emit)
        for step in plan.steps:
            result = step(result)
        if plan.ctx.teacher_check is not None:  # the teacher's score and the trivial one, for every report
            result = replace(result, baseline=plan.ctx.teacher_check.to_dict())
        return _write(plan, result)
    finally:
        if plan.lock is not None:
            plan.lock.release()


def _write(plan: SearchPlan, result: SearchResult) -> SearchOutcome:
    """``RUN/result.json`` and ``RUN/summary.json``, once the result is final."""
    req = plan.request
    write_result(plan.run, result)
    outcome = SearchOutcome(result, plan.run, plan.task, plan.evaluator.teacher, req.final is not None,
                            plan.predictor.memory_method if req.budget_mb is not None else None)
    (plan.run / SUMMARY_FILE).write_text(json.dumps(outcome.summary(), indent=2, default=str) + "\n")
    return outcome


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)  # a metric of 0.0 stays 0.0


def stored_result(run: Path) -> SearchResult:
    """The result a finished run stored in ``RUN/result.json`` (its winners with every extra field they carry)."""
    folder = RunFolder(run)
    records, _ = folder.evaluations()  # read only: a log record with a wrong type is still refused, naming its line
    winners, history = folder.result()
    doc = read_json_object(run / RESULT_FILE, "run result")
    base = ("budget_ms", "arch", "predicted_latency_ms", "predicted_latency_ms_high", "proxy_metric", "reward")
    out = [Winner(float(w["budget_ms"]), Arch.from_dict(w["arch"]), float(w["predicted_latency_ms"]),
                  float(w["predicted_latency_ms_high"]), _number(w.get("proxy_metric")), _number(w.get("reward")),
                  {k: v for k, v in w.items() if k not in base}) for w in winners]
    evaluations = doc.get("evaluations")
    return SearchResult(out, int(evaluations) if isinstance(evaluations, int) else len(records), str(run), history, 0)


def _finished(plan: SearchPlan, emit: EventFn) -> SearchOutcome:
    """A finished run of this search: its stored result, nothing rewritten; with ``--redo final`` the final step
    (and the memory figures after it) redone on the stored winners."""
    req = plan.request
    result = stored_result(plan.run)
    method = plan.predictor.memory_method if req.budget_mb is not None else None
    final = all("final_metric" in w.extra for w in result.winners)
    if req.redo != "final" and (final or req.final is None):
        emit("message", {"text": f"{plan.run} holds this search, finished: its stored result ({result.evaluations} "
                                 "evaluations), nothing redone (--final --redo final re-does the final step)"})
        return SearchOutcome(result, plan.run, plan.task, plan.evaluator.teacher, final, method, stored=True)
    what = "re-doing its final step only" if final else "adding the final step (--final) to its stored winners"
    emit("message", {"text": f"{plan.run} holds this search, finished: {what}"})
    for step in plan.steps:
        if isinstance(step, FinalStep | MemoryStep):
            result = step(result)
    return _write(plan, result)


__all__ = ["EVALUATORS", "EXECUTORS", "FinalOptions", "SearchOutcome", "SearchRequest", "SupernetOptions",
           "default_teacher", "parse_head_dim", "prepare", "run_search", "search_request"]
