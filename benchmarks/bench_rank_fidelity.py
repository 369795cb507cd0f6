"""Rank fidelity of the cheap evaluators against a longer distillation (figures, not pass/fail).

--n students spanning the MiniLM-students space (evenly spaced in parameter count; or, with --band, evenly spaced in
predicted latency within a share of a budget: the candidates a search at that budget decides between) are scored by
  * supernet: the one-shot score (sub-network extracted from the trained supernet, dev metric),
  * proxy-inherit: proxy distillation (--proxy-examples x --proxy-epochs) from inherited weights (new default),
  * proxy-embeddings: the same proxy from today's init (teacher embeddings only; layers random),
and by the reference: distillation on --ref-examples x --ref-epochs from inherited weights (the final recipe).
Kendall tau / Spearman of each against the reference, and CPU seconds per candidate (process time; the
supernet's one-off training time is reported apart). Resumable (--work/scores.jsonl).

Run (one thread, under ../shared/tools/heavy):
  python benchmarks/bench_rank_fidelity.py --task sst2 --teacher T --supernet DIR --n 12
Against full-set finals (the claims recipe; 0 examples = the whole training set), e.g. on MRPC:
  python benchmarks/bench_rank_fidelity.py --task mrpc --teacher T --supernet DIR --supernet-examples 0 \
      --supernet-epochs 2 --n 12 --ref-examples 0 --ref-epochs 3 --ref-lr 2e-4 --ref-batching length \
      --methods supernet,proxy-inherit,reference [--accelerator cuda]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from kdnas_bench.models import count_params
from kdnas_bench.space import Arch, SearchSpace

SPACE = "search/spaces/minilm-students.toml"


def students(n: int, space: str = SPACE) -> list[Arch]:
    archs = sorted(SearchSpace.load(space).archs, key=lambda a: (count_params(a), a))
    return [archs[int(i)] for i in np.linspace(0, len(archs) - 1, n).round()]


def focused(space: SearchSpace, archs: tuple[Arch, ...]) -> SearchSpace:
    """``space`` whose supernet trains only ``archs`` (a benchmark's experiment: the recipe the supernet folder
    records cannot tell it from the whole space's, so keep it in its own folder)."""
    out = dataclasses.replace(space, name=f"{space.name}-focused-{len(archs)}")
    object.__setattr__(out, "_archs", archs)
    return out


TOP = 6  # the places the default search re-ranks by distillation after the one-shot score


def top_places(score: list[float], reference: list[float], k: int) -> dict[str, Any]:
    """What a search that re-ranks the score's top ``k`` gets: how many of the reference's top ``k`` are among them,
    whether the reference's best is, and the reference rank (1 = best) of the score's own best."""
    mine = set(np.argsort(score)[::-1][:k].tolist())
    theirs = np.argsort(reference)[::-1]
    rank = {int(i): r + 1 for r, i in enumerate(theirs)}
    return {f"top{k}_overlap": len(mine & set(theirs[:k].tolist())), f"reference_best_in_top{k}": int(theirs[0]) in mine,
            "reference_rank_of_pick": rank[int(np.argmax(score))]}


def second_reference(log: Path, archs: list[Arch], score: Any) -> dict[str, Any]:
    """The reference rows of another work folder (another seed of the same finals), in ``archs``' order."""
    rows = {}
    for line in log.read_text().splitlines() if log.is_file() else []:
        r = json.loads(line)
        if r["method"] == "reference":
            rows[r["arch"]] = r
    missing = [str(a) for a in archs if str(a) not in rows]
    if missing:
        raise SystemExit(f"--second-reference: {log} has no reference row for {', '.join(missing)}")
    return {"work": str(log.parent.parent), "scores": [score(rows[str(a)]) for a in archs]}


def in_band(predicted_ms: dict[Arch, float], low_ms: float, high_ms: float) -> list[tuple[float, Arch]]:
    """(predicted ms, arch) of the archs predicted within [low_ms, high_ms], fastest first."""
    return sorted((ms, a) for a, ms in predicted_ms.items() if low_ms <= ms <= high_ms)


def band_students(n: int, predicted_ms: dict[Arch, float], low_ms: float, high_ms: float) -> list[Arch]:
    """n students evenly spaced in predicted latency among the archs (of a space) predicted within [low_ms, high_ms]:
    the candidates a search at that budget decides between (below the budget latency earns nothing, so its pick
    comes from near the budget)."""
    inside = in_band(predicted_ms, low_ms, high_ms)
    if len(inside) < n:
        raise SystemExit(f"--band: only {len(inside)} archs are predicted within {low_ms:.2f}-{high_ms:.2f} ms, "
                         f"fewer than --n {n}")
    picks: list[Arch] = []
    for target in np.linspace(inside[0][0], inside[-1][0], n):  # nearest unused arch to each evenly spaced latency
        best = min((abs(ms - target), a) for ms, a in inside if a not in picks)
        picks.append(best[1])
    return picks


def main() -> None:
    import torch
    from scipy.stats import kendalltau, spearmanr

    from kdnas_bench.distill import load_teacher
    from kdnas_bench.distill.trainer import distill, evaluate, prepare_data
    from kdnas_bench.supernet import SupernetConfig
    from kdnas_bench.supernet.train import ensure_supernet

    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="sst2")
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--data-dir", default="../shared/data/glue")
    ap.add_argument("--supernet", required=True)
    ap.add_argument("--supernet-examples", type=int, default=4000)
    ap.add_argument("--supernet-epochs", type=float, default=1.0)
    ap.add_argument("--supernet-losses", default="logits,ce", help="The supernet's losses (e.g. logits,ce,hidden: "
                    "each sub-network layer also against the teacher layer it inherits).")
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--proxy-examples", type=int, default=500)
    ap.add_argument("--proxy-epochs", type=float, default=2.0)
    ap.add_argument("--ref-examples", type=int, default=4000)
    ap.add_argument("--ref-epochs", type=float, default=2.0)
    ap.add_argument("--ref-lr", type=float, default=None, help="The reference's learning rate (default: distill's).")
    ap.add_argument("--ref-batching", choices=("random", "length"), default="random")
    ap.add_argument("--ref-seed", type=int, default=0, help="The reference's seed (another seed in another --work "
                    "measures how well the reference ranks itself: the ceiling of any score's tau).")
    ap.add_argument("--methods", default="supernet,proxy-inherit,proxy-embeddings,reference")
    ap.add_argument("--accelerator", help="Handed to the package's training functions where they take it.")
    ap.add_argument("--losses", default="logits,ce")
    ap.add_argument("--shard", help="K/N: compute only every N-th student from the K-th (0-based), and no table: "
                    "N processes sharing one --work split the students (run once more without it for the table).")
    ap.add_argument("--space", default=SPACE, help="The students' space TOML (default: %(default)s); a search "
                    "run's space.toml to rank within its space, with its supernet.")
    ap.add_argument("--metric", choices=("primary", "glue-mean"), default="primary",
                    help="What ranks: the task's primary metric, or the mean of all its metrics as GLUE reports "
                         "it (MRPC: F1 and accuracy).")
    ap.add_argument("--band", help="LO:HI: rank students whose predicted latency lies within LO..HI x --budget-ms on "
                    "--device (evenly spaced in latency) instead of students spanning the space by size.")
    ap.add_argument("--supernet-focus", choices=("space", "band"), default="space",
                    help="The sub-networks the supernet trains: the whole space's (sandwich of its largest and "
                         "smallest plus random ones), or only the archs predicted within --band (its own largest, "
                         "smallest and random ones: training focused on the candidates a search at that budget "
                         "decides between).")
    ap.add_argument("--budget-ms", type=float, help="With --band: the budget the band is a share of.")
    ap.add_argument("--device", default="amd-epyc-2c-243f6e", help="With --band: the predictor's device "
                    "(torch, one thread, batch 1 x 128 tokens).")
    ap.add_argument("--second-reference", metavar="WORK", help="Another --work whose reference rows are the same "
                    "students' finals with another --ref-seed: how well the reference ranks itself (the ceiling of "
                    "any score's tau), and each score's tau against the mean of the two.")
    ap.add_argument("--list-students", action="store_true", help="Print the students and stop.")
    ap.add_argument("--work", default="runs/rank")
    ap.add_argument("--out", default="benchmarks/results/rank_fidelity.json")
    args = ap.parse_args()
    import sys

    from bench_claims import accelerator_kwargs

    methods = tuple(m.strip() for m in args.methods.split(","))
    if methods[-1] != "reference" or not set(methods) <= {"supernet", "proxy-inherit", "proxy-embeddings", "reference"}:
        sys.exit("--methods: a comma list of supernet, proxy-inherit, proxy-embeddings, ending with reference")
    acc = accelerator_kwargs(distill, args.accelerator)
    full = {"supernet": args.supernet_examples or None, "ref": args.ref_examples or None}  # 0: the whole training set
    torch.set_num_threads(1)
    work = Path(args.work) / args.task
    work.mkdir(parents=True, exist_ok=True)
    log = work / "scores.jsonl"
    done: dict[tuple[str, str], dict[str, Any]] = {}
    if log.exists():
        for line in log.read_text().splitlines():
            try:
                r = json.loads(line)
                done[(r["method"], r["arch"])] = r
            except json.JSONDecodeError:
                continue
    space = SearchSpace.load(args.space)
    band = None
    if args.band:
        lo, _, hi = args.band.partition(":")
        try:
            band = (float(lo), float(hi))
        except ValueError:
            sys.exit(f"--band: expected LO:HI shares of --budget-ms, e.g. 0.6:1.0, got {args.band}")
        if not args.budget_ms or not 0 < band[0] < band[1]:
            sys.exit("--band needs --budget-ms and 0 < LO < HI")
        from bench_claims import SHAPE

        from kdnas_bench.predictors.registry import load_predictor
        pred = load_predictor(args.device, "torch", 1)
        pool = list(space.archs)
        mids = pred.predict_interval([(a, SHAPE) for a in pool]).mid
        predicted = {a: float(m) for a, m in zip(pool, mids, strict=True)}
        archs = band_students(args.n, predicted, band[0] * args.budget_ms, band[1] * args.budget_ms)
    else:
        predicted = {}
        archs = students(args.n, args.space)
    if args.list_students:
        print("\n".join(f"{a}  {predicted.get(a, float('nan')):.2f} ms  {count_params(a):,} params" for a in archs))
        return
    if args.supernet_focus == "band":
        if band is None:
            sys.exit("--supernet-focus band needs --band")
        space = focused(space, tuple(sorted(a for _, a in in_band(predicted, band[0] * args.budget_ms,
                                                                  band[1] * args.budget_ms))))
    cfg = SupernetConfig(examples=full["supernet"], epochs=args.supernet_epochs, losses=args.supernet_losses, seed=0)
    net, doc = None, {}
    if "supernet" in methods:  # a run of the other methods alone (e.g. reference shards) needs no supernet
        net, doc = ensure_supernet(args.teacher, args.task, space, args.supernet, data_dir=args.data_dir, cfg=cfg,
                                   progress=True, **accelerator_kwargs(ensure_supernet, args.accelerator))
    teacher = load_teacher(args.teacher, task=args.task)
    proxy = prepare_data(teacher.tokenizer, args.task, data_dir=args.data_dir, max_examples=args.proxy_examples)
    ref = prepare_data(teacher.tokenizer, args.task, data_dir=args.data_dir, max_examples=full["ref"])
    primary = proxy.task.primary_metric

    def score(rec: dict[str, Any]) -> float:
        if args.metric == "primary":
            return float(rec["metric"])
        if "metrics" not in rec:
            sys.exit(f"--metric glue-mean: {rec['method']} {rec['arch']} in {log} has only its primary metric")
        return float(np.mean(list(rec["metrics"].values())))

    def run(method: str, arch: Arch) -> dict[str, Any]:
        if (method, str(arch)) in done:
            return done[(method, str(arch))]
        c0, w0 = time.process_time(), time.perf_counter()
        if method == "supernet":
            assert net is not None
            metrics = evaluate(net.extract(arch), proxy.dev, proxy.task)
        else:
            data, epochs, init = {"proxy-inherit": (proxy, args.proxy_epochs, "inherit"),
                                  "proxy-embeddings": (proxy, args.proxy_epochs, "embeddings"),
                                  "reference": (ref, args.ref_epochs, "inherit")}[method]
            extra = {"batching": args.ref_batching, **({"lr": args.ref_lr} if args.ref_lr else {}),
                     **({"seed": args.ref_seed} if args.ref_seed else {})} if method == "reference" else {}
            metrics = distill(teacher, args.task, arch, data=data, epochs=epochs, losses=args.losses, init=init,
                              **extra, **acc).metrics
        rec = {"method": method, "arch": str(arch), "metric": metrics[primary],
               "metrics": {k: float(v) for k, v in metrics.items()}, "cpu_seconds": time.process_time() - c0,
               "wall_seconds": time.perf_counter() - w0}
        with log.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        done[(method, str(arch))] = rec
        print(json.dumps(rec), flush=True)
        return rec

    mine = archs
    if args.shard:
        k, _, n = args.shard.partition("/")
        if not (k.isdigit() and n.isdigit() and 0 <= int(k) < int(n)):
            sys.exit(f"--shard: expected K/N with 0 <= K < N, got {args.shard}")
        mine = archs[int(k)::int(n)]
    for method in methods:  # cheap ones first: a partial run already tells something
        for arch in mine:
            run(method, arch)
    if args.shard:
        return
    done.update({(r["method"], r["arch"]): r for r in map(json.loads, log.read_text().splitlines())})  # other shards
    table = {m: [score(done[(m, str(a))]) for a in archs] for m in methods}
    out: dict[str, Any] = {
        "task": args.task, "teacher": args.teacher, "space": args.space, "students": [str(a) for a in archs],
        **({"band": {"shares": list(band), "budget_ms": args.budget_ms, "device": args.device, "predicted_ms": [
            round(predicted[a], 3) for a in archs]}} if band else {}),
        "supernet": {"folder": args.supernet, "focus": args.supernet_focus, "train_seconds": doc.get("train_seconds"),
                     "train_cpu_seconds": doc.get("train_cpu_seconds"), "steps": doc.get("steps"),
                     "examples": doc.get("recipe", {}).get("train_examples"), "epochs": args.supernet_epochs,
                     "losses": args.supernet_losses},
        "proxy": {"examples": args.proxy_examples, "epochs": args.proxy_epochs, "losses": args.losses},
        "reference": {"examples": len(ref.train), "epochs": args.ref_epochs, "init": "inherit", "lr": args.ref_lr,
                      "batching": args.ref_batching, "seed": args.ref_seed},
        "metric": primary if args.metric == "primary" else "mean of " + ", ".join(sorted(
            done[("reference", str(archs[0]))]["metrics"])), "scores": table, "methods": {}}
    for m in methods[:-1]:
        tau = kendalltau(table[m], table["reference"])[0]
        rho = spearmanr(table[m], table["reference"])[0]
        cpu = [done[(m, str(a))]["cpu_seconds"] for a in archs]
        out["methods"][m] = {"kendall_tau": float(tau), "spearman": float(rho),
                             "cpu_seconds_per_candidate": float(np.mean(cpu)),
                             **top_places(table[m], table["reference"], TOP)}
        t = out["methods"][m]
        print(f"{m:18s} tau {tau:+.3f}  spearman {rho:+.3f}  {np.mean(cpu):6.1f} CPU s / candidate · top {TOP}: "
              f"{t[f'top{TOP}_overlap']} of the reference's, its best {'in' if t[f'reference_best_in_top{TOP}'] else 'not in'}"
              f" · its pick is the reference's no. {t['reference_rank_of_pick']}")
    if args.second_reference:
        again = second_reference(Path(args.second_reference) / args.task / "scores.jsonl", archs, score)
        both = [(a + b) / 2 for a, b in zip(table["reference"], again["scores"], strict=True)]
        out["reference_again"] = {**again, "kendall_tau": float(kendalltau(again["scores"], table["reference"])[0]),
                                  "spearman": float(spearmanr(again["scores"], table["reference"])[0]),
                                  "tau_vs_mean_of_two": {m: float(kendalltau(table[m], both)[0]) for m in methods[:-1]}}
        print(f"reference, another seed: tau {out['reference_again']['kendall_tau']:+.3f} (the ceiling); against "
              f"the mean of the two: " + ", ".join(f"{m} {t:+.3f}" for m, t in
                                                   out["reference_again"]["tau_vs_mean_of_two"].items()))
    out["methods"]["reference"] = {"cpu_seconds_per_candidate": float(np.mean(
        [done[("reference", str(a))]["cpu_seconds"] for a in archs]))}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
