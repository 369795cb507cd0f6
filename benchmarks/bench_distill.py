r"""Distillation benchmarks (figures, not pass/fail). One thread; every run appended to
benchmarks/results/distill_runs.jsonl (so an interrupted benchmark resumes where it stopped);
``summarise`` writes benchmarks/results/distill.json. What produced the committed figures
(prefix each with ``taskset -c 1``; T2 / T20 are the teachers made by the first two lines):

    python benchmarks/bench_distill.py teacher --examples 2000 --lr 1e-4 --out T2   # (CLI: teacher finetune)
    python benchmarks/bench_distill.py teacher --examples 20000 --lr 1e-4 --out T20  # + 1-thread latency
    python benchmarks/bench_distill.py runs --teacher T2 --examples 2000 --epochs 1 --tag proxy2k-e1
    python benchmarks/bench_distill.py runs --teacher T2 --examples 2000 --epochs 1 --losses logits,ce --tag proxy2k-e1-ce
    python benchmarks/bench_distill.py runs --teacher T2 --examples 8000 --epochs 1 --tag full8k
    python benchmarks/bench_distill.py runs --teacher T2 --examples 8000 --epochs 1 --losses ce --tag nokd8k \
        --archs "4,256,4,1024;2,256,4,1024"
    python benchmarks/bench_distill.py runs --teacher T20 --examples 4000 --archs 4,256,4,1024 --losses ce --tag t20k-nokd4k
    python benchmarks/bench_distill.py runs --teacher T20 --examples 4000 --archs 4,256,4,1024 --losses logits --tag t20k-kd4k
    python benchmarks/bench_distill.py runs --teacher T20 --examples 4000 --archs 4,256,4,1024 --losses logits,ce \
        --tag t20k-kdce4k
    python benchmarks/bench_distill.py runs --teacher T2 --examples 2000 --epochs 1 --tag cost2k \
        --archs "2,128,4,256;2,256,4,1024;4,256,4,1024;2,384,12,1536"
    python benchmarks/bench_distill.py runs --teacher T2 --examples 2000 --epochs 1 --tag cost2k-nocache --cache off \
        --archs 2,256,4,1024
    python benchmarks/bench_distill.py runs --teacher T20 --examples 2000 --epochs 1 --tag t20k-proxy2k
    python benchmarks/bench_distill.py runs --teacher T20 --examples 4000 --epochs 1 --tag t20k-kd4k  # reference
    python benchmarks/bench_distill.py summarise --proxy-tag proxy2k-e1,proxy2k-e1-ce --full-tag full8k \
        --compare full8k:nokd8k --compare t20k-kd4k:t20k-nokd4k --compare t20k-kdce4k:t20k-nokd4k \
        --tau t20k-proxy2k:t20k-kd4k

Full SST-2 (67,349 examples; 2026-11-24, each run alone on core 1 with `taskset -c 1`, length-grouped batches for
the full-set runs: --batching length, about 2.5x faster on SST-2 than random batches):

    python benchmarks/bench_distill.py teacher --examples 0 --batching length --lr 1e-4 --out runs/teacher-sst2-full
    T=runs/teacher-sst2-full
    python benchmarks/bench_distill.py runs --teacher $T --examples 0 --batching length --losses ce \
        --archs 4,256,4,1024 --tag full-nokd
    python benchmarks/bench_distill.py runs --teacher $T --examples 0 --batching length --archs 4,256,4,1024 --tag full
    python benchmarks/bench_distill.py runs --teacher $T --examples 0 --batching length --losses logits,ce \
        --archs 4,256,4,1024 --tag full-kdce
    python benchmarks/bench_distill.py runs --teacher $T --examples 2000 --epochs 1 --tag tfull-proxy2k-e1
    python benchmarks/bench_distill.py runs --teacher $T --examples 0 --batching length --tag full    # 10 students
    python benchmarks/bench_distill.py runs --teacher $T --examples 2000 --epochs 3 --tag tfull-proxy2k-e3
    python benchmarks/bench_distill.py runs --teacher $T --examples 4000 --epochs 1 --tag tfull-proxy4k-e1
    python benchmarks/bench_distill.py runs --teacher $T --examples 2000 --epochs 3 --losses logits,ce \
        --tag tfull-proxy2k-e3-ce
    python benchmarks/bench_distill.py summarise --proxy-tag tfull-proxy2k-e1,tfull-proxy2k-e3,tfull-proxy4k-e1,\
tfull-proxy2k-e3-ce --full-tag full --compare full:full-nokd --compare full-kdce:full-nokd \
        --tau t20k-proxy2k:t20k-kd4k --tau proxy2k-e1:full8k
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GLUE = ROOT.parent / "shared" / "data" / "glue"
RESULTS = ROOT / "benchmarks" / "results"
LOG = RESULTS / "distill_runs.jsonl"
# Students spread over the search space: depth, width, heads and FFN all vary.
ARCHS = ["1,128,2,512", "2,128,4,256", "1,256,4,512", "2,256,4,1024", "4,128,2,512", "3,192,4,768",
         "4,256,4,1024", "2,384,12,1536", "6,192,3,384", "3,320,5,640"]


def _env() -> dict[str, Any]:
    import torch

    return {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "affinity": sorted(os.sched_getaffinity(0))}


def _done(tag: str) -> set[str]:
    if not LOG.is_file():
        return set()
    return {r["arch_text"] for r in map(json.loads, LOG.read_text().splitlines()) if r.get("tag") == tag}


def _append(row: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with LOG.open("a") as fh:
        fh.write(json.dumps(row) + "\n")


def cmd_teacher(args: argparse.Namespace) -> None:
    from kdnas_bench.distill import finetune

    kw = {} if args.lr is None else {"lr": args.lr}
    r = finetune("sst2", data_dir=GLUE, max_examples=args.examples or None, epochs=args.epochs, seed=0, out=args.out,
                 batching=args.batching, **kw)
    row = {"tag": "teacher", "arch_text": "teacher", **r.to_dict(), "env": _env()}
    row["latency"] = _latency(Path(args.out))
    _append(row)
    print(json.dumps(row, indent=2))


def _latency(path: Path) -> dict[str, Any]:
    """1-thread CPU latency of the saved teacher (torch eager, batch 1, seq 64 and 128), timed by the project's
    one timing primitive: 5 warm-up calls, then >= 50 calls and >= 1 s."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from kdnas_bench.models import make_inputs
    from kdnas_bench.profiling.timing import TimingConfig, time_callable
    from kdnas_bench.space import Shape

    torch.set_num_threads(1)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    cfg = TimingConfig(warmup=5, min_calls=50, min_seconds=1.0, max_seconds=30.0)
    out = {}
    for seq in (64, 128):
        inputs = make_inputs(Shape(1, seq))
        with torch.inference_mode():
            timing = time_callable(lambda inputs=inputs: model(**inputs), config=cfg)
        out[f"b1_s{seq}_median_ms"] = timing.median_ms
    return out


def cmd_runs(args: argparse.Namespace) -> None:
    from kdnas_bench.distill import distill, load_teacher, prepare_data

    teacher = load_teacher(args.teacher, task="sst2")
    data = prepare_data(teacher.tokenizer, "sst2", data_dir=GLUE, max_examples=args.examples or None, seed=0)
    done = _done(args.tag)
    for arch in args.archs.split(";") if args.archs else ARCHS:
        if arch in done:
            continue
        start, cpu = time.perf_counter(), time.process_time()
        r = distill(teacher, "sst2", arch, data=data, epochs=args.epochs, losses=args.losses, seed=args.seed,
                    lr=args.lr, cache=args.cache, batching=args.batching)
        row = {"tag": args.tag, "arch_text": arch, **r.to_dict(), "wall_seconds": time.perf_counter() - start,
               "cpu_seconds": time.process_time() - cpu,  # robust to other processes sharing the core
               "env": _env()}
        _append(row)
        print(args.tag, arch, round(r.primary, 4), r.train_seconds, r.teacher_cache_seconds, flush=True)


def cmd_summarise(args: argparse.Namespace) -> None:
    from scipy.stats import kendalltau, spearmanr

    rows = [json.loads(x) for x in LOG.read_text().splitlines()]
    by = {}
    for r in rows:
        by.setdefault(r["tag"], {})[r["arch_text"]] = r
    full = by.get(args.full_tag, {})
    out: dict[str, Any] = {"full_tag": args.full_tag, "proxies": {}}
    pairs = [(p, args.full_tag) for p in args.proxy_tag.split(",")] + [tuple(x.split(":")) for x in args.tau or []]
    for tag, full_tag in pairs:
        full = by.get(full_tag, {})
        proxy = by.get(tag, {})
        common = sorted(set(proxy) & set(full))
        if len(common) < 3:
            continue
        p = [proxy[a]["primary"] for a in common]
        f = [full[a]["primary"] for a in common]
        out["proxies"][f"{tag} vs {full_tag}"] = {
            "students": len(common), "kendall_tau": kendalltau(p, f)[0], "spearman": spearmanr(p, f)[0],
            "seconds_per_candidate_mean": sum(proxy[a]["train_seconds"] for a in common) / len(common),
            "recipe": {k: proxy[common[0]][k] for k in ("train_examples", "epochs", "losses")},
            "per_student": {a: {"proxy": proxy[a]["primary"], "full": full[a]["primary"],
                                "proxy_seconds": proxy[a]["train_seconds"]} for a in common},
        }
    for pair in args.compare or []:
        kd_tag, nokd_tag = pair.split(":")
        for arch, r in by.get(nokd_tag, {}).items():
            kd = by.get(kd_tag, {}).get(arch)
            if kd is not None:
                out.setdefault("kd_vs_nokd", []).append({
                    "arch": arch, "kd_tag": kd_tag, "nokd_tag": nokd_tag, "kd_losses": kd["losses"],
                    "teacher": kd["teacher"], "kd": kd["primary"], "nokd": r["primary"],
                    "difference": kd["primary"] - r["primary"], "examples": r["train_examples"], "epochs": r["epochs"]})
    out["runs"] = {tag: {a: {k: r.get(k) for k in ("primary", "train_seconds", "cpu_seconds", "teacher_cache_seconds",
                                                     "train_examples", "epochs", "losses", "teacher")}
                         for a, r in rows_.items()} for tag, rows_ in by.items() if tag != "teacher"}
    if "teacher" in by:
        t = by["teacher"]["teacher"]
        out["teacher"] = {k: t.get(k) for k in ("metrics", "train_examples", "epochs", "train_seconds", "latency")}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "distill.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


def main() -> None:
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("teacher")
    t.add_argument("--examples", type=int, default=0)
    t.add_argument("--epochs", type=float, default=1.0)
    t.add_argument("--out", required=True)
    t.add_argument("--batching", choices=["length", "random"], default="random")
    t.add_argument("--lr", type=float, help="peak learning rate (default: finetune's, 2e-4; 1e-4 before 2026-11-24)")
    r = sub.add_parser("runs")
    r.add_argument("--teacher", required=True)
    r.add_argument("--examples", type=int, default=2000)
    r.add_argument("--epochs", type=float, default=1.0)
    r.add_argument("--losses", default="logits")
    r.add_argument("--lr", type=float, default=5e-4)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--tag", required=True)
    r.add_argument("--cache", choices=["auto", "off"], default="auto", help="teacher-output cache")
    r.add_argument("--batching", choices=["length", "random"], default="random",
                   help="training batches; length-grouped for the full-set runs")
    r.add_argument("--archs", help="semicolon-separated L,H,A,FFN list (default: the 10 benchmark students)")
    s = sub.add_parser("summarise")
    s.add_argument("--proxy-tag", required=True, help="comma-separated proxy tags")
    s.add_argument("--full-tag", required=True)
    s.add_argument("--compare", action="append", help="KD_TAG:NOKD_TAG, repeatable")
    s.add_argument("--tau", action="append", help="PROXY_TAG:REFERENCE_TAG, repeatable (besides --proxy-tag/--full-tag)")
    args = ap.parse_args()
    {"teacher": cmd_teacher, "runs": cmd_runs, "summarise": cmd_summarise}[args.cmd](args)


if __name__ == "__main__":
    main()
