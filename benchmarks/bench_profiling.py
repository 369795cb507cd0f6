"""Profiling figures for the README (not pass/fail).

1. median CV (and noisy share) of every committed profile;
2. re-measuring 30 profiled configs in this new process: share within ±5 % / ±10 % of the stored median;
3. profiling throughput (rows per minute) per backend, from the stored timestamps;
4. ONNX Runtime vs PyTorch eager speed ratio on the configs both 1-thread profiles measured.

Run:  python benchmarks/bench_profiling.py [--remeasure 30] [--store profiles]
(the re-measurement pins itself to one CPU; run it with nothing else busy)
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from kdnas_bench.profiling.backends import make_backend
from kdnas_bench.profiling.device import environment
from kdnas_bench.profiling.runner import measure
from kdnas_bench.profiling.store import ProfileStore
from kdnas_bench.profiling.timing import TimingConfig
from kdnas_bench.space import Arch, Shape

KEY = ["layers", "hidden", "heads", "ffn", "batch", "seq"]


def throughput(df: pd.DataFrame) -> float:
    """Rows per minute over the stretches the profiler was running (gaps > 2 min are pauses)."""
    ts = df["timestamp"].sort_values()
    gaps = ts.diff().dt.total_seconds().to_numpy()[1:]
    busy = gaps[gaps < 120].sum()
    return float(60 * (gaps < 120).sum() / busy) if busy > 0 else float("nan")


def remeasure(df: pd.DataFrame, backend: str, threads: int, k: int, seed: int) -> dict:
    """In a fresh process: torch's thread pool keeps the CPU affinity it was created with."""
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(_remeasure, (df, backend, threads, k, seed))


def _remeasure(df: pd.DataFrame, backend: str, threads: int, k: int, seed: int) -> dict:
    rows = df.sample(n=min(k, len(df)), random_state=seed)
    timing = TimingConfig(warmup=int(rows["warmup"].iloc[0]), min_calls=int(rows["min_calls"].iloc[0]),
                          min_seconds=float(rows["min_seconds"].iloc[0]), max_seconds=2.0)
    if threads == 1 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    elif hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    bk = make_backend(backend, threads)
    ratios = []
    for _, r in rows.sort_values(["layers", "hidden", "heads", "ffn"]).iterrows():
        m = measure(bk, Arch(int(r.layers), int(r.hidden), int(r.heads), int(r.ffn)), Shape(int(r.batch), int(r.seq)),
                    timing)
        if m.timing is not None:
            ratios.append(m.timing.median_ms / r.median_ms)
    bk.close()
    err = np.abs(np.asarray(ratios) - 1)
    return {"configs": len(ratios), "within_5pct": float((err <= 0.05).mean()), "within_10pct": float((err <= 0.10).mean()),
            "median_abs_drift": float(np.median(err)), "mean_ratio_new_over_stored": float(np.mean(ratios))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default="profiles")
    ap.add_argument("--remeasure", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/profiling.json")
    args = ap.parse_args()
    results: dict = {"datasets": []}
    frames = {}
    for ds in ProfileStore(args.store).datasets():
        df = ds.read()
        ok = df[df["status"] == "ok"]
        frames[(ds.key.device_id, ds.key.backend, ds.key.threads)] = ok
        entry = {"device_id": ds.key.device_id, "backend": ds.key.backend, "threads": ds.key.threads, "rows": len(ok),
                 "failed_rows": int(len(df) - len(ok)), "median_cv": float(ok["cv"].median()),
                 "median_iqr_ratio": float(ok["iqr_ratio"].median()), "noisy_share": float(ok["noisy"].mean()),
                 "rows_per_minute": throughput(df), "load_before_mean": float(ok["load_before"].mean())}
        quiet = ok[(ok["load_before"] <= ds.key.threads + 0.75) & (ok["load_after"] <= ds.key.threads + 0.75)]
        entry["quiet_rows"] = len(quiet)
        entry["quiet_median_cv"] = float(quiet["cv"].median()) if len(quiet) else None
        here = environment(ds.key.backend, ds.key.threads)["device_id"] == ds.key.device_id
        if args.remeasure and ds.key.backend in ("torch", "onnxruntime") and here:  # only this machine's rows
            # stored rows measured on a quiet machine (the comparison a user can repeat), and all rows
            if len(quiet) >= args.remeasure:
                entry["remeasure_quiet_rows"] = remeasure(quiet, ds.key.backend, ds.key.threads, args.remeasure, args.seed)
            entry["remeasure"] = remeasure(ok, ds.key.backend, ds.key.threads, args.remeasure, args.seed)
        results["datasets"].append(entry)
        print(json.dumps(entry))
    results["ort_vs_eager"] = {}
    for device in sorted({d for d, _, _ in frames}):
        if (device, "torch", 1) not in frames or (device, "onnxruntime", 1) not in frames:
            continue
        joined = frames[(device, "torch", 1)].merge(frames[(device, "onnxruntime", 1)], on=KEY,
                                                    suffixes=("_torch", "_ort"))
        if joined.empty:
            continue
        ratio = joined["median_ms_torch"] / joined["median_ms_ort"]
        results["ort_vs_eager"][device] = {
            "configs": len(joined), "geomean_speedup": float(np.exp(np.log(ratio).mean())),
            "median_speedup": float(ratio.median()), "share_ort_faster": float((ratio > 1).mean())}
        print(json.dumps({"ort_vs_eager": {device: results["ort_vs_eager"][device]}}))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
