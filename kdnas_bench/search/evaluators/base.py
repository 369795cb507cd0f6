"""What every evaluator is: :class:`Evaluator` (``from_request``, ``evaluate``, ``describe``), what it returns
(:class:`Evaluation`) and what it is built from besides the request (:class:`EvaluatorContext`).

An evaluator gives a candidate arch the accuracy term of its reward. Its ``describe()`` goes into ``run.json``
and must stay the same for the same options (a resumed run is refused when it changes). What it loads (a
teacher, data, a supernet) it keeps on itself, so it lives as long as the search and not longer; it is not
pickled with it (a Ray worker loads its own copy once)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ...autospace import AUTO, resolve_space
from ...distill.baseline import check_teacher
from ...distill.taskspec import TaskRef
from ...distill.teacher import default_backbone_path, load_teacher
from ...errors import KdnasError
from ...space import Arch, SearchSpace
from ..domain import SearchError
from ..request import SearchRequest
from ..result import Evaluation, EventFn, PostStep


@dataclass
class EvaluatorContext:
    """What a search knows besides its request when it builds the evaluator: the run folder, the task's
    canonical name, the space (and its file), the KD losses of the task kind, where messages go, and whether
    to draw progress bars. The request itself is here too, so an evaluator reads any option from it."""

    request: SearchRequest
    run: Path
    task: TaskRef  # the GLUE task's name, "agnostic", or a Task of one's own (distill.taskfiles)
    space: SearchSpace
    space_file: str
    losses: str
    emit: EventFn = lambda kind, data: None
    progress: bool = False
    auto_space: bool = False  # --space auto: ``space`` becomes the teacher's students once the teacher is known
    accelerator: str = "cpu"  # where this process trains (default teacher, supernet, re-ranking, final)
    candidate_accelerator: str = "cpu"  # where candidates train (a Ray GPU share makes it "cuda")
    gpus_per_candidate: float = 0.0  # each Ray worker's GPU share
    teacher_check: Any = None  # the task teacher against the trivial baseline (distill.baseline.TeacherCheck)
    # the budget check's gate (search.rerank.Gate; hard reward on the predictor's device, else None): an evaluator
    # that shortlists candidates by their scores lets in a budget straddler only once it is measured within it
    budget_gate: Any = None

    def say(self, text: str) -> None:
        self.emit("message", {"text": text})

    def teacher_space(self, teacher: str | None) -> None:
        """With ``auto_space``: the space becomes the students of ``teacher`` (None: the packaged backbone),
        derived from its config, to be written to ``RUN/space.toml`` (:mod:`kdnas_bench.autospace`)."""
        if not self.auto_space:
            return
        if teacher is None:
            from transformers import AutoConfig  # noqa: PLC0415  lazy: transformers

            config = AutoConfig.from_pretrained(str(default_backbone_path()))
        else:
            config = load_teacher(teacher).model.config
        self.space, self.space_file = resolve_space(AUTO, config, self.run, teacher=teacher or "all-MiniLM-L6-v2",
                                                    write=False)  # written once the search passed every check
        self.auto_space = False

    def task_teacher(self) -> str:
        """The request's teacher, checked against the task and its trivial baseline (a weak one refused unless
        ``allow_weak_teacher``; what was found is kept in ``teacher_check``); none given: the packaged
        all-MiniLM-L6-v2 fine-tuned on the task once, into ``RUN/teacher``. With ``auto_space`` the space is the
        teacher's students from here."""

        req = self.request
        teacher = req.teacher or default_teacher(self.run, self.task, req.data_dir, req.teacher_examples, req.seed,
                                                 self.emit, self.accelerator)
        load_teacher(teacher, task=self.task)  # fail fast on a missing or mismatched teacher

        # a teacher that does not beat the trivial answer: refused here, before the supernet or any candidate
        self.teacher_check = check_teacher(teacher, self.task, req.data_dir, allow_weak_teacher=req.allow_weak_teacher)
        self.teacher_space(teacher)
        return teacher


def default_teacher(run: Path, task: TaskRef, data_dir: str | None, examples: int, seed: int, emit: EventFn,
                    accelerator: str = "cpu") -> str:
    """No teacher given: fine-tune the packaged all-MiniLM-L6-v2 on the task once, into RUN/teacher."""
    from ...distill.finetuning import finetune  # noqa: PLC0415  lazy: torch (via distill.finetuning)

    folder = run / "teacher"
    if (folder / "config.json").is_file():
        return str(folder)
    emit("message", {"text": f"no --teacher: fine-tuning the packaged all-MiniLM-L6-v2 on {task_name(task)} ({examples} "
                             f"examples, 1 epoch) into {folder}"})
    finetune(task, data_dir=data_dir, max_examples=examples, epochs=1.0, seed=seed, out=folder, accelerator=accelerator)
    return str(folder)


def task_name(task: TaskRef) -> str:
    """A task's name: a GLUE name or "agnostic" as it is, a Task of one's own by its ``name``."""
    return str(getattr(task, "name", task))


def task_fields(task: TaskRef) -> dict[str, Any]:
    """How ``run.json`` records a task: its name, and for a task of one's own its spec as ``data`` (files, content
    hash), so a GLUE run's entry is what it always was and a resumed run can check its data."""
    spec = task.spec() if hasattr(task, "spec") else None
    return {"task": task_name(task), **({"data": spec} if spec else {})}


def no_cpu(described: dict[str, Any]) -> dict[str, Any]:
    """An evaluator's ``run.json`` entry with ``accelerator`` only when it is not the CPU (so CPU runs keep the
    entry they always had, and resume; a GPU run is not resumed as a CPU one)."""
    if described.get("accelerator", "cpu") == "cpu":
        described.pop("accelerator", None)
    return described


def extract(net: Any, arch: Arch) -> Any:
    """``arch``'s sub-network of the supernet ``net``; one that cannot be built is that candidate's failure."""
    from ...distill.accelerator import CandidateFailure  # noqa: PLC0415  lazy: torch (via distill.accelerator)

    try:
        return net.extract(arch)
    except (KdnasError, ValueError, RuntimeError, IndexError) as exc:
        if isinstance(exc, RuntimeError) and "out of memory" in str(exc):
            raise
        raise CandidateFailure(f"cannot build sub-network {arch}: {' '.join(str(exc).split())[:300]}") from None


class Evaluator(ABC):
    """The base of every evaluator. A new one is a module with a subclass and one ``register`` in
    :data:`~kdnas_bench.search.evaluators.EVALUATORS` (from another package: one entry point of the group
    ``kdnas_bench.evaluators``); :func:`kdnas_bench.testing.check_evaluator_class` checks it.

    It owns its options (``Options``, a dataclass: :meth:`options_of` reads them from the request) and says in
    words what its ``run.json`` entry means (:meth:`explain`, :meth:`score_label`), so nothing outside its module
    switches on its name."""

    name: ClassVar[str] = ""  # its key in the registry: ``--evaluator``, and ``kind`` in run.json
    aliases: ClassVar[tuple[str, ...]] = ()  # old spellings of its name, still accepted
    distils: ClassVar[bool] = True  # it has a teacher to distil the winners from (``--final``)
    inputs: ClassVar[str] = "task"  # what it scores from: "task" (a teacher and task data), "text", "table"
    # it scores a candidate in seconds without training it (a supernet's sub-network): a search then defaults to
    # more episodes and candidates, to students of the teacher's head size, and its setup runs on every torchrun
    # process (the supernet is trained by all of them)
    oneshot: ClassVar[bool] = False
    # the request's default evaluator gives way to one that takes the request over (:meth:`takes_over`)
    gives_way: ClassVar[bool] = False
    Options: ClassVar[type[Any] | None] = None  # its options dataclass (None: it has none)
    teacher: str | None = None  # the teacher it distils from, when it has one (the final distillation reuses it)
    supernet: str | None = None  # a supernet folder whose sub-networks students start from (the final ones too)

    @classmethod
    def check(cls, req: SearchRequest) -> None:
        """Refuse, in one line (:class:`KdnasError`), a request this evaluator cannot serve; cheap, no loading."""
        return None

    @classmethod
    def takes_over(cls, req: SearchRequest) -> bool:
        """Whether this evaluator serves ``req`` in place of a default that gives way (a table, unlabeled text)."""
        return False

    @classmethod
    def options_of(cls, req: SearchRequest) -> Any:
        """Its options for ``req``: the request's ``evaluator_options`` when given (an instance of ``Options``),
        else :meth:`options_from_fields`."""
        given = getattr(req, "evaluator_options", None)
        if given is None:
            return cls.options_from_fields(req)
        if cls.Options is None or not isinstance(given, cls.Options):
            want = "no options" if cls.Options is None else f"options of type {cls.Options.__name__}"
            raise SearchError(f"--evaluator {cls.name} takes {want}, got {type(given).__name__}")
        return given

    @classmethod
    def options_from_fields(cls, req: SearchRequest) -> Any:
        """Its options from the request's own fields (the CLI's flags); default: ``Options()`` (None: no options)."""
        return None if cls.Options is None else cls.Options()

    # -- what its run.json entry means, in the report ---------------------------------------------------
    @classmethod
    def explain(cls, entry: dict[str, Any]) -> str:
        """The ``run.json`` entry this evaluator wrote (:meth:`describe`), in words, for the run report."""
        return "Scores: " + "; ".join(f"{k.replace('_', ' ')} {v}" for k, v in entry.items()) + "."

    @classmethod
    def score_label(cls, metric_name: str) -> str:
        """What its scores are, as an axis label of the run report's plots."""
        return f"{metric_name} ({cls.name} scores)"

    @classmethod
    @abstractmethod
    def from_request(cls, req: SearchRequest, ctx: EvaluatorContext) -> Evaluator:
        """Build it for a search; bad input raises :class:`KdnasError` here, before any expensive work."""

    def candidates(self, space: SearchSpace) -> list[Arch]:
        """The archs the search may propose (the space's; a table evaluator: its rows)."""
        return list(space.archs)

    def space_label(self, space: SearchSpace) -> str:
        """What ``run.json`` calls the candidates' space (the space's name; a table evaluator: its file)."""
        return space.name

    def setup(self, ctx: EvaluatorContext) -> None:
        """The expensive preparation, run after every check passed (e.g. training a supernet)."""
        return None

    def post_steps(self, ctx: EvaluatorContext) -> list[PostStep]:
        """Steps this evaluator adds after the study (e.g. re-ranking by a finer evaluator)."""
        return []

    @abstractmethod
    def evaluate(self, arch: Arch) -> Evaluation:
        """Score ``arch``: deterministic for the same options and arch."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """A JSON object with ``kind`` and every option that changes a score (``run.json`` records it)."""

    # -- what it loads, kept on the object ------------------------------------------------------------
    def loaded(self, load: Callable[[], Any]) -> Any:
        """``load()``'s value, computed on first use and kept on this evaluator."""
        if "_loaded" not in self.__dict__:
            object.__setattr__(self, "_loaded", load())  # also on a frozen dataclass
        return self.__dict__["_loaded"]

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_loaded"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
