"""``kdnas-bench quickstart``: the whole pipeline on this machine, offline, in minutes. The command parses its
options into a :class:`~kdnas_bench.quickstart.request.QuickstartRequest`, runs it with
:func:`~kdnas_bench.quickstart.pipeline.run_quickstart` and renders its events: before each step the command a
user would type for it (derived from the step that runs), so every step can be rerun (or scaled up) by hand:

profile this device briefly -> fit its predictor (few-shot transfer from a committed one) -> search under a
predicted budget with proxy distillation -> fully distil the winner at smoke scale, export it and measure it
-> report the run -> compare the winner with the teacher and well-known students across devices.

With GLUE data (``--data-dir``) it fine-tunes the packaged MiniLM on SST-2 as the teacher. Without, it runs
task-agnostic KD (KD-NAS v2): the packaged MiniLM backbone teaches hidden states and attention relations on
unlabeled text (Python standard-library docstrings, or ``--text``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..progress import LineProgress
from ..quickstart.request import QuickstartRequest
from ..quickstart.steps import SearchStep
from ..search.evaluators import EVALUATORS
from .common import accelerator_option, console
from .compare_view import measuring, print_compare
from .options import RegistryChoice, allow_weak_teacher_option, seed_option
from .search_cmds import Progress as SearchProgress
from .search_view import baselines_table, winners_table
from .task_options import task_options

DEFAULT = {f.name: f.default for f in fields(QuickstartRequest)}


class QuickstartView:
    """Renders :func:`~kdnas_bench.quickstart.pipeline.run_quickstart`'s events: each step's command, the
    profiling and measuring progress, the search's own view, the tables after the search and the compare."""

    def __init__(self) -> None:
        self.search: SearchProgress | None = None
        self.bar: Any = None  # the progress bar (or context) of the profiling or of the measuring
        self.update: Callable[[dict[str, Any]], None] = lambda data: None

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        if kind.startswith("search:"):
            assert self.search is not None
            self.search(kind.removeprefix("search:"), data)
            return
        getattr(self, f"on_{kind}")(data)

    def on_intro(self, data: dict[str, Any]) -> None:
        console.print(f"[bold]kdnas-bench quickstart[/] on {data['device_id']}\n  data: {escape(data['data'])}\n"
                      f"  teacher: {data['teacher']}", highlight=False)

    def on_step(self, data: dict[str, Any]) -> None:
        console.rule(f"[bold]step {data['number']}")
        console.print("$ " + data["command"], highlight=False, style="cyan")
        if isinstance(data["step"], SearchStep):
            self.search = SearchProgress(console, data["step"].request)

    def on_message(self, data: dict[str, Any]) -> None:
        console.print(data["text"], highlight=False, markup=False, style="yellow" if data.get("warning") else None)

    def on_profile_start(self, data: dict[str, Any]) -> None:
        bar: Any = (Progress(TextColumn("profiling"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                             console=console, transient=True) if console.is_terminal else LineProgress("profiling"))
        self.bar = bar
        bar.__enter__()
        task = bar.add_task("profiling", total=data["total"])
        self.update = lambda row: bar.update(task, completed=row["completed"])

    def on_profile_row(self, data: dict[str, Any]) -> None:
        self.update(data)

    def on_measure_start(self, data: dict[str, Any]) -> None:
        self.bar = measuring(True)
        on_measure = self.bar.__enter__()
        self.update = lambda m: on_measure(m["done"], m["total"], m["name"], m["label"])

    def on_measure(self, data: dict[str, Any]) -> None:
        self.update(data)

    def on_profile_end(self, data: dict[str, Any]) -> None:
        error = data["error"]
        self.bar.__exit__(*((type(error), error, error.__traceback__) if error is not None else (None, None, None)))
        self.bar, self.update = None, lambda data: None

    on_measure_end = on_profile_end

    def on_search_done(self, data: dict[str, Any]) -> None:
        outcome = data["outcome"]
        console.print(winners_table(outcome, console.width))
        if any(w.extra.get("baselines") for w in outcome.result.winners):  # did the search beat a MiniLM shape?
            console.print(baselines_table(outcome, console.width))

    def on_compare_done(self, data: dict[str, Any]) -> None:
        print_compare(data["result"], data["images"], detail=False)


def print_done(result: Any) -> None:
    """The winner, its measured latency against the budget, and where the reports are."""
    w, reports = result.winner, result.reports
    held = {True: "held", False: "NOT held", None: "not measured"}[w.get("budget_held")]
    if w.get("budget_verdict") == "not judged" or "outside" in str(w.get("budget_verdict_text", "")):
        held = str(w["budget_verdict_text"]).replace("over", "NOT held", 1)  # the timing's spread says why
    console.rule("[bold]done")
    console.print(f"winner {w['arch']} · final {w.get('final_metric', float('nan')):.4f} · measured "
                  f"{w.get('measured_latency_ms') or float('nan'):.2f} ms vs budget {result.budget_ms:g} ms: {held}\n"
                  f"reports: {reports['compare_html']}, {reports['search_html']} · summary {result.summary_path} · "
                  f"{result.seconds / 60:.1f} min", highlight=False, markup=False)


@click.command("quickstart")
@click.option("--out", default=DEFAULT["out"], show_default=True, type=click.Path(), help="Where everything goes.")
@task_options(required=False, task_help="GLUE task, with --data-dir (default: sst2).",
              data_dir_help="GLUE TSV folder, e.g. glue/ (glue/SST-2/train.tsv). Without it or your own data "
                            "(--train-file): task-agnostic distillation on unlabeled text.")
@click.option("--text", type=click.Path(), help="Unlabeled text for the task-agnostic mode (one passage per line; "
                                                "default: Python stdlib docstrings).")
@click.option("--profile-rows", type=int, default=DEFAULT["profile_rows"], show_default=True,
              help="Configs to profile on this machine.")
@click.option("--transfer-rows", type=int, default=DEFAULT["transfer_rows"], show_default=True,
              help="Of those, rows the few-shot transfer fits on (the rest are its held-out check).")
@click.option("--teacher-examples", type=int, default=DEFAULT["teacher_examples"], show_default=True,
              help="Train examples of the teacher fine-tune (and of the supernet).")
@click.option("--episodes", type=int, default=DEFAULT["episodes"], show_default=True, help="Search episodes.")
@click.option("--candidates", type=int, default=DEFAULT["candidates"], show_default=True,
              help="Candidates per episode.")
@click.option("--proxy-examples", type=int, default=DEFAULT["proxy_examples"], show_default=True,
              help="Train examples of each proxy distillation.")
@click.option("--proxy-epochs", type=float, default=DEFAULT["proxy_epochs"], show_default=True,
              help="Epochs of each proxy distillation.")
@click.option("--final-examples", type=int, default=DEFAULT["final_examples"], show_default=True,
              help="Train examples of the winner's final distillation.")
@click.option("--speedup", type=float, default=DEFAULT["speedup"], show_default=True,
              help="Budget = the teacher's predicted latency on this machine / this.")
@click.option("--compare-students", default=DEFAULT["compare_students"], show_default=True,
              help="Well-known students shown next to the winner and the teacher.")
@click.option("--evaluator", default=DEFAULT["evaluator"], show_default=True,
              type=RegistryChoice(EVALUATORS, keep=lambda e: e.inputs == "task"),
              help="With task data: one-shot supernet scores (supernet trained on the teacher's examples x 1 epoch) "
                   "re-ranked by proxy, or proxy distillation of each candidate. Without task data always proxy.")
@seed_option()
@accelerator_option("training (teacher, supernet, candidates, final; profiling stays on the CPU)")
@allow_weak_teacher_option()
def quickstart(**options: Any) -> None:
    """Run the whole pipeline on this machine, offline: profile, fit, search, distil, measure, report.

    \b
    Example:
      kdnas-bench quickstart --data-dir glue     # SST-2, MiniLM teacher fine-tuned on 2k
      kdnas-bench quickstart                      # no task data: task-agnostic KD

    glue/ is the GLUE benchmark's TSV download (one folder per task: glue/SST-2/train.tsv, dev.tsv). Your own
    data: --train-file and --validation-file.
    """
    from ..quickstart.pipeline import run_quickstart  # noqa: PLC0415  lazy: torch and pandas (profiling, training, the search)

    print_done(run_quickstart(QuickstartRequest(**options), QuickstartView(), progress=True))


def register(cli: click.Group) -> None:
    cli.add_command(quickstart)
