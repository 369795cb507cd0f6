"""The KD-NAS paper's claims at our scale, per GLUE task (figures, not pass/fail).

For one task: train (or reuse) the supernet of the teacher's students, search under budget = the teacher's
measured latency / 3 with the one-shot supernet evaluator plus successive-halving re-ranking, then distil
the winner and two hand-crafted shapes scaled to the budget (MiniLM: 6 layers, heads = hidden / 32, FFN =
4 x hidden; TinyBERT-4L/312/12/1200: 4 layers, 12 heads, FFN = 3.85 x hidden) with the SAME init (each
from its supernet sub-network) and recipe, for --seeds seeds; and for claim (c) the fastest searched arch
whose one-shot score is within 0.3 points of the best hand-crafted one's, with fewer parameters.

Three phases, so that heavy work and latency timing stay apart (run the first under /work/tools/heavy,
the second under /work/tools/quiet):
  python benchmarks/bench_claims.py train   --task sst2 --teacher T --teacher-ms 27.3 ...   # resumable
  python benchmarks/bench_claims.py measure --task sst2                                  # latency here
  python benchmarks/bench_claims.py report  --tasks sst2,mrpc,rte,stsb                   # table + JSON
State lives in --work (default /work/artifacts/issue11/claims/<task>/).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

from kdnas_bench.keys import DatasetKey
from kdnas_bench.models import count_params
from kdnas_bench.search.api import SearchRequest, SupernetOptions, parse_head_dim, run_search
from kdnas_bench.space import Arch, SearchSpace, Shape

SPACE = "search/spaces/minilm-students.toml"
TEACHER_ARCH = Arch(6, 384, 12, 1536)
SHAPE = Shape(1, 128)
ART = Path("/work/artifacts/issue11/claims")  # default --root


def _families() -> dict[str, list[Arch]]:
    minilm = [Arch(6, h, h // 32, 4 * h) for h in range(64, 385, 32)]
    tiny = []
    for h in range(96, 385, 12):
        heads = 12 if h // 12 >= 16 else max(a for a in (2, 4, 6) if h % a == 0)
        tiny.append(Arch(4, h, heads, round(h * 1200 / 312 / 4) * 4))
    return {"minilm-scaled": minilm, "tinybert-scaled": tiny}


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


def _recipe(final: dict[str, Any]) -> str:
    """A short tag of the final-distillation recipe: finals of another recipe are never mixed in."""
    return (f"n{final['examples']}-e{final['epochs']}-lr{final.get('lr', 5e-4)}-{final['losses']}"
            f"-{final.get('batching', 'random')}")


def train(args: argparse.Namespace) -> None:
    import torch

    from kdnas_bench.distill import load_teacher
    from kdnas_bench.distill.trainer import distill, evaluate, prepare_data
    from kdnas_bench.predictors.registry import load_predictor
    from kdnas_bench.supernet import SupernetConfig
    from kdnas_bench.supernet.train import ensure_supernet

    torch.set_num_threads(1)
    work = Path(args.work or Path(args.root) / args.task)
    work.mkdir(parents=True, exist_ok=True)
    budget = round(args.teacher_ms / 3, 2)
    space = SearchSpace.load(SPACE)
    t0 = time.perf_counter()
    cfg = SupernetConfig(examples=args.supernet_examples, epochs=args.supernet_epochs, seed=0)
    net, doc = ensure_supernet(args.teacher, args.task, space, work / "supernet", data_dir=args.data_dir, cfg=cfg,
                               progress=True)
    print(f"supernet: {doc['train_seconds']:.0f} s training ({time.perf_counter() - t0:.0f} s now)", flush=True)
    req = SearchRequest(DatasetKey(args.device, "torch", 1), (budget,), args.task, reward_w=args.reward_w,
                        shape=SHAPE, episodes=args.episodes, candidates=args.candidates, evaluator="supernet",
                        teacher=args.teacher, data_dir=args.data_dir, space=SPACE, predictors=args.predictors,
                        supernet=SupernetOptions(str(work / "supernet"), args.supernet_examples, args.supernet_epochs,
                                                 args.rerank_top, args.rerank_examples, args.rerank_epochs),
                        run_dir=str(work / "search"), head_dim=parse_head_dim(args.head_dim))
    print(req, flush=True)
    t1 = time.perf_counter()
    res = run_search(req).summary()
    search_seconds = time.perf_counter() - t1
    (w,) = res["winners"]
    winner = Arch.from_dict(w["arch"])
    teacher = load_teacher(args.teacher, task=args.task)
    data = prepare_data(teacher.tokenizer, args.task, data_dir=args.data_dir, max_examples=args.final_examples)
    pred = load_predictor(args.device, "torch", 1, root=args.predictors)

    def predicted(arch: Arch) -> float:
        return float(pred.predict_interval([(arch, SHAPE)]).mid[0])

    def oneshot(arch: Arch) -> float:
        return float(evaluate(net.extract(arch), data.dev, data.task)[data.task.primary_metric])

    hand = {}
    for name, family in _families().items():
        fits = [a for a in family if predicted(a) <= budget]
        hand[name] = max(fits, key=predicted) if fits else min(family, key=predicted)
    evals = _jsonl(work / "search" / "evaluations.jsonl")
    best_hand = max(hand.values(), key=oneshot)
    target = oneshot(best_hand) - 0.003
    cands = [Arch.from_dict(e["arch"]) for e in evals if e["metric"] >= target and count_params(
        Arch.from_dict(e["arch"])) < count_params(best_hand)]
    fast = min(cands, key=predicted) if cands else None
    students = {"searched": winner, **hand, **({"fast-match": fast} if fast else {})}
    plan = {"task": args.task, "budget_ms": budget, "teacher_ms": args.teacher_ms, "winner": w,
            "head_dim": args.head_dim, "search_seconds": round(search_seconds, 1), "supernet": {k: doc.get(k) for k in
                                                                     ("train_seconds", "steps", "largest", "smallest")},
            "supernet_recipe": doc["recipe"], "evaluations": res["evaluations"], "students": {
                k: {"arch": str(a), "predicted_ms": predicted(a), "params": count_params(a), "oneshot": oneshot(a)}
                for k, a in students.items()},
            "final": {"examples": len(data.train), "train_total": data.train_total, "epochs": args.final_epochs,
                      "losses": args.losses, "lr": args.final_lr, "batching": args.final_batching,
                      "init": "supernet sub-network", "seeds": args.seeds}}
    (work / "plan.json").write_text(json.dumps(plan, indent=2) + "\n")
    recipe = _recipe(plan["final"])
    done = {(r["arch"], r["seed"]) for r in _jsonl(work / "finals.jsonl") if r.get("recipe") == recipe}
    # seed 0 of every student first, then more seeds of the searched and hand-crafted ones, claim (c)'s last
    order = [(seed, name) for seed in range(args.seeds) for name in students if name != "fast-match" or seed == 0]
    order += [(seed, "fast-match") for seed in range(1, args.seeds) if "fast-match" in students]
    for seed, name in order:
        arch = students[name]
        if (str(arch), seed) in done:
            continue
        r = distill(teacher, args.task, arch, data=data, epochs=args.final_epochs, losses=args.losses, seed=seed,
                    lr=args.final_lr, batching=args.final_batching, init_model=net.extract(arch), progress=True)
        rec = {"name": name, "arch": str(arch), "seed": seed, "metric": r.primary, "metrics": r.metrics,
               "train_seconds": r.train_seconds, "train_examples": r.train_examples, "recipe": recipe}
        _append(work / "finals.jsonl", rec)
        done.add((str(arch), seed))
        print(json.dumps(rec), flush=True)


def measure(args: argparse.Namespace) -> None:
    """Latency of the teacher and every student here (torch, 1 thread, 1 x 128), interleaved: one call of each
    model in turn (order shuffled every round) for ``--rounds`` rounds after a warm-up, so that the VM's drift
    hits all of them alike; the median per model. (Timed one after another, the same arch measured 14.6 and
    17.2 ms a minute apart.)"""
    import random

    import torch

    from kdnas_bench.models import build_model, make_inputs
    from kdnas_bench.profiling.device import hardware

    torch.set_num_threads(1)
    work = Path(args.work or Path(args.root) / args.task)
    plan = json.loads((work / "plan.json").read_text())
    archs = {"teacher": str(TEACHER_ARCH), **{k: v["arch"] for k, v in plan["students"].items()}, **_extra(args)}
    models = {name: build_model(Arch.parse(a)).eval() for name, a in archs.items()}
    inputs = make_inputs(SHAPE)
    times: dict[str, list[float]] = {name: [] for name in models}
    rng = random.Random(0)
    with torch.inference_mode():
        for r in range(args.warmup + args.rounds):
            order = list(models)
            rng.shuffle(order)
            for name in order:
                t0 = time.perf_counter()
                models[name](**inputs)
                if r >= args.warmup:
                    times[name].append((time.perf_counter() - t0) * 1e3)
    out = {"device_id": hardware(with_gpu=False).device_id, "shape": "1x128", "backend": "torch", "threads": 1,
           "method": f"interleaved, {args.rounds} rounds, median", "ms": {}, "p10_p90_ms": {}}
    for name, arch in archs.items():
        ts = sorted(times[name])
        out["ms"][name] = statistics.median(ts)
        out["p10_p90_ms"][name] = [ts[len(ts) // 10], ts[(9 * len(ts)) // 10]]
        print(name, arch, f"{out['ms'][name]:.2f} ms (p10-p90 {ts[len(ts) // 10]:.2f}-{ts[(9 * len(ts)) // 10]:.2f})",
              flush=True)
    (work / "latency.json").write_text(json.dumps(out, indent=2) + "\n")


def _extra(args: argparse.Namespace) -> dict[str, str]:
    """``--extra NAME=ARCH``: more students to time and report (e.g. an earlier search's winner, distilled with the
    same recipe into the same finals.jsonl)."""
    out = {}
    for item in args.extra or []:
        name, _, arch = item.partition("=")
        out[name] = str(Arch.parse(arch))
    return out


def _stats(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def report(args: argparse.Namespace) -> None:
    rows, summary = [], {}
    for task in args.tasks.split(","):
        work = Path(args.root) / task
        if not (work / "plan.json").is_file():
            print(f"{task}: no plan yet")
            continue
        plan = json.loads((work / "plan.json").read_text())
        lat = json.loads((work / "latency.json").read_text()) if (work / "latency.json").is_file() else {"ms": {}}
        teacher = json.loads(Path(plan["supernet_recipe"]["teacher"], "metrics.json").read_text())
        recipe = _recipe(plan["final"])
        finals = [r for r in _jsonl(work / "finals.jsonl") if r.get("recipe", _recipe({**plan["final"], "lr": 5e-4,
                                                                                       "batching": "random"})) == recipe]
        res: dict[str, Any] = {"task": task, "teacher_metric": teacher["metrics"][teacher["primary_metric"]],
                               "metric_name": teacher["primary_metric"], "budget_ms": plan["budget_ms"],
                               "teacher_ms": lat["ms"].get("teacher", plan["teacher_ms"]), "students": {},
                               "plan": plan}
        extra = {name: {"arch": a, "params": count_params(Arch.parse(a)), "extra": True}
                 for name, a in _extra(args).items()}
        for name, st in {**plan["students"], **extra}.items():
            vals = [r["metric"] for r in finals if r["arch"] == st["arch"]]
            if not vals:
                continue
            mean, std = _stats(vals)
            ms = lat["ms"].get(name)
            res["students"][name] = {**st, "metric_mean": mean, "metric_std": std, "seeds": len(vals),
                                     "values": vals, "measured_ms": ms,
                                     "share_of_teacher": mean / res["teacher_metric"] if res["teacher_metric"] else None,
                                     "within_budget": None if ms is None else ms <= res["teacher_ms"] / 3}
        summary[task] = res
        for name, st in res["students"].items():
            rows.append(f"| {task} | {name} | {st['arch']} | {100 * st['metric_mean']:.2f} ± {100 * st['metric_std']:.2f}"
                        f" ({st['seeds']}) | {100 * (st['share_of_teacher'] or math.nan):.1f} % | "
                        f"{st['measured_ms'] if st['measured_ms'] is None else round(st['measured_ms'], 2)} | "
                        f"{st['params'] / 1e6:.1f} M |")
    print("| task | student | arch | dev metric (seeds) | of teacher | measured ms | params |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="phase", required=True)
    tr = sub.add_parser("train")
    tr.add_argument("--task", required=True)
    tr.add_argument("--teacher", required=True)
    tr.add_argument("--teacher-ms", type=float, required=True, help="The teacher's measured latency here (1x128, t1).")
    tr.add_argument("--device", required=True)
    tr.add_argument("--predictors", required=True)
    tr.add_argument("--data-dir", default="../shared/data/glue")
    tr.add_argument("--supernet-examples", type=int, default=4000)
    tr.add_argument("--supernet-epochs", type=float, default=1.0)
    tr.add_argument("--episodes", type=int, default=8)
    tr.add_argument("--candidates", type=int, default=10)
    tr.add_argument("--rerank-top", type=int, default=4)
    tr.add_argument("--rerank-examples", type=int, default=500)
    tr.add_argument("--rerank-epochs", type=float, default=2.0)
    tr.add_argument("--reward-w", type=float, default=0.0)
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
    rp.add_argument("--out", default="benchmarks/results/claims.json")
    rp.add_argument("--extra", action="append", help="NAME=ARCH: report another student's finals too (repeatable).")
    for p in (tr, me, rp):
        p.add_argument("--root", default=str(ART), help="Work area; one folder per task below it.")
    args = ap.parse_args()
    {"train": train, "measure": measure, "report": report}[args.phase](args)


if __name__ == "__main__":
    main()
