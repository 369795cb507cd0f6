"""Teachers worth distilling on the small GLUE tasks: a recipe chosen without looking at dev.

For one task: split its training set once (seeded, ``--holdout`` of it held out), fine-tune every candidate
recipe — a start (the packaged MiniLM backbone, or another task's teacher: an intermediate-task start such as
MRPC -> RTE) x learning rate x epochs — on the rest and score it on the held-out part; then fine-tune the best
one on the whole training set and score it on dev (the figure the claims table reports). Resumable: every
finished candidate is one line of ``ROOT/teachers/<task>-search.jsonl``; the teacher lands in
``ROOT/teachers/<task>/`` with ``recipe.json`` (the candidates and the choice) next to its ``metrics.json``.

    python benchmarks/bench_teachers.py --task rte --root R --start backbone --start mrpc=R/teachers/mrpc \\
        --lrs 5e-5,1e-4,2e-4 --epochs 3,6
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path
from typing import Any

from kdnas_bench.distill.data import get_task


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def split_train(task: str, data_dir: Path, out: Path, holdout: float, seed: int = 0) -> Path:
    """A dev-free split of the task's training set as a GLUE folder (train.tsv / dev.tsv) under ``out``; the
    header line (where the task has one) is kept on both sides. Returns the data dir to pass on."""
    t = get_task(task)
    src = data_dir / t.folder / "train.tsv"
    folder = out / t.folder
    if (folder / t.dev_file).is_file() and (folder / "train.tsv").is_file():
        return out
    with src.open(encoding=t.encoding, newline="") as fh:
        lines = fh.read().split("\n")
    lines = [x for x in lines if x.strip()]
    header, rows = ([], lines) if t.header else ([lines[0]], lines[1:])
    idx = list(range(len(rows)))
    random.Random(seed).shuffle(idx)
    n_out = round(holdout * len(rows))
    held, kept = sorted(idx[:n_out]), sorted(idx[n_out:])
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in (("train.tsv", kept), (t.dev_file, held)):
        (folder / name).write_text("\n".join(header + [rows[i] for i in part]) + "\n", encoding="utf-8")
    return out


def _starts(items: list[str], backbone: str | None) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for item in items:
        if item == "backbone":
            out["backbone"] = backbone
        else:
            name, _, path = item.partition("=")
            if not path or not (Path(path) / "config.json").is_file():
                sys.exit(f"--start {item}: expected NAME=TEACHER_FOLDER with a config.json")
            out[name] = path
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", required=True)
    ap.add_argument("--root", required=True, help="Work area: teachers/ and splits/ go below it.")
    ap.add_argument("--data-dir", default="../shared/data/glue")
    ap.add_argument("--start", action="append", default=None,
                    help="'backbone' or NAME=TEACHER_FOLDER (an intermediate-task start); repeatable.")
    ap.add_argument("--backbone", help="The 'backbone' start (default: the packaged all-MiniLM-L6-v2).")
    ap.add_argument("--lrs", default="5e-5,1e-4,2e-4")
    ap.add_argument("--epochs", default="3")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-examples", type=int, help="A stratified subset of the training set (a smoke test).")
    ap.add_argument("--holdout", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batching", choices=("random", "length"), default="length")
    ap.add_argument("--accelerator", help="Handed to finetune (e.g. cuda) where this checkout's finetune takes it.")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        task = get_task(args.task)
        lrs = [float(x) for x in args.lrs.split(",")]
        epochs = [float(x) for x in args.epochs.split(",")]
    except Exception as exc:
        sys.exit(f"bad option: {exc}")
    data_dir = Path(args.data_dir)
    if not (data_dir / task.folder / "train.tsv").is_file():
        sys.exit(f"no {task.folder}/train.tsv under {data_dir}")
    if args.backbone and not (Path(args.backbone) / "config.json").is_file():
        sys.exit(f"--backbone {args.backbone}: no config.json there")
    starts = _starts(args.start or ["backbone"], args.backbone)
    import torch
    from bench_claims import accelerator_kwargs

    from kdnas_bench.distill import finetune

    torch.set_num_threads(1)
    acc = accelerator_kwargs(finetune, args.accelerator)
    root = Path(args.root)
    split = split_train(task.name, data_dir, root / "splits" / task.name, args.holdout, args.seed)
    log = root / "teachers" / f"{task.name}-search.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    rows = _jsonl(log)
    key = lambda r: (r["start"], r["lr"], r["epochs"], r["batch_size"], r["holdout"], r.get("max_examples"))  # noqa: E731
    done = {key(r) for r in rows}
    single = len(starts) * len(lrs) * len(epochs) == 1  # one recipe: nothing to choose, no held-out run
    for name, path in starts.items():
        for lr in lrs:
            for ep in epochs:
                row = {"start": name, "start_path": path, "lr": lr, "epochs": ep, "batch_size": args.batch_size,
                       "holdout": args.holdout, "max_examples": args.max_examples}
                if key(row) in done or single:
                    continue
                r = finetune(task.name, backbone=path, data_dir=split, epochs=ep, seed=args.seed, lr=lr,
                             max_examples=args.max_examples,
                             batch_size=args.batch_size, batching=args.batching, progress=True, **acc)
                row.update(heldout_metric=r.primary, metric=task.primary_metric, train_examples=r.train_examples,
                           train_seconds=r.train_seconds)
                with log.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                rows.append(row)
                print(json.dumps(row), flush=True)
    grid = [r for r in rows if r["start"] in starts and r["lr"] in lrs and r["epochs"] in epochs
            and r["batch_size"] == args.batch_size and r["holdout"] == args.holdout
            and r.get("max_examples") == args.max_examples]
    if single:
        (name, path), lr, ep = next(iter(starts.items())), lrs[0], epochs[0]
        best = {"start": name, "start_path": path, "lr": lr, "epochs": ep}
    else:
        best = max(grid, key=lambda r: r["heldout_metric"])
    out = root / "teachers" / task.name
    if (out / "metrics.json").is_file() and (out / "recipe.json").is_file() and \
            json.loads((out / "recipe.json").read_text())["chosen"] == {k: best[k] for k in ("start", "lr", "epochs")}:
        print(f"{task.name}: teacher already trained with the chosen recipe")
        return
    r = finetune(task.name, backbone=best["start_path"], data_dir=data_dir, epochs=best["epochs"], seed=args.seed,
                 max_examples=args.max_examples,
                 lr=best["lr"], batch_size=args.batch_size, batching=args.batching, out=out, progress=True, **acc)
    recipe = {"task": task.name, "chosen": {k: best[k] for k in ("start", "lr", "epochs")},
              "start_path": best["start_path"], "batch_size": args.batch_size, "batching": args.batching,
              "selection": "one recipe given, no search" if single else
              f"held-out {task.primary_metric} on {args.holdout:.0%} of the training set (seed {args.seed})",
              "candidates": grid, "dev_metric": r.primary, "metric": task.primary_metric,
              "train_seconds": r.train_seconds}
    (out / "recipe.json").write_text(json.dumps(recipe, indent=2) + "\n")
    print(json.dumps({"task": task.name, "dev": r.primary, **recipe["chosen"]}), flush=True)


if __name__ == "__main__":
    main()
