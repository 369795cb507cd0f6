"""Proxy-distil a pool of archs once and write the table that `kdnas-bench search --table` and
benchmarks/bench_strategies.py read. Resumable: finished archs are kept in OUT.jsonl and skipped.

Recipe of the committed table (search/tables/sst2-minilm-students.json):
  python benchmarks/build_table.py --teacher runs/teacher-sst2-2k --data-dir ../shared/data/glue \
      --space search/spaces/minilm-students.toml --n 160 --examples 500 --epochs 2 --seed 0
where runs/teacher-sst2-2k comes from
  kdnas-bench teacher finetune --task sst2 --data-dir ../shared/data/glue --max-examples 2000 --epochs 1 --seed 0 \
      --out runs/teacher-sst2-2k
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from kdnas_bench.search.evaluators import ProxyDistillEvaluator
from kdnas_bench.space import Arch, SearchSpace, sample_archs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--task", default="sst2")
    ap.add_argument("--data-dir", default="../shared/data/glue")
    ap.add_argument("--space", default="search/spaces/minilm-students.toml")
    ap.add_argument("--n", type=int, default=160)
    ap.add_argument("--examples", type=int, default=500)
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--losses", default="logits")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="search/tables/sst2-minilm-students.json")
    args = ap.parse_args()
    space = SearchSpace.load(args.space)
    pool = sorted(set(sample_archs(space, args.n, sampler="sobol", seed=args.seed)))
    out = Path(args.out)
    log = out.with_suffix(".jsonl")
    done = {}
    if log.exists():
        for line in log.read_text().splitlines():
            try:
                r = json.loads(line)
                done[Arch(r["layers"], r["hidden"], r["heads"], r["ffn"])] = r
            except (json.JSONDecodeError, KeyError):
                continue
    ev = ProxyDistillEvaluator(teacher=args.teacher, task=args.task, data_dir=args.data_dir,
                               proxy_examples=args.examples, epochs=args.epochs, losses=args.losses, seed=args.seed)
    t0 = time.time()
    for arch in pool:
        if arch in done:
            continue
        e = ev.evaluate(arch)
        row = {**arch.to_dict(), "metric": e.metric, "metric_name": e.metric_name, "seconds": round(e.seconds, 2)}
        with open(log, "a") as fh:
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        done[arch] = row
        print(f"[{len(done)}/{len(pool)}] {arch} {e.metric_name}={e.metric:.4f} {e.seconds:.1f}s "
              f"(elapsed {time.time() - t0:.0f}s)", flush=True)
    teacher_meta = {}
    meta_path = Path(args.teacher) / "metrics.json"
    if meta_path.exists():
        teacher_meta = json.loads(meta_path.read_text())
    doc = {
        "recipe": {"task": args.task, "space": args.space, "pool": len(pool), "sampler": "sobol", "seed": args.seed,
                   "proxy_examples": args.examples, "epochs": args.epochs, "losses": args.losses,
                   "teacher": {"path": args.teacher, "metrics": teacher_meta.get("metrics"),
                               "train_examples": teacher_meta.get("train_examples")},
                   "machine": platform.processor() or platform.machine(), "threads": 1,
                   "command": "python benchmarks/build_table.py " + " ".join(
                       f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items())},
        "rows": [done[a] for a in pool],
    }
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out} ({len(pool)} archs)")


if __name__ == "__main__":
    main()
