"""A search, checked and laid out before anything expensive runs: :func:`prepare` turns a
:class:`~.request.SearchRequest` into a :class:`SearchPlan` (the task, the run folder, the predictor, the
evaluator from the registry, the candidates and their predicted latency, the study, and the post-steps), and
every refusal happens there, once, as a one-line :class:`~.domain.SearchError`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..autospace import AUTO, write_space
from ..distill.data import AGNOSTIC, TaskRef, get_task
from ..distill.teacher import load_teacher
from ..errors import KdnasError
from ..models import arch_of_model_dir
from ..outdirs import FolderLock
from ..paths import default_space
from ..predictors.identity import fingerprint_warning
from ..predictors.registry import load_predictor
from ..space import Arch, SearchSpace, Shape
from ..validate import check_writable
from . import budgetcheck
from .baselines import BaselineStep
from .domain import SearchError
from .evaluators import Evaluator, EvaluatorContext, evaluator_for
from .evaluators.base import task_name
from .executor import actor_options
from .final import FinalJob, FinalStep
from .front import FrontStep
from .memory_budget import MemoryStep, within_memory
from .request import SearchRequest
from .result import EventFn, PostStep
from .runfolder import run_data
from .study import LatencyTable, SearchConfig, Study, check_budgets


@dataclass
class SearchPlan:
    """Everything a checked search runs with. ``steps`` refine the study's result in order."""

    request: SearchRequest
    ctx: EvaluatorContext
    predictor: Any
    evaluator: Evaluator
    study: Study
    steps: list[PostStep]
    notes: list[str] = field(default_factory=list)  # lines for the user once the evaluator is set up
    lock: FolderLock | None = None  # held on the run folder from the checks until the search ends
    resumed: bool = False  # the run folder already holds this search (run.json)

    @property
    def run(self) -> Path:
        return self.ctx.run

    @property
    def task(self) -> str:
        return task_name(self.ctx.task)


def _auto_space(req: SearchRequest) -> bool:
    """``--space auto``, and the default whenever a teacher scores the candidates (not with ``--table``)."""
    wants = req.space is not None and req.space.strip().lower() == AUTO
    if wants and req.table:
        raise SearchError("--space auto derives the space from a teacher; with --table pass a space TOML")
    return wants or (req.space is None and req.table is None)


def _head_dim(req: SearchRequest, teacher: str | None) -> int | None:
    """The head size candidates are restricted to (``None``: any); ``"teacher"`` reads the teacher's config."""
    if req.head_dim is None or isinstance(req.head_dim, int):
        return req.head_dim
    if teacher is None:
        raise SearchError("--head-dim teacher needs a teacher (not --table)")

    cfg = load_teacher(teacher).model.config
    return int(cfg.hidden_size) // int(cfg.num_attention_heads)


def _candidates(req: SearchRequest, ctx: EvaluatorContext, evaluator: Evaluator, predictor: Any,
                head_dim: int | None) -> tuple[list[Arch], dict[Arch, float]]:
    """The evaluator's candidates, restricted to ``head_dim`` and to the memory budget (with every candidate's
    predicted peak MiB)."""
    archs = evaluator.candidates(ctx.space)
    if head_dim is not None:
        archs = [a for a in archs if a.head_dim == head_dim]
        if not archs:
            raise SearchError(f"no arch of space '{ctx.space.name}' has head size {head_dim} (hidden / heads)")
        ctx.say(f"candidates restricted to head size {head_dim}: {len(archs)} archs")
    if req.budget_mb is None:
        return archs, {}
    return within_memory(predictor, archs, req.shape, req.budget_mb)


def accelerators(req: SearchRequest) -> tuple[Any, str, float]:
    """(this process's accelerator, the candidates' accelerator name, each Ray worker's GPU share). With Ray
    GPU shares the candidates train on the GPU Ray gives their worker, whatever this process has."""
    from ..distill.accelerator import resolve  # noqa: PLC0415  lazy: torch (via distill.accelerator)

    gpus = req.gpus_per_candidate
    if gpus is not None and req.executor != "ray":
        raise SearchError("--gpus-per-candidate is for --executor ray (a local search trains on --accelerator)")
    if gpus is not None:
        actor_options(gpus)  # a negative or fractional-above-1 share: refused before any work
        if gpus > 0 and req.accelerator.strip().lower() == "cpu":
            raise SearchError(f"--gpus-per-candidate {gpus:g} asks for GPUs but --accelerator is cpu")
    acc = resolve(req.accelerator)
    if gpus is None:
        gpus = 1.0 if req.executor == "ray" and acc.is_cuda else 0.0
    return acc, "cuda" if gpus > 0 else acc.name, float(gpus)


def _baselines(req: SearchRequest, job: FinalJob, predictor: Any, measure: Any, emit: EventFn) -> BaselineStep:
    """The hand-crafted shapes, scaled by the search's predictor to each budget (its prediction, as the hard
    reward judges it), distilled with the final's recipe."""
    assert req.final is not None

    def predicted(arch: Arch) -> float:
        return float(predictor.predict_interval([(arch, req.shape)]).mid[0])

    return BaselineStep(job, req.final.baselines, req.final.baseline_seeds, predicted, measure, emit)


def prepare(req: SearchRequest, on_event: EventFn | None = None, *, progress: bool = False) -> SearchPlan:
    """Check ``req`` against everything it names and lay the search out. Nothing expensive runs here except
    the default teacher's fine-tuning (when no teacher is given, and only after the request's own checks)."""
    emit: EventFn = on_event or (lambda kind, data: None)
    acc, candidate_acc, gpus = accelerators(req)  # --accelerator cuda without a GPU: the one-line error, first
    if acc.is_cuda:
        info = acc.describe()
        emit("message", {"text": f"training on {info['gpu']} ({info['precision']})"})
    own = None if req.agnostic else get_task(req.task)
    # evaluators and the final get a GLUE task by name (their run.json entries as ever), one's own as the Task
    task: TaskRef = AGNOSTIC if own is None else own.name if own.is_glue else own
    name = AGNOSTIC if own is None else own.name
    if req.text and not req.agnostic:
        raise SearchError("--text is for --task agnostic (a GLUE task reads --data-dir)")
    predictor = load_predictor(req.key.device_id, req.key.backend, req.key.threads, root=req.predictors,
                               speed=req.speed)
    if predictor.calibration is not None:
        emit("message", {"text": predictor.calibration.describe()})
    if req.budget_mb is not None and not predictor.memory:
        within_memory(predictor, [], req.shape, req.budget_mb)  # the one-line error, before any work
    auto = _auto_space(req)  # the teacher's students, once the evaluator knows its teacher
    space_file = "" if auto else req.space or str(default_space())
    run = Path(req.run_dir) if req.run_dir else Path("runs") / f"search-{name}-{req.seed}"
    ctx = EvaluatorContext(req, run, task, SearchSpace.load(space_file or default_space()), space_file,
                           req.recipe.losses or "", emit, progress, auto,
                           accelerator=acc.name, candidate_accelerator=candidate_acc, gpus_per_candidate=gpus)
    check_writable("--out", run)  # also the default, before a default teacher is fine-tuned into it
    if own is not None:
        from ..distill.taskfiles import check_run_data  # noqa: PLC0415  lazy: pyarrow (via distill.taskfiles)

        check_run_data(run_data(run), own, f"run folder {run}")  # resuming: refuse data that changed, in one line
    lock = FolderLock(run, "--out", note=lambda text: emit("message", {"text": f"note: {text}"})).acquire()
    try:
        return _lay_out(req, emit, ctx, own, predictor, acc, lock, progress)
    except BaseException:
        lock.release()  # a refused search leaves no file behind (a run folder it created goes too)
        raise


def _lay_out(req: SearchRequest, emit: EventFn, ctx: EvaluatorContext, own: Any, predictor: Any, acc: Any,
             lock: FolderLock, progress: bool) -> SearchPlan:
    """The rest of :func:`prepare`, with the run folder locked: the evaluator, the candidates, the budgets, the
    study (checked against a ``run.json`` already there) and the post-steps. Written last: the derived space."""
    run, task, auto = ctx.run, ctx.task, ctx.auto_space
    kind = evaluator_for(req)
    if req.final is not None and not kind.distils:
        raise SearchError("--final needs a teacher (it distils the winners); it cannot run with "
                          + ("--table" if req.table else f"--evaluator {kind.name}"))
    evaluator = kind.from_request(req, ctx)
    ctx.teacher_space(evaluator.teacher)  # an evaluator that did not ask for its teacher's space gets it here
    head_dim = _head_dim(req, evaluator.teacher)
    archs, memory_mb = _candidates(req, ctx, evaluator, predictor, head_dim)
    latency = LatencyTable(predictor, archs, req.shape)
    check_budgets(latency, req.reward)
    notes = []  # said after the evaluator's setup, so a bad-input error stays one line
    if ctx.teacher_check is not None:
        notes.append(ctx.teacher_check.message)
    if auto:
        notes.append(f"student space derived from the teacher ({ctx.space.name}: {ctx.space.size} archs), written to "
                     f"{ctx.space_file}; repeat with --space {ctx.space_file}")
    outside = sum(latency[a][3] for a in archs)
    if outside:
        notes.append(f"warning: {outside} of {len(archs)} candidate archs lie outside the latency predictor's "
                     "profiled range: their predicted latencies are extrapolations (out_of_range in the records)")
    described = {k: v for k, v in evaluator.describe().items() if k != "data_dir"}  # the same data elsewhere resumes
    config = SearchConfig(device_id=req.key.device_id, backend=req.key.backend, threads=req.key.threads,
                          shape=req.shape, reward=req.reward, strategy=req.strategy, episodes=req.episodes,
                          candidates=req.candidates, seed=req.seed, evaluator=described,
                          space=evaluator.space_label(ctx.space), budget_mb=req.budget_mb, head_dim=head_dim)
    reference_ms = (predictor.meta.get("drift") or {}).get("reference_canary_ms")
    # on another CPU behind the predictor's device id the canary's ratio does not convert a model's time: measured
    # latency is judged as timed here (the machine warning has said the predictions may not hold)
    raw = fingerprint_warning(req.key, predictor.meta) is not None
    if raw and req.reward.hard and reference_ms:
        emit("message", {"text": "the budget check judges measured latency as timed here, not at the predictor's "
                                 "reference speed: this CPU is not the one the predictor was profiled on"})
    at_reference = req.speed == "reference" and not raw
    measure = budgetcheck.make_measurer(req.key.device_id, req.shape, req.key.backend, req.key.threads,
                                        reference_ms if at_reference else None,
                                        _teacher_beside(evaluator.teacher, predictor, req.shape) if at_reference
                                        else None) if req.reward.hard else None
    budget = budgetcheck.BudgetStep(run, req.reward, measure, emit, raw, req.budget_margin)
    # the re-ranking's shortlist lets a budget straddler in only once measured within the budget
    ctx.budget_gate = budget.check().admits if measure is not None else None
    steps = evaluator.post_steps(ctx)
    if req.front is not None:  # the winners picked from the front, before the budget check and the final
        steps.append(FrontStep(req, run, evaluator.teacher, task, ctx.losses, evaluator.supernet, acc.name, req.front))
    steps.append(budget)
    final = req.final_recipe  # the final job, built here only
    if req.final is not None and final is not None:
        job = FinalJob(evaluator.teacher, task, req.key, req.shape, final, req.data_dir, req.text,
                       evaluator.supernet, req.budget_mb, progress, acc.name, None if raw else reference_ms)
        steps.append(FinalStep(job, emit))
        if req.final.baselines and not req.agnostic:  # task-agnostic KD has no task head to compare
            steps.append(_baselines(req, job, predictor, measure, emit))
    if memory_mb:
        steps.append(MemoryStep(memory_mb))
    study = Study(run, config, evaluator, latency)
    resumed = study.check_run()  # a different search in the folder: refused here, naming what differs
    if auto:
        write_space(ctx.space, run)
    return SearchPlan(req, ctx, predictor, evaluator, study, steps, notes, lock, resumed)


def _teacher_beside(teacher: str | None, predictor: Any, shape: Shape) -> tuple[Arch, float] | None:
    """The teacher's arch and predicted latency at ``shape``, for the budget check to measure beside (None: the
    search has no teacher folder whose shape can be read, or the predictor does not cover it: the canary then)."""
    if teacher is None or not (Path(teacher) / "config.json").is_file():
        return None
    try:
        arch = arch_of_model_dir(Path(teacher))
        pred = predictor.predict_interval([(arch, shape)])
    except (KdnasError, ValueError, KeyError):
        return None
    if bool(pred.out_of_range[0]) or not float(pred.mid[0]) > 0:
        return None
    return arch, float(pred.mid[0])
