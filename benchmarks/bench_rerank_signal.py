"""Which signal of a re-ranking rung ranks students as their full-set finals do: the rung's dev metric, or its
fidelity to the teacher (minus the KD loss on the same dev examples, the re-ranking's tie-breaker)?

Every student with claims finals for --task (``benchmarks/results/claims/<task>/finals.jsonl``, the mean over its
seeds; MRPC by the mean of F1 and accuracy, as the claims judge it) is proxy-distilled exactly as a re-ranking
rung does it (``SupernetEvaluator.proxy``: from its supernet weights, --examples per rung x 2 epochs, the search's
losses and seed), and each signal's Kendall tau against the finals is printed and written to --out. Resumable
(--work/<task>.jsonl). Figures, not pass/fail.

Run (one thread, under ../shared/tools/heavy), with the default search's supernet of that task:
  python benchmarks/bench_rerank_signal.py --task mrpc --teacher T --supernet RUN/supernet --examples 500,1000,2000
(--lr L: the rungs at another learning rate; its files get an -lrL suffix.)
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

FINALS = "benchmarks/results/claims/{task}/finals.jsonl"


def finals_means(path: Path, task: str) -> dict[str, float]:
    """Mean final score per arch, over the seeds of the most common recipe (the claims recipe). The layer-dropped
    rows are left out: they start from the teacher's own layers, not from inherited slices as a rung's student
    (and every other row) does."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    recipes: dict[str, int] = defaultdict(int)
    for r in rows:
        recipes[r["recipe"]] += 1
    recipe = max(recipes, key=lambda k: recipes[k])
    by_arch: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r["recipe"] != recipe or r["name"].startswith("layer-dropped"):
            continue
        m = r["metrics"]
        by_arch[r["arch"]].append((m["f1"] + m["accuracy"]) / 2 if task == "mrpc" else r["metric"])
    return {a: statistics.mean(v) for a, v in by_arch.items()}


def main() -> None:
    from scipy.stats import kendalltau

    from kdnas_bench.defaults import DEFAULTS
    from kdnas_bench.search.evaluators.proxy import ProxyDistillEvaluator
    from kdnas_bench.space import Arch

    ap = argparse.ArgumentParser()
    ap.add_argument("--task", required=True)
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--supernet", required=True, help="The task's default-search supernet folder.")
    ap.add_argument("--data-dir", default="../shared/data/glue")
    ap.add_argument("--examples", default="500,1000,2000", help="Proxy examples of the rungs to try (comma list).")
    ap.add_argument("--epochs", type=float, default=DEFAULTS.rerank_epochs)
    ap.add_argument("--lr", type=float, default=DEFAULTS.distill_lr,
                    help="The rungs' learning rate (default: the search's, %(default)g).")
    ap.add_argument("--finals", help="Claims finals file (default: " + FINALS + ").")
    ap.add_argument("--work", default="runs/rerank-signal")
    ap.add_argument("--out", help="Result file (default: benchmarks/results/rerank_signal_<task>.json).")
    args = ap.parse_args()
    means = finals_means(Path(args.finals or FINALS.format(task=args.task)), args.task)
    archs = sorted(means, key=lambda a: means[a])
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    tag = "" if args.lr == DEFAULTS.distill_lr else f"-lr{args.lr:g}"  # the default's files keep their names
    log = work / f"{args.task}{tag}.jsonl"
    done = {(r["examples"], r["arch"]): r for r in
            (json.loads(line) for line in (log.read_text().splitlines() if log.exists() else []))}
    sizes = [int(x) for x in args.examples.split(",")]
    for n in sizes:
        ev = ProxyDistillEvaluator(teacher=args.teacher, task=args.task, data_dir=args.data_dir, proxy_examples=n,
                                   epochs=args.epochs, losses=DEFAULTS.search_losses, seed=0, supernet=args.supernet,
                                   lr=args.lr)
        for a in archs:
            if (n, a) in done:
                continue
            e = ev.evaluate(Arch.parse(a))
            rec = {"examples": n, "arch": a, "metric": e.metric, "metrics": e.metrics, "secondary": e.secondary,
                   "seconds": e.seconds}
            with log.open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
            done[(n, a)] = rec
            print(json.dumps(rec), flush=True)
    ref = [means[a] for a in archs]
    out: dict[str, Any] = {"task": args.task, "teacher": args.teacher, "supernet": args.supernet,
                           "finals": {a: means[a] for a in archs},
                           "finals_metric": "mean of f1 and accuracy" if args.task == "mrpc" else "primary",
                           "epochs": args.epochs, "lr": args.lr, "rungs": {}}
    for n in sizes:
        rows = [done[(n, a)] for a in archs]
        signals = {"metric": [r["metric"] for r in rows], "-kd_loss": [r["secondary"] for r in rows]}
        if args.task == "mrpc":
            signals["mean of f1 and accuracy"] = [(r["metrics"]["f1"] + r["metrics"]["accuracy"]) / 2 for r in rows]
        taus = {k: float(kendalltau(v, ref)[0]) for k, v in signals.items()}
        out["rungs"][str(n)] = {"kendall_tau": taus, "students": {a: {"metric": r["metric"], "-kd_loss": r["secondary"]}
                                                                  for a, r in zip(archs, rows, strict=True)}}
        print(f"{args.task} {n:5d} examples: " + "  ".join(f"tau({k}) {t:+.3f}" for k, t in taus.items()), flush=True)
    Path(args.out or f"benchmarks/results/rerank_signal_{args.task}{tag}.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
