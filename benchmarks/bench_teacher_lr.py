"""Teacher fine-tuning recipe on 2,000 SST-2 examples x 1 epoch (the done-means teacher): dev accuracy over
seeds 0-2 for learning rate x batch size, one thread. Resumable: rows go to benchmarks/results/teacher_lr.jsonl,
the summary to benchmarks/results/teacher_lr.json.

    taskset -c 0 python benchmarks/bench_teacher_lr.py          # 12 fine-tunes, about 13 CPU minutes
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GLUE = ROOT.parent / "shared" / "data" / "glue"
RESULTS = ROOT / "benchmarks" / "results"
GRID = ((1e-4, 32), (2e-4, 32), (1e-4, 16), (2e-4, 16))
SEEDS = (0, 1, 2)


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from kdnas_bench.distill import finetune

    torch.set_num_threads(1)
    log = RESULTS / "teacher_lr.jsonl"
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(x) for x in log.read_text().splitlines()] if log.is_file() else []
    done = {(r["lr"], r["bs"], r["seed"]) for r in rows}
    for lr, bs in GRID:
        for seed in SEEDS:
            if (lr, bs, seed) in done:
                continue
            r = finetune("sst2", data_dir=GLUE, max_examples=2000, epochs=1, seed=seed, lr=lr, batch_size=bs)
            row = {"lr": lr, "bs": bs, "seed": seed, "acc": r.metrics["accuracy"], "s": r.train_seconds}
            rows.append(row)
            with log.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(row, flush=True)
    summary = []
    for lr, bs in GRID:
        accs = [r["acc"] for r in rows if (r["lr"], r["bs"]) == (lr, bs)]
        summary.append({"lr": lr, "batch_size": bs, "seeds": len(accs), "mean": statistics.mean(accs),
                        "min": min(accs), "max": max(accs), "per_seed": accs})
    (RESULTS / "teacher_lr.json").write_text(json.dumps(summary, indent=2) + "\n")
    for s in summary:
        print(f"lr {s['lr']:g} bs {s['batch_size']}: mean {s['mean']:.4f} [{s['min']:.4f}, {s['max']:.4f}]")


if __name__ == "__main__":
    main()
