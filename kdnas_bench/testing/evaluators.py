"""The Evaluator contract (:class:`~kdnas_bench.search.evaluators.base.Evaluator`): built from a request and a
context, it describes itself as a stable JSON object (what ``run.json`` records, so a resumed run is
recognised), scores archs deterministically with a finite metric, and survives pickling without what it
loaded (a Ray worker gets a copy and must score the same)."""

from __future__ import annotations

import json
import math
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path

from ..defaults import DEFAULTS
from ..distill.data import AGNOSTIC, get_task
from ..paths import default_space
from ..search.evaluators.base import Evaluator, EvaluatorContext
from ..search.request import SearchRequest
from ..search.result import Evaluation, EventFn
from ..space import Arch, SearchSpace


def evaluator_context(req: SearchRequest, run: str | Path, emit: EventFn | None = None) -> EvaluatorContext:
    """The context a search would build for ``req`` with its run folder at ``run``."""
    space_file = req.space or str(default_space())
    task = AGNOSTIC if req.agnostic else get_task(req.task).name
    return EvaluatorContext(req, Path(run), task, SearchSpace.load(space_file), space_file,
                            req.losses or DEFAULTS.search_losses_for(req.agnostic), emit or (lambda kind, data: None))


def _valid(ev: Evaluator, arch: Arch, e: Evaluation) -> None:
    where = f"{ev.name or type(ev).__name__} on {arch}"
    assert isinstance(e, Evaluation), f"{where}: evaluate() returned a {type(e).__name__}, not an Evaluation"
    assert isinstance(e.metric, float | int) and math.isfinite(e.metric), f"{where}: metric {e.metric!r} is not finite"
    assert isinstance(e.metric_name, str) and e.metric_name, f"{where}: no metric name"
    assert all(isinstance(k, str) and math.isfinite(v) for k, v in e.metrics.items()), f"{where}: metrics {e.metrics}"
    assert e.seconds >= 0, f"{where}: negative seconds"


def describes_itself_stably(ev: Evaluator, archs: Sequence[Arch]) -> None:
    d = ev.describe()
    assert isinstance(d, dict) and isinstance(d.get("kind"), str), f"{type(ev).__name__}.describe() needs a 'kind'"
    assert json.loads(json.dumps(d)) == d, f"{type(ev).__name__}.describe() does not round-trip through JSON: {d}"
    assert ev.describe() == d, f"{type(ev).__name__}.describe() changes between calls"


def scores_deterministically(ev: Evaluator, archs: Sequence[Arch]) -> None:
    assert archs, "give at least one arch to score"
    first = [ev.evaluate(a) for a in archs]
    for a, e in zip(archs, first, strict=True):
        _valid(ev, a, e)
    again = ev.evaluate(archs[0])
    assert again.metric == first[0].metric, f"{type(ev).__name__}: {archs[0]} scored {first[0].metric}, then {again.metric}"


def survives_pickling(ev: Evaluator, archs: Sequence[Arch]) -> None:
    assert archs, "give at least one arch to score"
    ev.evaluate(archs[0])  # load what it loads, then make sure that is not shipped with it
    blob = pickle.dumps(ev)
    copy = pickle.loads(blob)
    assert "_loaded" not in copy.__dict__, f"{type(ev).__name__}: what it loaded travels with the pickle"
    assert copy.describe() == ev.describe(), f"{type(ev).__name__}: a pickled copy describes itself otherwise"
    assert copy.evaluate(archs[-1]).metric == ev.evaluate(archs[-1]).metric, \
        f"{type(ev).__name__}: a pickled copy (a Ray worker's) scores {archs[-1]} otherwise"


EVALUATOR_CHECKS: dict[str, Callable[[Evaluator, Sequence[Arch]], None]] = {
    "describes_itself_stably": describes_itself_stably, "scores_deterministically": scores_deterministically,
    "survives_pickling": survives_pickling}


def check_evaluator(ev: Evaluator, archs: Sequence[Arch]) -> None:
    """Every evaluator check on the instance ``ev``, scoring ``archs`` (a few small ones keep it quick)."""
    assert isinstance(ev, Evaluator), f"{type(ev).__name__} does not derive from Evaluator"
    for check in EVALUATOR_CHECKS.values():
        check(ev, archs)


def check_evaluator_class(cls: type[Evaluator], req: SearchRequest, run: str | Path, archs: Sequence[Arch] = (),
                          emit: EventFn | None = None) -> Evaluator:
    """A registered evaluator class end to end as a search uses it: ``check(req)`` accepts ``req``,
    ``from_request`` builds an instance of ``cls``, ``setup`` prepares it (a supernet trains here), its
    candidates lie in the space, and :func:`check_evaluator` passes on ``archs`` (default: its two smallest
    candidates). Returns the instance."""
    assert isinstance(cls.name, str) and cls.name, f"{cls.__name__} needs a class attribute 'name' (its registry key)"
    assert cls.inputs in ("task", "text", "table"), f"{cls.__name__}.inputs must be task, text or table"
    ctx = evaluator_context(req, run, emit)
    cls.check(req)
    ev = cls.from_request(req, ctx)
    assert type(ev) is cls, f"{cls.__name__}.from_request built a {type(ev).__name__}"
    ev.setup(ctx)
    candidates = ev.candidates(ctx.space)
    assert candidates and all(isinstance(a, Arch) for a in candidates), f"{cls.__name__}: no candidates"
    check_evaluator(ev, list(archs) or sorted(candidates)[:2])
    assert isinstance(ev.post_steps(ctx), list), f"{cls.__name__}.post_steps() must return a list"
    return ev
