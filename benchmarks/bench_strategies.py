"""Tabular benchmark of the search strategies (figures, not pass/fail).

The table (search/tables/sst2-minilm-students.json, built once by benchmarks/build_table.py) holds the
real proxy-distillation accuracy of every arch of a pool; latency comes from the committed torch-t1
predictor at batch 1 x seq 128. For each seed, random search gets N evaluations; its best reward R*
is the target. Each strategy then runs with the same evaluation budget, and we record how many
evaluations it needed to reach R* (N + 1 when it never did). Goal: kdnas needs at most N/2.

Run:  python benchmarks/bench_strategies.py [--n 40] [--k 4] [--seeds 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from kdnas_bench.predictors.registry import load_predictor
from kdnas_bench.profiling.device import hardware
from kdnas_bench.search.evaluators import TableEvaluator
from kdnas_bench.search.reward import RewardSpec, budget_key
from kdnas_bench.search.study import LatencyTable, SearchConfig, Study
from kdnas_bench.space import Shape

VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "random": ("random", {}),
    "evolution": ("evolution", {"population": 8, "tournament": 3}),
    "kdnas (paper ε: 1.0 -0.05/ep)": ("kdnas", {}),
    "kdnas (fast ε: 0.5 -0.1/ep)": ("kdnas", {"eps_start": 0.5, "eps_decay": 0.1, "eps_min": 0.1}),
    "kdnas, accuracy target, fast ε": ("kdnas", {"eps_start": 0.5, "eps_decay": 0.1, "eps_min": 0.1,
                                                "target": "metric"}),
}


def run(strategy: str, params: dict[str, Any], seed: int, table: TableEvaluator, latency: LatencyTable,
        spec: RewardSpec, n: int, k: int, device: str) -> list[float]:
    """Best-so-far reward after each evaluation."""
    cfg = SearchConfig(device, "torch", 1, Shape(1, 128), spec, strategy=strategy, episodes=n // k, candidates=k,
                       seed=seed, strategy_params=params, evaluator=table.describe())
    with tempfile.TemporaryDirectory() as tmp:
        study = Study(Path(tmp), cfg, table, latency)
        trace: list[float] = []
        key = budget_key(spec.budgets_ms[0])

        def on_event(kind: str, data: dict[str, Any]) -> None:
            if kind == "evaluation":
                r = data["rewards"][key]
                best = trace[-1] if trace else -np.inf
                trace.append(max(best, r if r is not None else -np.inf))

        study.run(on_event)
    return trace[:n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--table", default="search/tables/sst2-minilm-students.json")
    ap.add_argument("--n", type=int, default=40, help="random search's evaluation budget N")
    ap.add_argument("--k", type=int, default=4, help="candidates per episode")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--feasible-share", type=float, default=0.5,
                    help="budget = this quantile of the pool's predicted upper bounds")
    ap.add_argument("--out", default="benchmarks/results/strategies.json")
    args = ap.parse_args()
    table = TableEvaluator(args.table)
    device = hardware(with_gpu=False).device_id
    predictor = load_predictor(device, "torch", 1)
    latency = LatencyTable(predictor, table.archs(), Shape(1, 128))
    highs = sorted(latency[a][2] for a in table.archs())
    budget = round(float(np.quantile(highs, args.feasible_share)), 2)
    spec = RewardSpec((budget,))
    feasible = sum(h <= budget for h in highs)
    print(f"pool {len(highs)} archs, budget {budget} ms (batch 1 x seq 128, torch 1 thread): {feasible} feasible")
    oracle = max(r for a in table.archs()
                 if (r := spec.reward(table.evaluate(a).metric, latency[a][0], budget, latency[a][2])) is not None)
    print(f"best reward in the pool (oracle): {oracle:.4f}")
    results: dict[str, Any] = {"oracle_best_reward": oracle, "pool": len(highs), "feasible": feasible,
                               "budget_ms": budget, "n": args.n, "k": args.k, "seeds": args.seeds, "strategies": {}}
    traces: dict[str, list[list[float]]] = {name: [] for name in VARIANTS}
    for seed in range(args.seeds):
        for name, (strategy, params) in VARIANTS.items():
            traces[name].append(run(strategy, params, seed, table, latency, spec, args.n, args.k, device))
    for name in VARIANTS:
        needed = []
        for seed in range(args.seeds):
            target = traces["random"][seed][-1]
            trace = traces[name][seed]
            hit = next((i + 1 for i, v in enumerate(trace) if v >= target - 1e-12), args.n + 1)
            needed.append(hit)
        final = [t[-1] for t in traces[name]]
        results["strategies"][name] = {
            "evaluations_to_reach_random_best": needed, "median_evaluations": statistics.median(needed),
            "share_of_seeds_within_half_n": float(np.mean([x <= args.n // 2 for x in needed])),
            "mean_best_reward_after_n": float(np.mean(final)),
            "mean_best_reward_after_half_n": float(np.mean([t[args.n // 2 - 1] for t in traces[name]])),
        }
        r = results["strategies"][name]
        print(f"{name:32s} median evals to reach random@{args.n}: {r['median_evaluations']:>5} | "
              f"seeds within N/2: {r['share_of_seeds_within_half_n']:.0%} | best reward @N/2 "
              f"{r['mean_best_reward_after_half_n']:.4f} @N {r['mean_best_reward_after_n']:.4f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
