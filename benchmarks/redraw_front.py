"""Pick a finished ``kdnas-bench search --front`` run's winners again with today's rule and redraw its per-device
front plots — from the run's files alone (``front.json`` with its re-scored points, ``evaluations.jsonl``), no
teacher, supernet or training needed. For a run made before a change to the pick or the plots.

  python benchmarks/redraw_front.py --run benchmarks/results/claims/search-mrpc --device amd-epyc-2c-243f6e \\
      --backend torch --task mrpc --plots docs/results/img --prefix front-mrpc-
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from kdnas_bench.errors import KdnasError
from kdnas_bench.predictors.io import PredictorKey
from kdnas_bench.search.front import FRONT_FILE, draw_fronts, repick
from kdnas_bench.search.runfolder import EvalRecord
from kdnas_bench.search.runlog import LOG_FILE, read_log
from kdnas_bench.space import Shape


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="The search's run folder.")
    ap.add_argument("--device", required=True, help="The device the search ran for (its predictor key).")
    ap.add_argument("--backend", default="torch")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--mode", choices=("hard", "soft"), default="hard", help="The search's budget mode.")
    ap.add_argument("--task", default="")
    ap.add_argument("--predictors", help="Predictor store (default: the package's).")
    ap.add_argument("--plots", help="Copy the plots to this folder too, named PREFIX<device>.png.")
    ap.add_argument("--prefix", default="front-")
    args = ap.parse_args()
    run = Path(args.run)
    try:
        winners = repick(run, by_high=args.mode == "hard")
        records = [EvalRecord.from_dict(r) for r in read_log(run / LOG_FILE, heal=False).records]
        budgets = json.loads((run / FRONT_FILE).read_text())["budgets_ms"]
        files = draw_fronts(run, records, key=PredictorKey(args.device, args.backend, args.threads),
                            shape=Shape(args.batch, args.seq), budget_ms=max(budgets), predictors=args.predictors,
                            task=args.task, picked=max(winners, key=lambda w: w.budget_ms).arch)
    except KdnasError as exc:
        sys.exit(f"error: {exc}")
    for w in winners:
        print(f"budget {w.budget_ms:g} ms: {w.arch} (predicted {w.predicted_latency_ms:.2f} ms, "
              f"score {w.proxy_metric:.4f}, re-scored: {w.extra.get('rerank_metric') is not None})")
    for f in files:
        print(f)
        if args.plots:
            Path(args.plots).mkdir(parents=True, exist_ok=True)
            shutil.copy(f, Path(args.plots) / f"{args.prefix}{f.name.removeprefix('front-')}")


if __name__ == "__main__":
    main()
