"""``kdnas-bench search``: the KD-NAS controller under predicted latency budgets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from ..defaults import DEFAULTS
from ..keys import DatasetKey
from ..profiling.memory import method_label
from ..progress import LineProgress
from ..search.asking import search_request
from ..search.evaluators import EVALUATORS
from ..search.executor import EXECUTORS
from ..search.request import FinalOptions, SearchRequest, SupernetOptions
from ..search.reward import BUDGET_MARGIN, FORMS, MODES
from ..search.strategies import STRATEGIES
from ..space import arch_text
from .common import accelerator_option, console, err_console, print_json
from .options import (
    GLUE_DIR_HELP,
    INIT_CHOICES,
    RegistryChoice,
    allow_weak_teacher_option,
    backend_option,
    batch_option,
    budget_mb_option,
    budget_ms_option,
    deprecated_alias,
    device_option,
    json_option,
    predictors_option,
    seed_option,
    seq_option,
    shipped_path,
    space_option,
    threads_option,
    training_options,
)
from .predict_cmds import speed_option

if TYPE_CHECKING:
    from ..search.api import SearchOutcome
from .search_view import baselines_table, candidate_line, winners_table
from .task_options import GLUE_HELP, task_options, teacher_fit_option


def _view(state: dict[str, Any]) -> Group:
    head = Table.grid(padding=(0, 2))
    head.add_row(f"episode {state['episode'] + 1}/{state['episodes']}", f"evaluations {state['evaluations']}",
                 "best reward " + ", ".join(f"{k} ms: {v:.4f}" if v is not None else f"{k} ms: -"
                                            for k, v in state["best"].items()))
    table = Table(title="candidates (latest first)", expand=False)
    for col in ("ep", "arch", "pred ms", "high ms", "metric", *[f"R@{b}" for b in state["best"]], "s"):
        table.add_column(col, justify="right")
    for rec in state["rows"][-12:][::-1]:
        a = rec["arch"]
        table.add_row(str(rec["episode"] + 1), arch_text(a),
                      f"{rec['latency_ms']:.2f}", f"{rec['latency_ms_high']:.2f}",
                      "failed" if rec.get("error") else f"{rec['metric']:.4f}",
                      *[f"{rec['rewards'][b]:.4f}" if rec["rewards"][b] is not None else "infeasible" for b in state["best"]],
                      f"{rec['seconds']:.1f}")
    return Group(head, table)


class Progress:
    """Renders :func:`~kdnas_bench.search.api.run_search`'s events: lines, then a live table of the episodes."""

    def __init__(self, out: Console, req: Any) -> None:
        self.out = out
        self.req = req
        self.live: Live | None = None
        self.lines: LineProgress | None = None  # not a terminal: a plain line every ~15 s instead of the live table
        self.task = 0
        self.state: dict[str, Any] = {"episode": 0, "episodes": req.episodes, "evaluations": 0, "rows": [],
                                      "best": {f"{b:g}": None for b in req.budgets_ms}}

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        handler = {"message": self._message, "start": self._start, "end": self._end}.get(kind)
        if handler is not None:
            handler(data)
            return
        state = self.state
        if kind == "episode":
            state["episode"] = data["episode"]
        elif kind == "evaluation":
            self._evaluation(data)
        elif kind == "episode_done":
            state["evaluations"] = data["evaluations"]
        elif kind == "note":
            self._say(f"note: {data['text']}")
        if self.lines is not None and kind == "evaluation":
            self._line_progress()
        if self.live is not None:
            self.live.update(_view(state))

    def _say(self, text: str) -> None:
        (self.live.console if self.live else self.out).print(text, highlight=False, markup=False)

    def _message(self, data: dict[str, Any]) -> None:
        self._say(data["text"])

    def _start(self, data: dict[str, Any]) -> None:
        req, key = self.req, self.req.key
        self.out.print(f"search {data['task']} · {req.strategy} · budgets "
                       f"{', '.join(f'{b:g}' for b in req.budgets_ms)} ms ({req.reward_form} reward, batch {req.shape.batch} "
                       f"× seq {req.shape.seq}) on {key.device_id}/{key.backend}/t{key.threads} · run {data['run']}",
                       markup=False)
        if not self.out.is_terminal:
            self.lines = LineProgress("search")
            self.task = self.lines.add_task("search", total=req.episodes * req.candidates, best="")
            return
        self.live = Live(_view(self.state), console=self.out, refresh_per_second=4, transient=False)
        self.live.start()

    def _end(self, data: dict[str, Any]) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        if self.lines is not None:
            self.lines.__exit__(None, None, None)
            self.lines = None

    def _evaluation(self, data: dict[str, Any]) -> None:
        state = self.state
        if data.get("error") and self.live is not None:
            self.live.console.print(f"candidate {arch_text(data['arch'])} failed: {data['error']}", highlight=False,
                                    markup=False)
        state["rows"].append(data)
        state["evaluations"] += 1
        if self.live is None:  # not a terminal (a log, CI): one plain line per candidate, failures included
            self.out.print(candidate_line(data, state), highlight=False, markup=False, soft_wrap=True)
        for k, v in data["rewards"].items():
            if v is not None and (state["best"][k] is None or v > state["best"][k]):
                state["best"][k] = v

    def _line_progress(self) -> None:
        assert self.lines is not None
        state = self.state
        t = self.lines.tasks[self.task]
        best = ", ".join(f"{k} ms: {v:.4f}" for k, v in state["best"].items() if v is not None)
        self.lines.update(self.task, completed=state["evaluations"], total=max(t["total"], state["evaluations"]),
                          description=f"search episode {state['episode'] + 1}/{state['episodes']}",
                          best=f"best reward {best}" if best else "")


@click.command("search")
@device_option("Device id whose latency predictor scores candidates (see `kdnas-bench predictors`).")
@backend_option("Backend of that predictor, from the registry.")
@threads_option("Threads of that predictor.")
@budget_ms_option(required=True, dest="budget")
@task_options(task_help=f"{GLUE_HELP}; or 'agnostic': task-agnostic KD on unlabeled text (no labels needed).",
              data_dir_help=GLUE_DIR_HELP + ".")
@teacher_fit_option()
@click.option("--text", "text_file", type=click.Path(),
              help="--task agnostic: unlabeled text, one passage per line (default: Python stdlib docstrings).")
@click.option("--teacher", help="Teacher folder or hub name (default: fine-tune the packaged MiniLM into OUT/teacher).")
@click.option("--strategy", type=RegistryChoice(STRATEGIES), default="kdnas", show_default=True,
              help="Search strategy: kdnas (the paper's controller), random or evolution.")
@click.option("--episodes", type=int, help=f"Episodes (default: {DEFAULTS.oneshot_episodes} with the supernet "
              f"evaluator, {DEFAULTS.proxy_episodes} with proxy, the paper's).")
@click.option("--candidates", type=int, help=f"Candidates per episode (default: {DEFAULTS.oneshot_candidates} "
              f"one-shot scores with the supernet evaluator, {DEFAULTS.proxy_candidates} proxy distillations).")
@click.option("--proxy-examples", type=int, default=DEFAULTS.proxy_examples, show_default=True,
              help="Train examples of each proxy distillation.")
@click.option("--proxy-epochs", type=float, default=DEFAULTS.proxy_epochs, show_default=True,
              help="Epochs of each proxy distillation.")
@click.option("--losses", help="KD losses for proxy and final distillation (default: logits,ce, the proxy recipe "
                               "that ranked students best; hidden,attn for --task agnostic).")
@seed_option("Seed of the strategy, the data subsets and the distillations.")
@click.option("--out", "run_dir", type=click.Path(),
              help="Run folder (resumable; default runs/search-<task>-<seed>).")
@deprecated_alias("--run", "--out", "run_dir", click.Path())
@click.option("--executor", type=RegistryChoice(EXECUTORS), default="local", show_default=True,
              help="Where candidates are evaluated: in this process, or on a Ray cluster.")
@click.option("--ray-address", help="Address of an existing Ray cluster (default: start a local Ray).")
@accelerator_option("training (teacher, supernet, candidates, re-ranking, final)")
@training_options(final=True)
@click.option("--gpus-per-candidate", type=float, help="--executor ray: each candidate's GPU share (fractions "
              "allowed, e.g. 0.25: four per GPU; default 1 when training on a GPU, else 0).")
@click.option("--final", is_flag=True, help="Fully distil, export and (on this device) measure each winner.")
@click.option("--redo", type=click.Choice(["final"]), help="A finished run is not redone (its stored result is "
              "printed): --redo final re-does its final step (with --final).")
@click.option("--final-examples", type=int, help="Train examples for --final (default: the whole train set).")
@click.option("--final-epochs", type=float, default=3.0, show_default=True, help="Epochs of --final.")
@click.option("--baselines", "baselines_text", help="--final: the hand-crafted shapes scaled to each budget and "
              "distilled with the same recipe, to show whether the search beat them: names separated by commas "
              "(minilm, minilm-l3, tinybert, tinybert-whole-heads, layerdrop, layerdrop-bottom), or none "
              "(default: minilm,tinybert,layerdrop).")
@click.option("--baseline-seeds", type=int, default=1, show_default=True,
              help="--final: seeds of each baseline and of the winner; 2 or more give the gap's significance.")
@seq_option("Sequence length the budget applies to.")
@batch_option("Batch size the budget applies to.")
@click.option("--reward", "reward_form", type=click.Choice(FORMS), default="hard", show_default=True,
              help="hard: the most accurate student whose latency fits the budget (R = A; candidates whose "
                   "predicted interval straddles it are measured on this device before the pick); soft: the "
                   "KD-NAS reward A·(lat/T)^w, which pays students below the budget.")
@click.option("--budget-margin", type=float, default=BUDGET_MARGIN, show_default=True,
              help="--reward hard: a student measured on this device passes at this share under the budget or "
                   "more (0.03: within 97 % of it), so that the next measurement keeps it within the budget.")
@click.option("--reward-w", type=float, default=DEFAULTS.reward_w, show_default=True,
              help="--reward soft: latency exponent w of A·(lat/T)^w.")
@click.option("--mode", type=click.Choice(MODES), default="hard", show_default=True,
              help="--reward soft: hard rejects candidates whose predicted upper bound exceeds the budget; soft "
                   "keeps them.")
@space_option("Space TOML, or 'auto' (the default, except with --table): the teacher's students, derived from "
              "its shape and written to OUT/space.toml.")
@click.option("--table", type=click.Path(), callback=shipped_path,
              help="Score candidates from a table of precomputed accuracies instead.")
@click.option("--evaluator", "evaluator_kind", type=RegistryChoice(EVALUATORS),
              help=f"Default {DEFAULTS.search_evaluator} (proxy-distill with --table or --task agnostic, where "
              "table and agnostic-distill take over). supernet: score each candidate's sub-network of a "
              "weight-sharing supernet (seconds), then re-rank the best by proxy distillation (the measured best "
              "recipe); proxy-distill (or proxy): distil every candidate (the paper's path, hours on a CPU). "
              "Installed evaluator plugins are listed too.")
@click.option("--init", type=click.Choice(INIT_CHOICES), default="inherit",
              show_default=True, help="Student init for proxy and final distillation (supernet evaluator: the "
                                      "supernet's weights): inherit = teacher weights rewired by importance.")
@click.option("--supernet", "supernet_dir", type=click.Path(),
              help="Supernet folder (default OUT/supernet; trained there when missing, reused when it matches).")
@click.option("--supernet-examples", type=int, default=DEFAULTS.supernet_examples, show_default=True,
              help="Supernet evaluator: train examples of the supernet.")
@click.option("--supernet-epochs", type=float, default=DEFAULTS.supernet_epochs, show_default=True,
              help="Supernet evaluator: epochs of the supernet.")
@click.option("--rerank-top", type=int, default=DEFAULTS.rerank_top, show_default=True,
              help="Supernet evaluator: best candidates per budget re-ranked by proxy distillation (0: none).")
@click.option("--rerank-examples", type=int, default=DEFAULTS.rerank_examples, show_default=True,
              help="Proxy examples of the first re-ranking rung (doubled for each later rung).")
@click.option("--rerank-epochs", type=float, default=DEFAULTS.rerank_epochs, show_default=True,
              help="Epochs of each re-ranking proxy distillation.")
@click.option("--rerank-by", type=click.Choice(["metric", "fidelity"]), default=DEFAULTS.rerank_by, show_default=True,
              help="What orders a re-ranking rung: its dev metric, or fidelity to the teacher (minus the KD loss on "
                   "the same dev examples; the hard reward only).")
@click.option("--rerank-lr", type=float, default=DEFAULTS.rerank_lr, show_default=True,
              help="Learning rate of the re-ranking's proxy distillations.")
@budget_mb_option("Peak resident memory budget (MiB) of one forward pass at --batch × --seq: a second hard "
                  "constraint, from the predictor's memory model (measured after --final).")
@click.option("--head-dim", help="Only candidates of this head size (hidden / heads): a number, 'teacher' for the "
              "teacher's own, so inherited students keep whole teacher heads (+1.41 points on SST-2), or 'any'. "
              "Default: 'teacher' when students inherit the teacher's weights (supernet, or --init inherit), else any.")
@predictors_option()
@speed_option
@click.option("--teacher-examples", type=int, default=DEFAULTS.teacher_examples, show_default=True,
              help="Examples for the default teacher fine-tune.")
@click.option("--front", "front_points", type=int, default=None,
              help="Return the accuracy-latency front (OUT/front.json, one OUT/front-<device>.png per device) and "
                   "pick each budget's winner from it, re-scoring this many points along it by proxy distillation "
                   "(0: the search's scores only).")
@allow_weak_teacher_option()
@json_option("Print the result as JSON.")
def search_cmd(as_json: bool, **options: Any) -> None:
    """Search the student arch with KD-NAS: predicted latency + the accuracy of each candidate.

    By default the measured best recipe: a weight-sharing supernet scores every candidate of the teacher's head
    size in seconds, and the best ones per budget are re-ranked by proxy distillation. --evaluator proxy-distill is
    the paper's path (every candidate distilled; 15 x 20 by default).

    \b
    Example:
      kdnas-bench search --device amd-epyc-2c-243f6e --backend torch --budget-ms 13 --task sst2 \\
        --data-dir glue --teacher runs/teacher-sst2

    glue/ is the GLUE benchmark's TSV download (one folder per task: glue/SST-2/train.tsv, dev.tsv); without
    --data-dir the task comes from the Hugging Face hub. Your own data: --train-file and --validation-file.
    """
    req = search_request_from(options)
    from ..search.api import run_search  # noqa: PLC0415  lazy: pandas, LightGBM (the predictors, the study)

    outcome = run_search(req, Progress(err_console if as_json else console, req), progress=not as_json)
    render_outcome(outcome, req, as_json)


def search_request_from(o: dict[str, Any]) -> SearchRequest:
    """The request the command's options (by their parameter names) ask for: the library applies the search's
    defaults and checks every value and every rule between them (:func:`~kdnas_bench.search.request.search_request`)."""
    final = FinalOptions.given(o["final"], examples=o["final_examples"], epochs=o["final_epochs"],
                               baselines=o["baselines_text"], baseline_seeds=o["baseline_seeds"],
                               max_length=o["max_length"], eval_every=o["eval_every"],
                               early_stopping=o["early_stopping"], log_to=o["log_to"])
    supernet = SupernetOptions(o["supernet_dir"], o["supernet_examples"], o["supernet_epochs"], o["rerank_top"],
                               o["rerank_examples"], o["rerank_epochs"], o["rerank_by"],
                               o["rerank_lr"])
    return search_request(
        DatasetKey(o["device_id"], o["backend"], o["threads"]), o["budget"], o["task"], evaluator=o["evaluator_kind"],
        episodes=o["episodes"], candidates=o["candidates"], head_dim=o["head_dim"], init=o["init"], seq=o["seq"],
        batch=o["batch"], reward_w=o["reward_w"], mode=o["mode"], reward_form=o["reward_form"],
        budget_margin=o["budget_margin"],
        strategy=o["strategy"], seed=o["seed"], table=o["table"], teacher=o["teacher"],
        teacher_examples=o["teacher_examples"], data_dir=o["data_dir"], text=o["text_file"],
        proxy_examples=o["proxy_examples"], proxy_epochs=o["proxy_epochs"], losses=o["losses"], supernet=supernet,
        final=final, front=o["front_points"], space=o["space_path"], predictors=o["predictors_dir"],
        run_dir=o["run_dir"], executor=o["executor"], ray_address=o["ray_address"], budget_mb=o["budget_mb"],
        accelerator=o["accelerator"], gpus_per_candidate=o["gpus_per_candidate"], speed=o["speed"],
        allow_weak_teacher=o["allow_weak_teacher"], redo=o["redo"])


def render_outcome(outcome: SearchOutcome, req: SearchRequest, as_json: bool) -> None:
    """The winners (and the baselines), or the summary as JSON."""
    method = outcome.memory_method
    if as_json:
        print_json(outcome.summary() | ({"memory_method": method} if req.budget_mb is not None else {}))
        return
    console.print(winners_table(outcome, console.width))
    for w in outcome.result.winners:
        if w.extra.get("budget_note"):
            console.print(f"{w.budget_ms:g} ms: {w.extra['budget_note']}", markup=False)
    if any(w.extra.get("baselines") for w in outcome.result.winners):
        console.print(baselines_table(outcome, console.width))
    if req.budget_mb is not None:
        console.print(f"peak memory: predicted by the memory model fitted on rows measured with "
                      f"{method_label(method)}; measured (--final) with the current method", markup=False)


def register(cli: click.Group) -> None:
    cli.add_command(search_cmd)
