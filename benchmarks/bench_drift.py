"""Drift on a shared VM: call-by-call vs chunked canary interleaving (not pass/fail).

Each of a few fixed configs is measured again and again, round-robin, with the canary interleaved call by
call and in ~50 ms chunks (the profiler's default timing). Over the repetitions, the spread of the raw
median (what drift does to a row) is compared with the spread of the config/canary ratio (what is left
after normalisation) for each mode; the mode with the lower ratio CV is the profiler's default.

Run (nothing else busy):  /work/tools/quiet python benchmarks/bench_drift.py --seconds 150
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from kdnas_bench.profiling.backends import make_backend
from kdnas_bench.profiling.device import environment
from kdnas_bench.profiling.runner import Canary, measure
from kdnas_bench.profiling.timing import TimingConfig
from kdnas_bench.space import Arch, Shape

TARGETS = [(Arch(6, 384, 12, 1536), Shape(1, 128)), (Arch(4, 512, 8, 2048), Shape(4, 64)), (Arch(2, 256, 4, 1024), Shape(2, 64)),
           (Arch(1, 128, 2, 512), Shape(1, 16))]


def spread(v: np.ndarray) -> dict[str, float]:
    return {"cv": float(v.std(ddof=1) / v.mean()), "max_over_min": float(v.max() / v.min() - 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=150.0, help="total measuring time")
    ap.add_argument("--backend", default="torch")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--modes", default="call,burst", help="interleave modes, e.g. call,burst,burst@0.03")
    ap.add_argument("--canary-seq", default="32", help="canary sequence lengths to compare, e.g. 32,128")
    ap.add_argument("--out", default="benchmarks/results/drift_interleave.json")
    args = ap.parse_args()
    timing = TimingConfig(warmup=5, min_calls=10, min_seconds=0.3, max_seconds=2.0)
    bk = make_backend(args.backend, args.threads)
    canaries = {}
    for seq in (int(v) for v in args.canary_seq.split(",")):
        for mode in args.modes.split(","):
            name, _, secs = mode.partition("@")  # e.g. burst@0.03: bursts of 30 ms
            c = Canary(make_backend(args.backend, args.threads), name, burst_seconds=float(secs) if secs else None)
            c.shape = Shape(1, seq)
            canaries[f"{mode}" if args.canary_seq == "32" else f"{mode}-seq{seq}"] = c
    rows: dict[tuple[int, str], list[tuple[float, float, float]]] = {}
    raw_rows = []
    t_end = time.monotonic() + args.seconds
    rep = 0
    while time.monotonic() < t_end:
        for ti, (arch, shape) in enumerate(TARGETS):
            names = list(canaries) if rep % 2 == 0 else list(canaries)[::-1]
            for mode in names:
                m = measure(bk, arch, shape, timing, canaries[mode])
                assert m.paired is not None, m.error
                rows.setdefault((ti, mode), []).append((m.paired.target.median_ms, m.paired.ratio,
                                                        m.paired.target.wall_seconds))
                raw_rows.append({"target": ti, "canary": mode, "rep": rep, "median_ms": m.paired.target.median_ms,
                                 "canary_ms": m.paired.canary.median_ms, "t": time.monotonic()})
        rep += 1
    results = []
    for (ti, mode), vals in sorted(rows.items()):
        a = np.asarray(vals)
        arch, shape = TARGETS[ti]
        results.append({"config": f"{arch} {shape.batch}x{shape.seq}", "mode": mode, "rows": len(a),
                        "median_ms": float(np.median(a[:, 0])), "raw": spread(a[:, 0]), "ratio": spread(a[:, 1]),
                        "seconds_per_row": float(a[:, 2].mean())})
        r = results[-1]
        print(f"{r['config']:>24} {mode:>5}: {r['rows']:3d} rows, {r['median_ms']:7.2f} ms · raw CV "
              f"{r['raw']['cv']:.1%} (spread {r['raw']['max_over_min']:.1%}) · ratio CV {r['ratio']['cv']:.1%} "
              f"(spread {r['ratio']['max_over_min']:.1%}) · {r['seconds_per_row']:.2f} s/row")
    env = environment(bk.name, args.threads)
    doc = {"device_id": env["device_id"], "backend": bk.name, "threads": args.threads, "seconds": args.seconds,
           "command": f"../shared/tools/quiet .venv/bin/python benchmarks/bench_drift.py --seconds {args.seconds:g} "
                      f"--backend {args.backend} --modes {args.modes}", "load_after": os.getloadavg(),
           "results": results, "rows": raw_rows}
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
