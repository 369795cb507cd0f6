"""The KD-NAS paper's claims at our scale, per GLUE task (figures, not pass/fail).

For one task: the searched student — from a search here (supernet + one-shot scores + successive-halving
re-ranking, budget = the teacher's measured latency / 3) or, with ``--searched ARCH``, an arch an earlier
search chose — and the hand-crafted students a practitioner tries first, each scaled to the budget
(:data:`FAMILIES`; the largest member whose predicted latency fits): MiniLM's shape (6 layers, heads =
hidden / 32, FFN 4 x hidden), MiniLM-L3's (3 layers, the same ratios), TinyBERT-4L's with whole teacher
heads (heads = hidden / 32, FFN 3.85 x hidden) and with its own 12 heads, and the layer-dropped teacher (full
width, evenly spread layers, the teacher's weights: :mod:`kdnas_bench.distill.layerdrop`). Every student is
distilled with exactly the same recipe for ``--seeds`` seeds, from the same kind of init (``--init
supernet``: its supernet sub-network; ``inherit``: the teacher rewired by importance and sliced, which for
the layer-dropped teacher is the teacher's own layers) and its dev predictions are kept for the paired
bootstrap of the report (``benchmarks/claims_report.py``).

Three phases, so that heavy work and latency timing stay apart (train under ../shared/tools/heavy, measure
under ../shared/tools/quiet):
  python benchmarks/bench_claims.py train   --task mrpc --teacher T --teacher-ms 38.3 ...   # resumable
  python benchmarks/bench_claims.py measure --task mrpc                                  # latency here
  python benchmarks/bench_claims.py report  --tasks sst2,mrpc,rte,stsb                   # table + JSON
  python benchmarks/bench_claims.py table                                               # the table of claims.json
State lives in ``--root``/<task>/ (plan.json, finals.jsonl, latency.json). ``--accelerator`` is handed to the
package's training functions unchanged (they place the work); the figures of record are the CPU ones.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from claims_report import recipe_tag as _recipe  # the tag finals.jsonl rows carry (one definition, in the report)

from kdnas_bench.distill.inherit import TeacherShape
from kdnas_bench.keys import DatasetKey
from kdnas_bench.models import count_params
from kdnas_bench.search.api import SearchRequest, SupernetOptions, parse_head_dim, run_search
from kdnas_bench.search.baselines import families, scaled_to_budget
from kdnas_bench.space import Arch, SearchSpace, Shape

SPACE = "search/spaces/minilm-students.toml"
TEACHER_ARCH = Arch(6, 384, 12, 1536)
SHAPE = Shape(1, 128)
ART = Path("runs/claims")  # default --root
HAND = ("minilm-scaled", "minilm-l3-scaled", "tinybert-scaled", "tinybert-whole-heads", "layer-dropped",
        "layer-dropped-bottom", "layer-dropped-third")


# the benchmark's names of the library's families (kdnas_bench.search.baselines), for the MiniLM teacher's shape
_LIBRARY = {"minilm-scaled": "minilm", "minilm-l3-scaled": "minilm-l3", "tinybert-scaled": "tinybert",
            "tinybert-whole-heads": "tinybert-whole-heads", "layer-dropped": "layerdrop",
            "layer-dropped-bottom": "layerdrop-bottom"}
_SHAPES = families(TeacherShape(TEACHER_ARCH.layers, TEACHER_ARCH.hidden, TEACHER_ARCH.heads, TEACHER_ARCH.ffn))
FAMILIES: dict[str, tuple[str, Callable[[], list[Arch]]]] = {
    name: (_SHAPES[lib][0], lambda lib=lib: list(_SHAPES[lib][1])) for name, lib in _LIBRARY.items()}
# not scaled by the predictor: a third of the layers for a third of the latency, the rule of thumb; whether it meets
# the measured budget is for the report to say
FAMILIES["layer-dropped-third"] = ("the teacher with a third of its layers (full width, teacher weights), unscaled",
                                   lambda: [Arch(TEACHER_ARCH.layers // 3, 384, 12, 1536)])


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def _append(path: Path, rec: dict[str, Any]) -> None:
    with path.open("a") as fh:
        fh.write(json.dumps(rec) + "\n")


def accelerator_kwargs(fn: Callable[..., Any], accelerator: str | None) -> dict[str, Any]:
    """``{"accelerator": a}`` when ``fn`` takes one; nothing for the CPU default; exit when it is asked for and
    ``fn`` cannot take it (this checkout has no accelerator path there)."""
    if accelerator in (None, "cpu"):
        return {}
    params = inspect.signature(fn).parameters
    takes_options = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()) and fn.__name__ == "distill"
    if "accelerator" not in params and not takes_options:  # distill(**options): DistillOptions has accelerator
        sys.exit(f"--accelerator {accelerator}: {fn.__module__}.{fn.__name__} takes no accelerator in this checkout")
    return {"accelerator": accelerator}


@contextlib.contextmanager
def dev_predictions(store: list[Any]) -> Iterator[None]:
    """Keep the dev predictions :func:`~kdnas_bench.distill.distill` scores a student with (for the paired
    bootstrap): its scoring calls ``trainer.evaluate``, wrapped here for the duration."""
    from kdnas_bench.distill import trainer
    from kdnas_bench.distill.training import predict

    original = trainer.evaluate

    def keep(model: Any, data: Any, task: Any) -> dict[str, float]:
        pred = predict(model, data, task)
        store.append(pred)
        return task.score(pred, data.labels)

    trainer.evaluate = keep  # type: ignore[assignment]
    try:
        yield
    finally:
        trainer.evaluate = original  # type: ignore[assignment]


def _search(args: argparse.Namespace, work: Path, budget: float) -> tuple[Arch, dict[str, Any], Any, dict[str, Any]]:
    """Supernet + search here: the winner, the plan's search fields, the supernet and its doc."""
    from kdnas_bench.supernet import SupernetConfig
    from kdnas_bench.supernet.train import ensure_supernet

    space = SearchSpace.load(SPACE)
    cfg = SupernetConfig(examples=args.supernet_examples, epochs=args.supernet_epochs, seed=0)
    net, doc = ensure_supernet(args.teacher, args.task, space, work / "supernet", data_dir=args.data_dir, cfg=cfg,
                               progress=True, **accelerator_kwargs(ensure_supernet, args.accelerator))
    req = SearchRequest(DatasetKey(args.device, "torch", 1), (budget,), args.task, reward_w=args.reward_w,
                        reward_form=args.reward, shape=SHAPE, episodes=args.episodes, candidates=args.candidates,
                        evaluator="supernet",
                        teacher=args.teacher, data_dir=args.data_dir, space=SPACE, predictors=args.predictors,
                        supernet=SupernetOptions(str(work / "supernet"), args.supernet_examples, args.supernet_epochs,
                                                 args.rerank_top, args.rerank_examples, args.rerank_epochs),
                        run_dir=str(work / "search"), head_dim=parse_head_dim(args.head_dim))
    t1 = time.perf_counter()
    res = run_search(req).summary()
    (w,) = res["winners"]
    info = {"winner": w, "head_dim": args.head_dim, "search_seconds": round(time.perf_counter() - t1, 1),
            "supernet": {k: doc.get(k) for k in ("train_seconds", "steps", "largest", "smallest")},
            "supernet_recipe": doc["recipe"], "evaluations": res["evaluations"], "searched_from": "this search"}
    return Arch.from_dict(w["arch"]), info, net, doc


def search_run_winner(run: Path, searched: str | None = None) -> tuple[Arch, dict[str, Any]]:
    """The winner of a finished ``kdnas-bench search`` run folder (its ``result.json``; one budget) and what the
    plan records of it. ``searched`` (an arch given as well) must be that winner: a claims row never names an arch
    its run folder did not pick."""
    path = run / "result.json"
    if not path.is_file():
        sys.exit(f"--search-run {run}: no result.json there (is the search finished?)")
    res = json.loads(path.read_text())
    winners = res.get("winners") or []
    if len(winners) != 1:
        sys.exit(f"--search-run {run}: {len(winners)} winners in result.json; the claims need a one-budget search")
    w = winners[0]
    arch = Arch.from_dict(w["arch"])
    if searched is not None and Arch.parse(searched) != arch:
        sys.exit(f"--searched {searched} is not the winner of {path} ({arch})")
    keep = ("predicted_latency_ms", "predicted_latency_ms_high", "proxy_metric", "reward", "latency_check",
            "latency_ms", "latency_source", "share_of_budget", "latency_checks", "passed_over")
    return arch, {"run_folder": run.name, "run_path": str(run), "budget_ms": w.get("budget_ms"),
                  "evaluations": res.get("evaluations"),
                  "winner": {"arch": arch.to_dict(), **{k: w[k] for k in keep if k in w}}}


def _init_model(args: argparse.Namespace, name: str, arch: Arch, teacher: Any, net: Any, data: Any,
                seed: int) -> tuple[Any, list[int] | None]:
    """A student's starting model (None: the package's own inherited init) and the teacher layers it keeps where
    they were chosen by importance (--layer-choice importance)."""
    from kdnas_bench.distill.layerchoice import teacher_layers
    from kdnas_bench.distill.layerdrop import layer_dropped
    from kdnas_bench.distill.trainer import init_student

    if name.startswith("layer-dropped"):
        return layer_dropped(teacher.model, arch.layers, keep="bottom" if name == "layer-dropped-bottom" else "spread"), None
    if net is not None and args.init == "supernet":
        return net.extract(arch), None
    if args.layer_choice == "spread":
        return None, None
    model = init_student(arch, teacher, data.task, seed=seed, data=data.train, layer_choice=args.layer_choice)
    kept = teacher_layers(teacher.model, data.train, arch.layers, regression=data.task.is_regression, seed=seed)
    return model, kept


def train(args: argparse.Namespace) -> None:
    import torch

    from kdnas_bench.distill import distill, load_teacher
    from kdnas_bench.distill.trainer import evaluate, prepare_data
    from kdnas_bench.predictors.registry import load_predictor

    torch.set_num_threads(1)
    work = Path(args.work or Path(args.root) / args.task)
    work.mkdir(parents=True, exist_ok=True)
    pred = load_predictor(args.device, "torch", 1, root=args.predictors)
    teacher_pred = float(pred.predict_interval([(TEACHER_ARCH, SHAPE)]).mid[0])
    if args.budget_basis == "given":
        if args.teacher_ms is None:
            sys.exit("--budget-basis given needs --teacher-ms")
        budget = round(args.teacher_ms / 3, 2)
    else:  # the shapes are scaled in the predictor's units: so is the budget (a measured ms from another day is not)
        budget = round(teacher_pred / 3, 2)
    teacher = load_teacher(args.teacher, task=args.task)
    net = None
    if args.search_run:
        winner, search = search_run_winner(Path(args.search_run), args.searched)
        info: dict[str, Any] = {"searched_from": args.searched_from or f"kdnas-bench search, run folder {args.search_run}",
                                "head_dim": args.head_dim, "winner": search["winner"], "search": search}
    elif args.searched:
        winner = Arch.parse(args.searched)
        info = {"searched_from": args.searched_from or "given (--searched)", "head_dim": args.head_dim,
                "winner": {"arch": winner.to_dict()}}
    else:
        winner, info, net, _ = _search(args, work, budget)
    if args.init == "supernet" and net is None:
        from kdnas_bench.supernet import SupernetConfig
        from kdnas_bench.supernet.train import ensure_supernet

        cfg = SupernetConfig(examples=args.supernet_examples, epochs=args.supernet_epochs, seed=0)
        net, doc = ensure_supernet(args.teacher, args.task, SearchSpace.load(SPACE), work / "supernet",
                                   data_dir=args.data_dir, cfg=cfg, progress=True,
                                   **accelerator_kwargs(ensure_supernet, args.accelerator))
        info["supernet_recipe"] = doc["recipe"]
    data = prepare_data(teacher.tokenizer, args.task, data_dir=args.data_dir, max_examples=args.final_examples)

    def predicted(arch: Arch) -> float:
        return float(pred.predict_interval([(arch, SHAPE)]).mid[0])

    def oneshot(arch: Arch) -> float | None:
        return None if net is None else float(evaluate(net.extract(arch), data.dev, data.task)[data.task.primary_metric])

    wanted = [s.strip() for s in args.students.split(",")] if args.students else ["searched", *HAND]
    bad = [s for s in wanted if s not in ("searched", *HAND, "fast-match")]
    if bad:
        sys.exit(f"--students: unknown {', '.join(bad)} (known: searched, fast-match, {', '.join(HAND)})")
    hand_budget = budget * (1 - args.scale_margin)
    students = {"searched": winner, **{n: scaled_to_budget(FAMILIES[n][1](), hand_budget, predicted) for n in HAND}}
    students["layer-dropped-third"] = FAMILIES["layer-dropped-third"][1]()[0]
    if "fast-match" in wanted and net is not None and not (args.searched or args.search_run):  # claim (c): as in session 5
        evals = _jsonl(work / "search" / "evaluations.jsonl")
        best_hand = max((students[n] for n in HAND if not n.startswith("layer-dropped")),
                        key=lambda a: oneshot(a) or 0.0)
        target = (oneshot(best_hand) or 0.0) - 0.003
        cands = [Arch.from_dict(e["arch"]) for e in evals
                 if e["metric"] >= target and count_params(Arch.from_dict(e["arch"])) < count_params(best_hand)]
        if cands:
            students["fast-match"] = min(cands, key=predicted)
    students = {k: v for k, v in students.items() if k in wanted}
    init_name = "supernet sub-network" if args.init == "supernet" else "inherited (importance-rewired teacher)"
    if args.layer_choice != "spread":
        if args.init == "supernet":
            sys.exit("--layer-choice importance needs --init inherit (a supernet sub-network keeps its own layers)")
        init_name = "inherited (importance-rewired teacher, layers chosen by importance)"
    plan = {"task": args.task, "budget_ms": budget, "budget_basis": args.budget_basis, "teacher_ms": args.teacher_ms,
            "teacher_predicted_ms": teacher_pred, "hand_scaled_to_ms": round(hand_budget, 2),
            "teacher": str(args.teacher),
            **info, "students": {k: {"arch": str(a), "predicted_ms": predicted(a), "params": count_params(a),
                                     "oneshot": oneshot(a), "family": FAMILIES[k][0] if k in FAMILIES else k}
                                 for k, a in students.items()},
            "final": {"examples": len(data.train), "train_total": data.train_total, "epochs": args.final_epochs,
                      "losses": args.losses, "lr": args.final_lr, "batching": args.final_batching,
                      "init": init_name, "seeds": args.seeds,
                      "layer_dropped_init": "the teacher's own layers (layerdrop.layer_dropped)"}}
    recipe = _recipe(plan["final"])
    if (work / "plan.json").is_file():  # a run on another subset of --students with the same recipe: keep its ones
        before = json.loads((work / "plan.json").read_text())
        if _recipe(before["final"]) == recipe:
            plan["students"] = {**before["students"], **plan["students"]}
            # what this run does not set stays (e.g. notes on extra students); a replaced searched student is kept
            plan = {**{k: v for k, v in before.items() if k not in plan}, **plan}
            was = before["students"].get("searched")
            if was and "searched" in students and was["arch"] != plan["students"]["searched"]["arch"]:
                plan["replaced_searched"] = {"arch": was["arch"], "searched_from": before.get("searched_from")}
    (work / "plan.json").write_text(json.dumps(plan, indent=2) + "\n")
    done = {(r["name"], r["arch"], r["seed"]) for r in _jsonl(work / "finals.jsonl") if r.get("recipe") == recipe}
    extra = accelerator_kwargs(distill, args.accelerator)
    for seed in range(args.seeds):  # seed 0 of every student first
        for name, arch in students.items():
            if (name, str(arch), seed) in done:
                continue
            init_model, kept_layers = _init_model(args, name, arch, teacher, net, data, seed)
            kept: list[Any] = []
            with dev_predictions(kept):
                r = distill(teacher, args.task, arch, data=data, epochs=args.final_epochs, losses=args.losses, seed=seed,
                            lr=args.final_lr, batching=args.final_batching, init_model=init_model, progress=True,
                            **extra)
            preds = [round(float(x), 4) for x in kept[-1]] if kept else None
            rec = {"name": name, "arch": str(arch), "seed": seed, "metric": r.primary, "metrics": r.metrics,
                   "train_seconds": r.train_seconds, "train_examples": r.train_examples, "recipe": recipe,
                   "accelerator": args.accelerator or "cpu", "dev_predictions": preds,
                   **({"teacher_layers": kept_layers} if kept_layers is not None else {})}
            _append(work / "finals.jsonl", rec)
            done.add((name, str(arch), seed))
            print(json.dumps({k: v for k, v in rec.items() if k != "dev_predictions"}), flush=True)


def interleaved_times(models: dict[str, Any], inputs: dict[str, Any], rounds: int, warmup: int) -> dict[str, list[float]]:
    """Milliseconds per call of every model, one call of each in turn (order shuffled every round, seeded) for
    ``rounds`` rounds after ``warmup`` untimed ones: drift hits every model alike."""
    import random

    import torch

    times: dict[str, list[float]] = {name: [] for name in models}
    rng = random.Random(0)
    with torch.inference_mode():
        for r in range(warmup + rounds):
            order = list(models)
            rng.shuffle(order)
            for name in order:
                t0 = time.perf_counter()
                models[name](**inputs)
                if r >= warmup:
                    times[name].append((time.perf_counter() - t0) * 1e3)
    return times


def measure(args: argparse.Namespace) -> None:
    """Latency of the teacher and every student here (torch, 1 thread, 1 x 128), interleaved: one call of each
    model in turn (order shuffled every round) for ``--rounds`` rounds after a warm-up, so that the VM's drift
    hits all of them alike; the median per model. (Timed one after another, the same arch measured 14.6 and
    17.2 ms a minute apart.)"""
    import torch

    from kdnas_bench.models import build_model, make_inputs
    from kdnas_bench.profiling.device import hardware

    torch.set_num_threads(1)
    work = Path(args.work or Path(args.root) / args.task)
    plan = json.loads((work / "plan.json").read_text())
    archs = {"teacher": str(TEACHER_ARCH), **{k: v["arch"] for k, v in plan["students"].items()}, **_extra(args)}
    models = {name: build_model(Arch.parse(a)).eval() for name, a in archs.items()}
    times = interleaved_times(models, make_inputs(SHAPE), args.rounds, args.warmup)
    out = {"device_id": hardware(with_gpu=False).device_id, "shape": "1x128", "backend": "torch", "threads": 1,
           "method": f"interleaved, {args.rounds} rounds, median", "ms": {}, "p10_p90_ms": {},
           "archs": archs}  # what each name was when timed: the report takes a row's latency by its arch
    for name, arch in archs.items():
        ts = sorted(times[name])
        out["ms"][name] = statistics.median(ts)
        out["p10_p90_ms"][name] = [ts[len(ts) // 10], ts[(9 * len(ts)) // 10]]
        print(name, arch, f"{out['ms'][name]:.2f} ms (p10-p90 {ts[len(ts) // 10]:.2f}-{ts[(9 * len(ts)) // 10]:.2f})",
              flush=True)
    (work / "latency.json").write_text(json.dumps(out, indent=2) + "\n")


def _extra(args: argparse.Namespace, rows: bool = False) -> dict[str, str]:
    """``--extra NAME=ARCH[@ROWS]``: more students to time and report (e.g. an earlier search's winner, distilled
    with the same recipe into the same finals.jsonl, its finals recorded under the name ROWS, e.g. searched).
    ``rows=True``: the name each one's finals carry instead of its arch."""
    out = {}
    for item in args.extra or []:
        name, _, spec = item.partition("=")
        arch, _, row = spec.partition("@")
        out[name] = (row or name) if rows else str(Arch.parse(arch))
    return out


def repoint(args: argparse.Namespace) -> None:
    """The searched row of a task re-pointed to another finished search run (offline: nothing is trained or timed).
    Its winner must already have finals with the plan's recipe for every seed (under another row's name: the same
    arch, recipe, seed and init are the same training; the layer-dropped rows, which start from the teacher's own
    layers, never count) and a latency in the table's own timing (``latency.json``, by arch); the finals are recorded
    again under the name ``searched`` with ``same_training_as``, the plan records the run and the replaced arch."""
    from kdnas_bench.predictors.registry import load_predictor

    work = Path(args.work or Path(args.root) / args.task)
    plan = json.loads((work / "plan.json").read_text())
    winner, search = search_run_winner(Path(args.search_run))
    arch, recipe = str(winner), _recipe(plan["final"])
    finals = [r for r in _jsonl(work / "finals.jsonl") if r.get("recipe") == recipe and r["arch"] == arch]
    have = {r["seed"]: r for r in finals if r["name"] == "searched"}
    other = {r["seed"]: r for r in finals if not r["name"].startswith("layer-dropped") and r["name"] != "searched"}
    missing = [s for s in range(plan["final"]["seeds"]) if s not in have and s not in other]
    if missing:
        sys.exit(f"repoint: {arch} has no finals with the plan's recipe for seed(s) {missing} in {work}/finals.jsonl; "
                 "distil it with `train --search-run` instead")
    lat = json.loads((work / "latency.json").read_text()) if (work / "latency.json").is_file() else {}
    if arch not in (lat.get("archs") or {}).values():
        sys.exit(f"repoint: {arch} was not timed in {work}/latency.json (by arch); time it with `measure --extra`")
    for seed in sorted(set(other) - set(have)):
        _append(work / "finals.jsonl", {**other[seed], "name": "searched", "same_training_as": other[seed]["name"]})
    was = plan["students"]["searched"]
    if was["arch"] != arch:
        plan["replaced_searched"] = {"arch": was["arch"], "searched_from": plan.get("searched_from")}
    pred = load_predictor(args.device, "torch", 1, root=args.predictors)
    plan["students"]["searched"] = {"arch": arch, "predicted_ms": float(pred.predict_interval([(winner, SHAPE)]).mid[0]),
                                    "params": count_params(winner), "oneshot": None, "family": "searched"}
    plan.update(searched_from=args.searched_from or f"kdnas-bench search, run folder {args.search_run}",
                winner=search["winner"], search=search)
    (work / "plan.json").write_text(json.dumps(plan, indent=2) + "\n")
    print(f"{args.task}: searched {was['arch']} -> {arch} ({search['run_folder']})")


def report(args: argparse.Namespace) -> None:
    from claims_report import build_report, rank_fidelity_entry

    front = None
    if args.front:  # FRONT.json[:PLOTS_DIR]: a search's front file and where its per-device plots are
        path, _, plots = args.front.partition(":")
        doc = json.loads(Path(path).read_text())
        front = {"file": path, "points": len(doc["front"]), "budgets_ms": doc.get("budgets_ms"), "picks": doc.get("picks"),
                 "source": args.front_source, "plots": sorted(str(p) for p in Path(plots).glob("front-*.png")) if plots
                 else []}
    build_report(Path(args.root), args.tasks.split(","), Path(args.out), extra=_extra(args), extra_rows=_extra(args, True),
                 rank_fidelity=[rank_fidelity_entry(f) for f in args.rank_fidelity or []],
                 apart=[t for t in (args.apart or "").split(",") if t], command=" ".join(sys.argv), front=front,
                 add_to_earlier=[t for t in (args.add_to_earlier or "").split(",") if t])


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="phase", required=True)
    tr = sub.add_parser("train")
    tr.add_argument("--task", required=True)
    tr.add_argument("--teacher", required=True)
    tr.add_argument("--teacher-ms", type=float, help="The teacher's measured latency here (1x128, t1); the budget with "
                    "--budget-basis given.")
    tr.add_argument("--scale-margin", type=float, default=0.05,
                    help="Hand-crafted shapes are scaled to the budget less this share, so that they meet the budget "
                    "when measured (the predictor's error on one shape is a few percent).")
    tr.add_argument("--budget-basis", choices=("predicted", "given"), default="predicted",
                    help="The budget the shapes are scaled to: the teacher's predicted latency / 3 (default: the same "
                    "units as the students' predictions), or --teacher-ms / 3.")
    tr.add_argument("--device", required=True, help="Whose latency predictor scales the shapes to the budget.")
    tr.add_argument("--predictors", default="predictors")
    tr.add_argument("--data-dir", default="../shared/data/glue")
    tr.add_argument("--searched", help="Skip the search: the searched student is this arch (an earlier search's).")
    tr.add_argument("--searched-from", help="Where --searched comes from (recorded in the plan): e.g. the exact "
                    "search command and its run folder.")
    tr.add_argument("--search-run", help="A finished `kdnas-bench search` run folder: the searched student is the "
                    "winner in its result.json (--searched, if given too, must equal it); the plan records the run.")
    tr.add_argument("--students", help=f"Comma list of students to distil (default: searched,{','.join(HAND)}).")
    tr.add_argument("--init", choices=("supernet", "inherit"), default="supernet",
                    help="Every student's init: its supernet sub-network, or the teacher rewired and sliced.")
    tr.add_argument("--layer-choice", choices=("spread", "importance"), default="spread",
                    help="Which teacher layers a shallower student inherits (--init inherit): evenly spread, or "
                    "chosen by greedy elimination on task data (kdnas_bench.distill.layerchoice).")
    tr.add_argument("--accelerator", help="Handed to the package's training functions (e.g. cuda) where they take it.")
    tr.add_argument("--supernet-examples", type=int, default=4000)
    tr.add_argument("--supernet-epochs", type=float, default=1.0)
    tr.add_argument("--episodes", type=int, default=8)
    tr.add_argument("--candidates", type=int, default=10)
    tr.add_argument("--rerank-top", type=int, default=4)
    tr.add_argument("--rerank-examples", type=int, default=500)
    tr.add_argument("--rerank-epochs", type=float, default=2.0)
    tr.add_argument("--reward", choices=("hard", "soft"), default="hard",
                    help="The search's reward: hard (the metric within the budget, the tool's default) or soft.")
    tr.add_argument("--reward-w", type=float, default=0.0, help="--reward soft: the latency exponent w.")
    tr.add_argument("--final-examples", type=int, default=None)
    tr.add_argument("--final-epochs", type=float, default=1.0)
    tr.add_argument("--losses", default="logits,ce")
    tr.add_argument("--final-lr", type=float, default=5e-4)
    tr.add_argument("--final-batching", choices=("random", "length"), default="random")
    tr.add_argument("--seeds", type=int, default=1)
    tr.add_argument("--head-dim", help="Search only archs of this head size ('teacher': the teacher's own).")
    tr.add_argument("--work")
    me = sub.add_parser("measure")
    me.add_argument("--task", required=True)
    me.add_argument("--work")
    me.add_argument("--rounds", type=int, default=100)
    me.add_argument("--extra", action="append", help="NAME=ARCH: time another student too (repeatable).")
    me.add_argument("--warmup", type=int, default=5)
    rp = sub.add_parser("report")
    rp.add_argument("--tasks", default="sst2,mrpc,rte,stsb")
    rp.add_argument("--out", default="benchmarks/results/claims.json",
                    help="Written in place; tasks with no plan under --root keep their earlier entry, marked.")
    rp.add_argument("--extra", action="append", help="NAME=ARCH[@ROWS]: report another student's finals too, recorded "
                    "under the name ROWS (default NAME; repeatable); TASK:NAME=... for that task only.")
    rp.add_argument("--rank-fidelity", action="append", help="A bench_rank_fidelity.py output file to record (tau per "
                    "cheap score; repeatable, one per task; tasks not given keep their earlier record).")
    rp.add_argument("--apart", help="Tasks reported apart and left out of the averages (teacher near chance).")
    rp.add_argument("--add-to-earlier", help="Tasks whose earlier entry (in --out) keeps its students and gets this "
                    "run's ones added, every latency from this run's timing (e.g. a baseline the earlier run lacked).")
    rp.add_argument("--front", help="FRONT_JSON[:PLOTS_DIR]: a search's front (kdnas-bench search --front) to record.")
    rp.add_argument("--front-source", help="How that front was made (recorded with it).")
    rt = sub.add_parser("repoint", help="Point a task's searched row at another finished search run whose winner "
                        "already has finals and a latency in the table (offline, nothing re-run).")
    rt.add_argument("--task", required=True)
    rt.add_argument("--search-run", required=True, help="The run folder (its result.json names one winner).")
    rt.add_argument("--searched-from", help="The search command, recorded in the plan.")
    rt.add_argument("--device", default="amd-epyc-2c-243f6e", help="Whose predictor gives the row's predicted_ms.")
    rt.add_argument("--predictors", default="predictors")
    rt.add_argument("--work")
    tb = sub.add_parser("table", help="Print the Markdown table of a written claims.json (offline, nothing re-run).")
    tb.add_argument("--claims", default="benchmarks/results/claims.json")
    for p in (tr, me, rp, rt):
        p.add_argument("--root", default=str(ART), help="Work area; one folder per task below it.")
    args = ap.parse_args()
    if args.phase == "table":
        from claims_report import table_from

        print(table_from(Path(args.claims)))
        return
    if args.phase == "train":
        if args.search_run:
            search_run_winner(Path(args.search_run), args.searched)  # a bad run folder: one line before any work
        if args.seeds < 1 or args.final_epochs <= 0:
            sys.exit("--seeds must be >= 1 and --final-epochs positive")
        if args.searched:
            try:
                Arch.parse(args.searched)
            except Exception as exc:
                sys.exit(f"--searched: {exc}")
        if not Path(args.teacher, "config.json").is_file():
            sys.exit(f"--teacher {args.teacher}: no config.json there")
    {"train": train, "measure": measure, "report": report, "repoint": repoint}[args.phase](args)


if __name__ == "__main__":
    main()
