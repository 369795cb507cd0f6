"""``kdnas-bench search``: the KD-NAS controller under predicted latency budgets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..errors import KdnasError
from ..paths import default_space
from ..validate import check_writable
from .common import console, err_console, positive, print_json

STRATEGY_NAMES = ["kdnas", "random", "evolution"]


def _budgets(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise KdnasError(f"--budget-ms must be numbers separated by commas, got {text!r}") from None
    if not values:
        raise KdnasError("--budget-ms needs at least one latency budget")
    return values


def _default_teacher(run: Path, task: str, data_dir: str | None, examples: int, seed: int, out: Any) -> str:
    """No --teacher: fine-tune the packaged all-MiniLM-L6-v2 on the task once, into RUN/teacher."""
    from ..distill.teacher import finetune

    folder = run / "teacher"
    if (folder / "config.json").is_file():
        return str(folder)
    out.print(f"no --teacher: fine-tuning the packaged all-MiniLM-L6-v2 on {task} ({examples} examples, 1 epoch) "
              f"into {folder}", markup=False)
    finetune(task, data_dir=data_dir, max_examples=examples, epochs=1.0, seed=seed, out=folder)
    return str(folder)


def _supernet(teacher: str, task: str, space: Any, folder: str, data_dir: str | None, examples: int, epochs: float,
              seed: int, out: Any, *, progress: bool) -> None:
    """Reuse the supernet in ``folder`` (checked against teacher, task and space) or train it there."""
    from ..supernet import SupernetConfig
    from ..supernet.train import ensure_supernet

    def started(info: dict[str, Any]) -> None:
        what = "resuming" if info["start"] else "training"
        out.print(f"{what} the supernet in {folder}: {info['total']} steps (sandwich: {info['largest']} + "
                  f"{info['smallest']} + 2 random per step; {examples} examples × {epochs:g} epochs)")

    _, doc = ensure_supernet(teacher, task, space, folder, data_dir=data_dir,
                             cfg=SupernetConfig(examples=examples, epochs=epochs, seed=seed), progress=progress,
                             on_start=started)
    out.print(f"supernet {folder}: trained in {doc.get('train_seconds', 0):.0f} s ({doc.get('steps')} steps)",
              highlight=False)


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
        table.add_row(str(rec["episode"] + 1), f"{a['layers']},{a['hidden']},{a['heads']},{a['ffn']}",
                      f"{rec['latency_ms']:.2f}", f"{rec['latency_ms_high']:.2f}", f"{rec['metric']:.4f}",
                      *[f"{rec['rewards'][b]:.4f}" if rec["rewards"][b] is not None else "infeasible" for b in state["best"]],
                      f"{rec['seconds']:.1f}")
    return Group(head, table)


def register(cli: click.Group) -> None:
    @cli.command("search")
    @click.option("--device", "device_id", required=True, help="Device id whose latency predictor scores candidates.")
    @click.option("--backend", required=True, help="Backend of that predictor (torch, onnxruntime, ...).")
    @click.option("--threads", type=int, default=1, show_default=True)
    @click.option("--budget-ms", "budget", required=True, help="Latency budget(s) in ms, e.g. 20 or 10,20,40.")
    @click.option("--task", required=True, help="GLUE task (sst2, mrpc, rte, cola, stsb, qnli, qqp, mnli), or "
                                                "'agnostic': task-agnostic KD on unlabeled text (no labels needed).")
    @click.option("--text", "text_file", type=click.Path(),
                  help="--task agnostic: unlabeled text, one passage per line (default: Python stdlib docstrings).")
    @click.option("--teacher", help="Teacher folder or hub name (default: fine-tune the packaged MiniLM into RUN/teacher).")
    @click.option("--data-dir", type=click.Path(), help="Local GLUE folder (e.g. ../shared/data/glue).")
    @click.option("--strategy", type=click.Choice(STRATEGY_NAMES), default="kdnas", show_default=True)
    @click.option("--episodes", type=int, default=15, show_default=True)
    @click.option("--candidates", type=int, default=20, show_default=True, help="Proxy distillations per episode.")
    @click.option("--proxy-examples", type=int, default=2000, show_default=True)
    @click.option("--proxy-epochs", type=float, default=3.0, show_default=True)
    @click.option("--losses", help="KD losses for proxy and final distillation (default: logits,ce, the proxy recipe "
                                   "that ranked students best; hidden,attn for --task agnostic).")
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--run", "run_dir", type=click.Path(), help="Run folder (resumable; default runs/search-<task>-<seed>).")
    @click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
    @click.option("--ray-address", help="Address of an existing Ray cluster (default: start a local Ray).")
    @click.option("--final", is_flag=True, help="Fully distil, export and (on this device) measure each winner.")
    @click.option("--final-examples", type=int, help="Train examples for --final (default: the whole train set).")
    @click.option("--final-epochs", type=float, default=3.0, show_default=True)
    @click.option("--seq", type=int, default=128, show_default=True, help="Sequence length the budget applies to.")
    @click.option("--batch", type=int, default=1, show_default=True, help="Batch size the budget applies to.")
    @click.option("--reward-w", type=float, default=-0.07, show_default=True, help="Latency exponent w of A·(lat/T)^w.")
    @click.option("--mode", type=click.Choice(["hard", "soft"]), default="hard", show_default=True,
                  help="hard: reject candidates whose predicted upper bound exceeds the budget.")
    @click.option("--space", "space_path", type=click.Path(), help="Space TOML (default: search/spaces/bert.toml).")
    @click.option("--table", type=click.Path(), help="Score candidates from a table of precomputed accuracies instead.")
    @click.option("--evaluator", "evaluator_kind", type=click.Choice(["proxy", "supernet"]), default="proxy",
                  show_default=True, help="proxy: distil every candidate (the paper); supernet: score its sub-network "
                                          "of a weight-sharing supernet (seconds), then re-rank the best by proxy.")
    @click.option("--init", type=click.Choice(["inherit", "embeddings", "random"]), default="inherit",
                  show_default=True, help="Student init for proxy and final distillation (supernet evaluator: the "
                                          "supernet's weights): inherit = teacher weights rewired by importance.")
    @click.option("--supernet", "supernet_dir", type=click.Path(),
                  help="Supernet folder (default RUN/supernet; trained there when missing, reused when it matches).")
    @click.option("--supernet-examples", type=int, default=4000, show_default=True)
    @click.option("--supernet-epochs", type=float, default=2.0, show_default=True)
    @click.option("--rerank-top", type=int, default=4, show_default=True,
                  help="Supernet evaluator: best candidates per budget re-ranked by proxy distillation (0: none).")
    @click.option("--rerank-examples", type=int, default=500, show_default=True,
                  help="Proxy examples of the first re-ranking rung (doubled for each later rung).")
    @click.option("--rerank-epochs", type=float, default=2.0, show_default=True)
    @click.option("--budget-mb", type=float, help="Peak resident memory budget (MiB) of one forward pass at --batch × "
                  "--seq: a second hard constraint, from the predictor's memory model (measured after --final).")
    @click.option("--predictors", "predictors_dir", type=click.Path(), help="Predictor folder (default: predictors/).")
    @click.option("--teacher-examples", type=int, default=2000, show_default=True,
                  help="Examples for the default teacher fine-tune.")
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    def search(device_id: str, backend: str, threads: int, budget: str, task: str, text_file: str | None,
               teacher: str | None,
               data_dir: str | None, strategy: str, episodes: int, candidates: int, proxy_examples: int,
               proxy_epochs: float, losses: str | None, seed: int, run_dir: str | None, executor: str,
               ray_address: str | None, final: bool, final_examples: int | None, final_epochs: float, seq: int,
               batch: int, reward_w: float, mode: str, space_path: str | None, table: str | None,
               predictors_dir: str | None, teacher_examples: int, evaluator_kind: str, init: str,
               supernet_dir: str | None, supernet_examples: int, supernet_epochs: float, rerank_top: int,
               rerank_examples: int, rerank_epochs: float, budget_mb: float | None, as_json: bool) -> None:
        """Search the student arch with KD-NAS: predicted latency + proxy-distillation accuracy.

        \b
        Example:
          kdnas-bench search --device intel-xeon-processor-2c-cfff2f --backend torch --budget-ms 15 \\
            --task sst2 --data-dir ../shared/data/glue --episodes 2 --candidates 3 --proxy-examples 300
        """
        from ..distill.agnostic import AGNOSTIC
        from ..distill.data import get_task
        from ..predictors.registry import load_predictor
        from ..search.evaluators import AgnosticDistillEvaluator, ProxyDistillEvaluator, SupernetEvaluator, TableEvaluator
        from ..search.executor import make_executor
        from ..search.final import finalize
        from ..search.rerank import RerankConfig, rerank
        from ..search.reward import RewardSpec
        from ..search.study import LatencyTable, SearchConfig, Study, check_budgets
        from ..space import SearchSpace, Shape

        for name, value in (("--threads", threads), ("--episodes", episodes), ("--candidates", candidates),
                            ("--proxy-examples", proxy_examples), ("--seq", seq), ("--batch", batch),
                            ("--final-examples", final_examples), ("--supernet-examples", supernet_examples),
                            ("--supernet-epochs", supernet_epochs), ("--rerank-examples", rerank_examples),
                            ("--rerank-epochs", rerank_epochs), ("--budget-mb", budget_mb)):
            positive(name, value)
        if rerank_top < 0:
            raise KdnasError(f"--rerank-top must be 0 or more, got {rerank_top}")
        oneshot = evaluator_kind == "supernet"
        out = err_console if as_json else console
        spec = RewardSpec(_budgets(budget), w=reward_w, mode=mode)
        agnostic = task.strip().lower() == AGNOSTIC
        task_name = AGNOSTIC if agnostic else get_task(task).name
        if text_file and not agnostic:
            raise KdnasError("--text is for --task agnostic (a GLUE task reads --data-dir)")
        # logits,ce: proxy (2k examples x 3 epochs) vs full-SST-2 Kendall tau 0.86 over 10 students; logits alone 0.55
        losses = losses or ("hidden,attn" if agnostic else "logits,ce")
        shape = Shape(batch, seq)
        predictor = load_predictor(device_id, backend, threads, root=predictors_dir)
        if budget_mb is not None and not predictor.memory:
            from ..search.memory_budget import within_memory

            within_memory(predictor, [], shape, budget_mb)  # the one-line error, before any work
        space_file = space_path or str(default_space())
        space = SearchSpace.load(space_file)
        run = Path(run_dir) if run_dir else Path("runs") / f"search-{task_name}-{seed}"
        check_writable("--run", run)  # also the default, before a default teacher is fine-tuned into it
        if oneshot and (table or agnostic):
            raise KdnasError("--evaluator supernet needs a GLUE task and a teacher (not --table or --task agnostic)")
        supernet_folder = str(Path(supernet_dir) if supernet_dir else run / "supernet")
        evaluator: Any
        if table:
            evaluator = TableEvaluator(table)
            archs = evaluator.archs()
            teacher_ref = None
        elif agnostic:
            from ..distill.agnostic import load_text
            from ..distill.teacher import load_teacher

            if teacher is not None:
                load_teacher(teacher)  # fail fast on a missing teacher
            _, source = load_text(text_file)
            out.print(f"task-agnostic distillation: teacher {teacher or 'the packaged all-MiniLM-L6-v2 backbone'}, "
                      f"text: {source}", highlight=False, markup=False)
            evaluator = AgnosticDistillEvaluator(teacher=teacher, text=text_file, proxy_examples=proxy_examples,
                                                 epochs=proxy_epochs, losses=losses, seed=seed)
            teacher_ref = teacher
            archs = list(space.archs)
        else:
            if teacher is None:
                get_task(task_name)
                teacher_ref = _default_teacher(run, task_name, data_dir, teacher_examples, seed, out)
            else:
                teacher_ref = teacher
            from ..distill.teacher import load_teacher

            load_teacher(teacher_ref, task=task_name)  # fail fast on a missing or mismatched teacher
            if oneshot:
                from ..distill.inherit import TeacherShape
                from ..supernet import space_fits

                space_fits(space, TeacherShape.of(load_teacher(teacher_ref).model.config))  # before any training
                evaluator = SupernetEvaluator(supernet=supernet_folder, teacher=teacher_ref, task=task_name,
                                              space=space_file, data_dir=data_dir)
            else:
                evaluator = ProxyDistillEvaluator(teacher=teacher_ref, task=task_name, data_dir=data_dir,
                                                  proxy_examples=proxy_examples, epochs=proxy_epochs, losses=losses,
                                                  seed=seed, init=init)
            archs = list(space.archs)
        rerank_cfg = RerankConfig(rerank_top, rerank_examples, rerank_epochs) if oneshot and rerank_top else None
        rerank_desc = {"rerank": rerank_cfg.to_dict(), "losses": losses} if rerank_cfg else {}
        memory_mb: dict[Any, float] = {}
        if budget_mb is not None:
            from ..search.memory_budget import within_memory

            archs, memory_mb = within_memory(predictor, archs, shape, budget_mb)
        latency = LatencyTable(predictor, archs, shape)
        check_budgets(latency, spec)
        if oneshot:  # bad input is checked above; now the expensive part
            _supernet(str(teacher_ref), task_name, space, supernet_folder, data_dir, supernet_examples, supernet_epochs,
                      seed, out, progress=not as_json)
        config = SearchConfig(device_id=device_id, backend=backend, threads=threads, shape=shape, reward=spec,
                              strategy=strategy, episodes=episodes, candidates=candidates, seed=seed,
                              evaluator={**{k: v for k, v in evaluator.describe().items() if k != "data_dir"},
                                         **rerank_desc},
                              space=table or space.name, budget_mb=budget_mb)
        ex = make_executor(executor, ray_address)
        study = Study(run, config, evaluator, latency, ex)
        out.print(f"search {task_name} · {strategy} · budgets {', '.join(f'{b:g}' for b in spec.budgets_ms)} ms "
                  f"({mode}, batch {batch} × seq {seq}) on {device_id}/{backend}/t{threads} · run {run}", markup=False)
        state: dict[str, Any] = {"episode": 0, "episodes": episodes, "evaluations": 0, "rows": [],
                                 "best": {f"{b:g}": None for b in spec.budgets_ms}}
        with Live(_view(state), console=out, refresh_per_second=4, transient=False) as live:
            def on_event(kind: str, data: dict[str, Any]) -> None:
                if kind == "episode":
                    state["episode"] = data["episode"]
                elif kind == "evaluation":
                    state["rows"].append(data)
                    state["evaluations"] += 1
                    for k, v in data["rewards"].items():
                        if v is not None and (state["best"][k] is None or v > state["best"][k]):
                            state["best"][k] = v
                elif kind == "episode_done":
                    state["evaluations"] = data["evaluations"]
                elif kind == "note":
                    live.console.print(f"note: {data['text']}", highlight=False, markup=False)
                live.update(_view(state))

            try:
                result = study.run(on_event)
            finally:
                ex.close()
        if rerank_cfg is not None:
            out.print(f"re-ranking the best {rerank_cfg.top} per budget by proxy distillation (successive halving, "
                      f"{rerank_cfg.examples} examples × {rerank_cfg.epochs:g} epochs first) …")
            result = rerank(study, result, rerank_cfg, lambda n, e: ProxyDistillEvaluator(
                teacher=str(teacher_ref), task=task_name, data_dir=data_dir, proxy_examples=n, epochs=e, losses=losses,
                seed=seed, supernet=supernet_folder))
            study.write_result(result)
        if final:
            if table:
                raise KdnasError("--final needs a teacher (it distils the winners); it cannot run with --table")
            out.print("final distillation of the winners …")
            finalize(result, teacher=teacher_ref, task=task_name, data_dir=data_dir, device_id=device_id,
                     backend=backend, threads=threads, shape=shape, max_examples=final_examples, epochs=final_epochs,
                     losses=losses, seed=seed, progress=not as_json, text=text_file, init=init,
                     supernet=supernet_folder if oneshot else None, budget_mb=budget_mb)
            study.write_result(result)
        for w in result.winners:
            if w.arch in memory_mb:
                w.extra["predicted_peak_mb"] = memory_mb[w.arch]
        data = result.to_dict()
        data.pop("history")
        if as_json:
            print_json(data)
            return
        t = Table(title=Text(f"winners · {result.evaluations} evaluations · {run}"))
        cols = ["budget ms", "arch", "pred ms", "pred high ms", "proxy metric", "reward"]
        if budget_mb is not None:
            cols += ["pred peak MiB"]
        if final:
            cols += ["final metric", "measured ms", "budget held"]
            if budget_mb is not None:
                cols += ["measured MiB", "memory held"]
        for c in cols:
            t.add_column(c, justify="right")
        for w in result.winners:
            row = [f"{w.budget_ms:g}", str(w.arch), f"{w.predicted_latency_ms:.2f}", f"{w.predicted_latency_ms_high:.2f}",
                   f"{w.proxy_metric:.4f}", f"{w.reward:.4f}"]
            held = {True: "yes", False: "NO", None: "not this device"}
            if budget_mb is not None:
                row += [f"{w.extra.get('predicted_peak_mb', float('nan')):.1f}"]
            if final:
                m = w.extra.get("measured_latency_ms")
                metric = f"{w.extra.get('final_metric', float('nan')):.4f}"
                if "deployed_metric" in w.extra:
                    metric += f" (int8 {w.extra['deployed_metric']:.4f})"
                row += [metric, "-" if m is None else f"{m:.2f}", held[w.extra.get("budget_held")]]
                if budget_mb is not None:
                    pk = w.extra.get("measured_peak_mb")
                    row += ["-" if pk is None else f"{pk:.1f}", held[w.extra.get("memory_held")]]
            t.add_row(*row)
        console.print(t)
        (run / "summary.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
