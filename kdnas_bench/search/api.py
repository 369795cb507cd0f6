"""A whole search as one library call: :func:`run_search` takes a typed :class:`SearchRequest` and returns a
:class:`SearchOutcome`. The CLI (``kdnas-bench search``), the quickstart and the benchmarks all go through it.

The path a request takes: load the latency predictor and the space -> check the run folder -> pick the
evaluator (a table, task-agnostic KD, proxy distillation, or a supernet's sub-networks; the default teacher is
fine-tuned into ``RUN/teacher`` when none is given) -> predicted latency of every candidate and the budgets
checked against the fastest -> (supernet: train or reuse it) -> :class:`~kdnas_bench.search.study.Study` runs
the episodes -> (supernet: re-rank the best by proxy) -> (``final``: distil, export and measure the winners)
-> ``RUN/result.json`` and ``RUN/summary.json``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..defaults import DEFAULTS, INITS
from ..errors import KdnasError
from ..keys import DatasetKey
from ..space import Shape
from .reward import MODES, RewardSpec

if TYPE_CHECKING:
    from .study import EventFn, SearchResult

EVALUATORS = ("proxy", "supernet")
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class SupernetOptions:
    """The supernet evaluator: its folder (None: ``RUN/supernet``), training size, and the proxy re-ranking of
    the best ``rerank_top`` candidates per budget (0: none)."""

    folder: str | None = None
    examples: int = 4000
    epochs: float = 2.0
    rerank_top: int = 4
    rerank_examples: int = 500
    rerank_epochs: float = 2.0

    def __post_init__(self) -> None:
        _positive(examples=self.examples, epochs=self.epochs, rerank_examples=self.rerank_examples,
                  rerank_epochs=self.rerank_epochs)
        if self.rerank_top < 0:
            raise KdnasError(f"rerank_top must be 0 or more, got {self.rerank_top}")


@dataclass(frozen=True)
class FinalOptions:
    """Final distillation of each winner: ``examples`` None is the whole train set."""

    examples: int | None = None
    epochs: float = 3.0

    def __post_init__(self) -> None:
        _positive(examples=self.examples, epochs=self.epochs)


@dataclass(frozen=True)
class SearchRequest:
    """Everything a search needs. ``task`` is a GLUE task or ``"agnostic"`` (task-agnostic KD on ``text``);
    ``table`` scores candidates from precomputed accuracies instead of distilling them; ``losses`` None takes
    the default of the task kind (:data:`~kdnas_bench.search.defaults.DEFAULTS`); ``final`` None skips the final
    distillation."""

    key: DatasetKey
    budgets_ms: tuple[float, ...]
    task: Any  # a GLUE name, "agnostic", or a Task of one's own (distill.taskfiles.own_task)
    reward_w: float = DEFAULTS.reward_w
    mode: str = "hard"
    shape: Shape = field(default_factory=lambda: Shape(DEFAULTS.batch, DEFAULTS.seq))
    strategy: str = "kdnas"
    episodes: int = 15
    candidates: int = 20
    seed: int = 0
    evaluator: str = "proxy"
    table: str | None = None
    teacher: str | None = None
    teacher_examples: int = DEFAULTS.teacher_examples
    data_dir: str | None = None
    text: str | None = None
    proxy_examples: int = DEFAULTS.proxy_examples
    proxy_epochs: float = DEFAULTS.proxy_epochs
    losses: str | None = None
    init: str = "inherit"
    supernet: SupernetOptions = field(default_factory=SupernetOptions)
    final: FinalOptions | None = None
    space: str | None = None
    predictors: str | None = None
    run_dir: str | None = None
    executor: str = "local"
    ray_address: str | None = None
    budget_mb: float | None = None  # peak-memory hard constraint (MiB), from the predictor's memory model
    # Only candidates whose head size (hidden / heads) is this: an int, or "teacher" for the teacher's own. With
    # inherited weights such a student keeps whole teacher heads; other sizes merge or split them.
    head_dim: int | str | None = None

    def __post_init__(self) -> None:
        from .strategies import STRATEGIES

        _positive(threads=self.key.threads, episodes=self.episodes, candidates=self.candidates,
                  proxy_examples=self.proxy_examples, proxy_epochs=self.proxy_epochs,
                  teacher_examples=self.teacher_examples, budget_mb=self.budget_mb)
        for name, value, allowed in (("strategy", self.strategy, tuple(STRATEGIES)), ("evaluator", self.evaluator,
                                     EVALUATORS), ("init", self.init, INITS), ("executor", self.executor, EXECUTORS),
                                     ("mode", self.mode, MODES)):
            if value not in allowed:
                raise KdnasError(f"unknown {name} '{value}' (choose from {', '.join(allowed)})")
        RewardSpec(tuple(self.budgets_ms), w=self.reward_w, mode=self.mode)  # validates budgets and w
        if self.head_dim is not None and self.head_dim != "teacher" and not (
                isinstance(self.head_dim, int) and not isinstance(self.head_dim, bool) and self.head_dim > 0):
            raise KdnasError(f"--head-dim must be a positive integer or 'teacher', got {self.head_dim!r}")

    @property
    def reward(self) -> RewardSpec:
        return RewardSpec(tuple(self.budgets_ms), w=self.reward_w, mode=self.mode)

    @property
    def agnostic(self) -> bool:
        from ..distill.agnostic import AGNOSTIC

        return isinstance(self.task, str) and self.task.strip().lower() == AGNOSTIC


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

    def summary(self) -> dict[str, Any]:
        """``summary.json``: the result without its per-episode history."""
        data = self.result.to_dict()
        data.pop("history")
        return data


def parse_head_dim(text: str | None) -> int | str | None:
    """``--head-dim`` as typed: a number becomes an int; anything else is passed on for
    :class:`SearchRequest` to accept (``"teacher"``) or refuse in one line."""
    if text is None:
        return None
    t = text.strip().lower()
    return int(t) if t.lstrip("-").isdigit() else t


def _positive(**values: int | float | None) -> None:
    for name, value in values.items():
        if value is not None and not (math.isfinite(value) and value > 0):
            raise KdnasError(f"{name} must be positive, got {value}")


def _say(emit: EventFn, text: str) -> None:
    emit("message", {"text": text})


def default_teacher(run: Path, task: Any, data_dir: str | None, examples: int, seed: int, emit: EventFn) -> str:
    """No teacher given: fine-tune the packaged all-MiniLM-L6-v2 on the task once, into RUN/teacher."""
    from ..distill.teacher import finetune

    folder = run / "teacher"
    if (folder / "config.json").is_file():
        return str(folder)
    name = getattr(task, "name", task)
    _say(emit, f"no --teacher: fine-tuning the packaged all-MiniLM-L6-v2 on {name} ({examples} examples, 1 epoch) "
               f"into {folder}")
    finetune(task, data_dir=data_dir, max_examples=examples, epochs=1.0, seed=seed, out=folder)
    return str(folder)


def _head_dim(req: SearchRequest, teacher: str | None) -> int | None:
    """The head size candidates are restricted to (``None``: any); ``"teacher"`` reads the teacher's config."""
    if req.head_dim is None or isinstance(req.head_dim, int):
        return req.head_dim
    if teacher is None:
        raise KdnasError("--head-dim teacher needs a teacher (not --table)")
    from ..distill.teacher import load_teacher

    cfg = load_teacher(teacher).model.config
    return int(cfg.hidden_size) // int(cfg.num_attention_heads)


def _train_supernet(req: SearchRequest, teacher: str, task: Any, space: Any, folder: str, emit: EventFn,
                    progress: bool) -> None:
    """Reuse the supernet in ``folder`` (checked against teacher, task and space) or train it there."""
    from ..supernet import SupernetConfig
    from ..supernet.train import ensure_supernet

    opts = req.supernet

    def started(info: dict[str, Any]) -> None:
        what = "resuming" if info["start"] else "training"
        _say(emit, f"{what} the supernet in {folder}: {info['total']} steps (sandwich: {info['largest']} + "
                   f"{info['smallest']} + 2 random per step; {opts.examples} examples × {opts.epochs:g} epochs)")

    _, doc = ensure_supernet(teacher, task, space, folder, data_dir=req.data_dir,
                             cfg=SupernetConfig(examples=opts.examples, epochs=opts.epochs, seed=req.seed),
                             progress=progress, on_start=started)
    _say(emit, f"supernet {folder}: trained in {doc.get('train_seconds', 0):.0f} s ({doc.get('steps')} steps)")


def run_search(req: SearchRequest, on_event: EventFn | None = None, *, progress: bool = False) -> SearchOutcome:
    """Run the search ``req`` describes, resumably, in its run folder; return its winners.

    ``on_event(kind, data)`` sees ``message`` (a line for the user), ``start`` (before the episodes),
    ``note``, ``episode``, ``evaluation``, ``episode_done`` (the study's events) and ``end`` (after the
    episodes). Bad input raises :class:`~kdnas_bench.errors.KdnasError` before any expensive work."""
    from ..distill.agnostic import AGNOSTIC
    from ..distill.data import get_task
    from ..distill.taskfiles import check_run_data
    from ..paths import default_space
    from ..predictors.registry import load_predictor
    from ..space import SearchSpace
    from ..validate import check_writable
    from .evaluators import ProxyDistillEvaluator, SupernetEvaluator, TableEvaluator
    from .executor import make_executor
    from .final import finalize
    from .memory_budget import within_memory
    from .rerank import RerankConfig, rerank
    from .runfolder import run_data
    from .study import LatencyTable, SearchConfig, Study, check_budgets

    emit: EventFn = on_event or (lambda kind, data: None)
    spec = req.reward
    agnostic = req.agnostic
    oneshot = req.evaluator == "supernet"
    task: Any = AGNOSTIC if agnostic else get_task(req.task)  # a Task from here on (a GLUE one or one's own)
    task_name = AGNOSTIC if agnostic else task.name
    if req.text and not agnostic:
        raise KdnasError("--text is for --task agnostic (a GLUE task reads --data-dir)")
    losses = req.losses or DEFAULTS.search_losses_for(agnostic)
    predictor = load_predictor(req.key.device_id, req.key.backend, req.key.threads, root=req.predictors)
    if req.budget_mb is not None and not predictor.memory:
        within_memory(predictor, [], req.shape, req.budget_mb)  # the one-line error, before any work
    space_file = req.space or str(default_space())
    space = SearchSpace.load(space_file)
    run = Path(req.run_dir) if req.run_dir else Path("runs") / f"search-{task_name}-{req.seed}"
    check_writable("--run", run)  # also the default, before a default teacher is fine-tuned into it
    if not agnostic:
        check_run_data(run_data(run), task, f"run folder {run}")  # resume: refuse data that changed
    if oneshot and (req.table or agnostic):
        raise KdnasError("--evaluator supernet needs a GLUE task and a teacher (not --table or --task agnostic)")
    if req.final is not None and req.table:
        raise KdnasError("--final needs a teacher (it distils the winners); it cannot run with --table")
    supernet_folder = str(Path(req.supernet.folder) if req.supernet.folder else run / "supernet")
    evaluator: Any
    teacher_ref: str | None
    if req.table:
        evaluator = TableEvaluator(req.table)
        archs = evaluator.archs()
        teacher_ref = None
    elif agnostic:
        from ..distill.agnostic import load_text
        from ..distill.teacher import load_teacher

        if req.teacher is not None:
            load_teacher(req.teacher)  # fail fast on a missing teacher
        _, source = load_text(req.text)
        _say(emit, f"task-agnostic distillation: teacher {req.teacher or 'the packaged all-MiniLM-L6-v2 backbone'}, "
                   f"text: {source}")
        evaluator = ProxyDistillEvaluator(teacher=req.teacher, task=AGNOSTIC, text=req.text,
                                          proxy_examples=req.proxy_examples, epochs=req.proxy_epochs, losses=losses,
                                          seed=req.seed)
        teacher_ref = req.teacher
        archs = list(space.archs)
    else:
        from ..distill.teacher import load_teacher

        teacher_ref = req.teacher or default_teacher(run, task, req.data_dir, req.teacher_examples, req.seed,
                                                     emit)
        load_teacher(teacher_ref, task=task)  # fail fast on a missing or mismatched teacher
        if oneshot:
            from ..distill.inherit import TeacherShape
            from ..supernet import space_fits

            space_fits(space, TeacherShape.of(load_teacher(teacher_ref).model.config))  # before any training
            evaluator = SupernetEvaluator(supernet=supernet_folder, teacher=teacher_ref, task=task,
                                          space=space_file, data_dir=req.data_dir)
        else:
            evaluator = ProxyDistillEvaluator(teacher=teacher_ref, task=task, data_dir=req.data_dir,
                                              proxy_examples=req.proxy_examples, epochs=req.proxy_epochs,
                                              losses=losses, seed=req.seed, init=req.init)
        archs = list(space.archs)
    opts = req.supernet
    rerank_cfg = (RerankConfig(opts.rerank_top, opts.rerank_examples, opts.rerank_epochs)
                  if oneshot and opts.rerank_top else None)
    rerank_desc = {"rerank": rerank_cfg.to_dict(), "losses": losses} if rerank_cfg else {}
    head_dim = _head_dim(req, teacher_ref)
    if head_dim is not None:
        archs = [a for a in archs if a.head_dim == head_dim]
        if not archs:
            raise KdnasError(f"no arch of space '{space.name}' has head size {head_dim} (hidden / heads)")
        _say(emit, f"candidates restricted to head size {head_dim}: {len(archs)} archs")
    memory_mb: dict[Any, float] = {}
    if req.budget_mb is not None:
        archs, memory_mb = within_memory(predictor, archs, req.shape, req.budget_mb)
    latency = LatencyTable(predictor, archs, req.shape)
    check_budgets(latency, spec)
    if oneshot:  # bad input is checked above; now the expensive part
        _train_supernet(req, str(teacher_ref), task, space, supernet_folder, emit, progress)
    config = SearchConfig(device_id=req.key.device_id, backend=req.key.backend, threads=req.key.threads,
                          shape=req.shape, reward=spec, strategy=req.strategy, episodes=req.episodes,
                          candidates=req.candidates, seed=req.seed,
                          evaluator={**{k: v for k, v in evaluator.describe().items() if k != "data_dir"},
                                     **rerank_desc},
                          space=req.table or space.name, budget_mb=req.budget_mb, head_dim=head_dim)
    ex = make_executor(req.executor, req.ray_address)
    study = Study(run, config, evaluator, latency, ex)
    emit("start", {"task": task_name, "run": str(run), "config": config})
    try:
        result = study.run(emit)
    finally:
        ex.close()
        emit("end", {})
    if rerank_cfg is not None:
        _say(emit, f"re-ranking the best {rerank_cfg.top} per budget by proxy distillation (successive halving, "
                   f"{rerank_cfg.examples} examples × {rerank_cfg.epochs:g} epochs first) …")
        result = rerank(study, result, rerank_cfg, lambda n, e: ProxyDistillEvaluator(
            teacher=str(teacher_ref), task=task, data_dir=req.data_dir, proxy_examples=n, epochs=e,
            losses=losses, seed=req.seed, supernet=supernet_folder))
        study.write_result(result)
    if req.final is not None:
        _say(emit, "final distillation of the winners …")
        result = finalize(result, teacher=teacher_ref, task=task, data_dir=req.data_dir,
                          device_id=req.key.device_id, backend=req.key.backend, threads=req.key.threads,
                          shape=req.shape, max_examples=req.final.examples, epochs=req.final.epochs, losses=losses,
                          seed=req.seed, progress=progress, text=req.text, init=req.init,
                          supernet=supernet_folder if oneshot else None, budget_mb=req.budget_mb)
        study.write_result(result)
    if memory_mb:
        result = replace(result, winners=[replace(w, extra={**w.extra, "predicted_peak_mb": memory_mb[w.arch]})
                                          for w in result.winners])
        study.write_result(result)
    outcome = SearchOutcome(result, run, task_name, teacher_ref, req.final is not None,
                            predictor.memory_method if req.budget_mb is not None else None)
    (run / "summary.json").write_text(json.dumps(outcome.summary(), indent=2, default=str) + "\n")
    return outcome


__all__ = ["FinalOptions", "SearchOutcome", "SearchRequest", "SupernetOptions", "default_teacher", "parse_head_dim",
           "run_search"]

