"""``kdnas-bench search``: the KD-NAS controller under predicted latency budgets."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from ..defaults import DEFAULTS
from ..errors import KdnasError
from ..progress import LineProgress
from ..search.evaluators import EVALUATORS
from ..search.executor import EXECUTORS
from ..search.reward import FORMS, MODES
from ..search.strategies import STRATEGIES
from ..space import arch_text
from .common import accelerator_option, console, err_console, positive, print_json
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
        state, req = self.state, self.req
        if kind == "message":
            (self.live.console if self.live else self.out).print(data["text"], highlight=False, markup=False)
            return
        if kind == "start":
            key = req.key
            self.out.print(f"search {data['task']} · {req.strategy} · budgets "
                           f"{', '.join(f'{b:g}' for b in req.budgets_ms)} ms ({req.reward_form} reward, batch {req.shape.batch} "
                           f"× seq {req.shape.seq}) on {key.device_id}/{key.backend}/t{key.threads} · run {data['run']}",
                           markup=False)
            if not self.out.is_terminal:
                self.lines = LineProgress("search")
                self.task = self.lines.add_task("search", total=req.episodes * req.candidates, best="")
                return
            self.live = Live(_view(state), console=self.out, refresh_per_second=4, transient=False)
            self.live.start()
            return
        if kind == "end":
            if self.live is not None:
                self.live.stop()
                self.live = None
            if self.lines is not None:
                self.lines.__exit__(None, None, None)
                self.lines = None
            return
        if kind == "episode":
            state["episode"] = data["episode"]
        elif kind == "evaluation":
            if data.get("error") and self.live is not None:
                a = data["arch"]
                self.live.console.print(f"candidate {arch_text(a)} failed: "
                                        f"{data['error']}", highlight=False, markup=False)
            state["rows"].append(data)
            state["evaluations"] += 1
            if self.live is None:  # not a terminal (a log, CI): one plain line per candidate, failures included
                self.out.print(candidate_line(data, state), highlight=False, markup=False,
                               soft_wrap=True)
            for k, v in data["rewards"].items():
                if v is not None and (state["best"][k] is None or v > state["best"][k]):
                    state["best"][k] = v
        elif kind == "episode_done":
            state["evaluations"] = data["evaluations"]
        elif kind == "note":
            (self.live.console if self.live else self.out).print(f"note: {data['text']}", highlight=False, markup=False)
        if self.lines is not None and kind == "evaluation":
            t = self.lines.tasks[self.task]
            best = ", ".join(f"{k} ms: {v:.4f}" for k, v in state["best"].items() if v is not None)
            self.lines.update(self.task, completed=state["evaluations"], total=max(t["total"], state["evaluations"]),
                              description=f"search episode {state['episode'] + 1}/{state['episodes']}",
                              best=f"best reward {best}" if best else "")
        if self.live is not None:
            self.live.update(_view(state))


def register(cli: click.Group) -> None:
    @cli.command("search")
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
    def search(device_id: str, backend: str, threads: int, budget: tuple[float, ...], task: Any, text_file: str | None,
               teacher: str | None,
               data_dir: str | None, strategy: str, episodes: int | None, candidates: int | None, proxy_examples: int,
               proxy_epochs: float, losses: str | None, seed: int, run_dir: str | None, executor: str,
               ray_address: str | None, final: bool, final_examples: int | None, final_epochs: float, max_length: str,
               eval_every: str, early_stopping: int | None, log_to: str | None,
               baselines_text: str | None, baseline_seeds: int, seq: int,
               batch: int, reward_form: str, reward_w: float, mode: str, space_path: str | None, table: str | None,
               predictors_dir: str | None, teacher_examples: int, evaluator_kind: str | None, init: str,
               supernet_dir: str | None, supernet_examples: int, supernet_epochs: float, rerank_top: int,
               rerank_examples: int, rerank_epochs: float, budget_mb: float | None, head_dim: str | None,
               front_points: int | None, accelerator: str, gpus_per_candidate: float | None, speed: str,
               allow_weak_teacher: bool, redo: str | None, as_json: bool) -> None:
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
        from ..keys import DatasetKey
        from ..search.api import FinalOptions, SearchRequest, SupernetOptions, parse_head_dim, run_search
        from ..search.baselines import parse_baselines
        from ..space import Shape

        for name, value in (("--threads", threads), ("--episodes", episodes), ("--candidates", candidates),
                            ("--proxy-examples", proxy_examples), ("--seq", seq), ("--batch", batch),
                            ("--final-examples", final_examples), ("--supernet-examples", supernet_examples),
                            ("--supernet-epochs", supernet_epochs), ("--rerank-examples", rerank_examples),
                            ("--rerank-epochs", rerank_epochs), ("--budget-mb", budget_mb),
                            ("--baseline-seeds", baseline_seeds)):
            positive(name, value)
        if rerank_top < 0:
            raise KdnasError(f"--rerank-top must be 0 or more, got {rerank_top}")
        agnostic = isinstance(task, str) and task.strip().lower() == "agnostic"
        if evaluator_kind is None:  # the measured best recipe; a table or unlabeled text has no supernet
            evaluator_kind = "proxy" if table or agnostic else DEFAULTS.search_evaluator
        oneshot = EVALUATORS[evaluator_kind].oneshot
        if episodes is None:
            episodes = DEFAULTS.oneshot_episodes if oneshot else DEFAULTS.proxy_episodes
        if candidates is None:
            candidates = DEFAULTS.oneshot_candidates if oneshot else DEFAULTS.proxy_candidates
        if head_dim is None:  # inherited students keep whole teacher heads only at the teacher's head size
            head_dim = "teacher" if not table and not agnostic and (oneshot or init == "inherit") else "any"
        if not final and (baselines_text is not None or baseline_seeds != 1):
            raise KdnasError("--baselines and --baseline-seeds compare the final students: add --final")
        from ..distill.lengths import AUTO, parse_max_length

        length = parse_max_length(max_length)
        for name, given in (("--max-length", length != AUTO), ("--eval-every", eval_every != "end"),
                            ("--early-stopping", early_stopping is not None), ("--log-to", log_to is not None)):
            if given and not final:
                raise KdnasError(f"{name} sets the final distillation: add --final")
        finals = FinalOptions(final_examples, final_epochs, parse_baselines(baselines_text), baseline_seeds,
                              max_length=length, eval_every=eval_every, early_stopping=early_stopping,
                              log_to=log_to) if final else None
        req = SearchRequest(
            key=DatasetKey(device_id, backend, threads), budgets_ms=tuple(budget), task=task, reward_w=reward_w,
            mode=mode, reward_form=reward_form, shape=Shape(batch, seq), strategy=strategy, episodes=episodes,
            candidates=candidates, seed=seed,
            evaluator=evaluator_kind, table=table, teacher=teacher, teacher_examples=teacher_examples,
            data_dir=data_dir, text=text_file, proxy_examples=proxy_examples, proxy_epochs=proxy_epochs,
            losses=losses, init="embeddings" if init == "auto" else init,
            supernet=SupernetOptions(supernet_dir, supernet_examples, supernet_epochs, rerank_top, rerank_examples,
                                     rerank_epochs),
            final=finals, front=front_points, space=space_path,
            predictors=predictors_dir, run_dir=run_dir, executor=executor, ray_address=ray_address, budget_mb=budget_mb,
            head_dim=None if head_dim.strip().lower() == "any" else parse_head_dim(head_dim), accelerator=accelerator,
            gpus_per_candidate=gpus_per_candidate, speed=speed, allow_weak_teacher=allow_weak_teacher, redo=redo)
        out = err_console if as_json else console
        outcome = run_search(req, Progress(out, req), progress=not as_json)
        method = outcome.memory_method
        if as_json:
            print_json(outcome.summary() | ({"memory_method": method} if budget_mb is not None else {}))
            return
        console.print(winners_table(outcome, console.width))
        if any(w.extra.get("baselines") for w in outcome.result.winners):
            console.print(baselines_table(outcome, console.width))
        if budget_mb is not None:
            from ..profiling.memory import method_label

            console.print(f"peak memory: predicted by the memory model fitted on rows measured with "
                          f"{method_label(method)}; measured (--final) with the current method", markup=False)
