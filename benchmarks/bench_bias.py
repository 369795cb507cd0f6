"""Where the small-model bias comes from: the profile's timing protocols against a plain back-to-back loop
(figures, not pass/fail).

Every config at 1 x 128 (the six 128-wide BERT miniatures, 2-12 layers, and a few wider ones) is timed,
round-robin and in rotating order so drift hits every protocol alike, by:

* ``plain``  — warm-up, then back-to-back calls (the protocol of torch.utils.benchmark, optimum-benchmark
  and most users): the reference;
* ``call``   — interleaved with the canary call by call (the profiler's protocol until now);
* ``chunk``  — alternating ~50 ms blocks of config and canary;
* ``burst``  — alternating ~100 ms back-to-back bursts, each opened by one untimed call (the new default);
* suspects, each against ``plain`` in the same round: ``encoder`` (BertModel without pooler and
  classifier), ``pinned`` (the thread pinned to one core with sched_setaffinity), ``plain-canary`` (the
  canary itself back-to-back).

What a predictor learns from a row is ``ratio × reference`` (config over canary, at the reference canary
speed), so the bias of a protocol on a config is ``(config/canary ratio) / (plain config / plain canary)``:
1.0 means the row teaches the predictor what a back-to-back user measures. It is reported with the raw
median's ratio to plain (slow-down of the config itself) and the canary's (what the config does to it).
A second, offline section reads the stored profile rows: does the canary time measured with a row depend
on the row's size (a canary evicted by big configs and not by small ones biases the normalisation)?

Run (nothing else busy; about 3 minutes):
  ../shared/tools/quiet .venv/bin/python benchmarks/bench_bias.py --rounds 4
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from kdnas_bench.profiling.backends import make_backend
from kdnas_bench.profiling.canary import CANARY_ARCH, CANARY_SHAPE
from kdnas_bench.profiling.device import environment
from kdnas_bench.profiling.timing import TimingConfig, time_callable, time_interleaved
from kdnas_bench.space import Arch, Shape

CONFIGS = [Arch(n, 128, 2, 512) for n in (2, 4, 6, 8, 10, 12)] + [
    Arch(4, 256, 4, 1024), Arch(6, 384, 12, 1536), Arch(4, 512, 8, 2048), Arch(6, 768, 12, 3072)]
SHAPE = Shape(1, 128)
# the profiler's timing of a row (kdnas-bench profile defaults)
PROFILE_TIMING = TimingConfig(warmup=5, min_calls=10, min_seconds=0.3, max_seconds=2.0, remeasure=0)
PROTOCOLS = ("plain", "call", "chunk", "burst", "encoder", "pinned")


def _encoder_only(handle: Any) -> Any:
    """The same model's embeddings + encoder only: no pooler, no classifier."""
    import torch

    enc = handle.model.bert
    inputs = handle.inputs

    def run() -> object:
        with torch.inference_mode():
            return enc.encoder(enc.embeddings(input_ids=inputs["input_ids"], token_type_ids=inputs["token_type_ids"]))

    return run


def stored_canary_dependence(store: Path, device: str) -> dict[str, Any] | None:
    """Offline: in the stored torch t1 rows, the canary time against the row's own size (Spearman), and the
    canary's median in the smallest and largest fifth of rows by median time."""
    from scipy.stats import spearmanr

    from kdnas_bench.predictors.registry import load_rows

    try:
        df = load_rows(device, "torch", 1, store)
    except Exception as exc:  # no store here
        return {"error": str(exc)}
    df = df[(df["status"] == "ok") & df["canary_ms"].notna()]
    if not len(df):
        return None
    out: dict[str, Any] = {"rows": len(df), "interleave": sorted(df["interleave"].dropna().unique().tolist())}
    rho = spearmanr(df["median_ms"], df["canary_ms"])[0]
    q = df["median_ms"].quantile([0.2, 0.8]).to_numpy()
    small, large = df[df["median_ms"] <= q[0]], df[df["median_ms"] >= q[1]]
    out |= {"spearman_canary_vs_row_ms": float(rho), "canary_ms_smallest_fifth": float(small["canary_ms"].median()),
            "canary_ms_largest_fifth": float(large["canary_ms"].median()),
            "largest_over_smallest": float(large["canary_ms"].median() / small["canary_ms"].median())}
    return out


def stored_fit_residuals(store: Path, predictors: Path, device: str) -> dict[str, Any] | None:
    """Offline: does the committed predictor fit its own (normalised) rows of 128-wide configs? Median signed
    error of its predictions over those rows, against the other rows, and over rows at 128 tokens. A bias
    in the rows themselves (the protocol) shows here as ~0; one from the model or the shape grid (the
    ``tokens`` cap) as a shift."""
    from kdnas_bench.predictors.registry import load_predictor, load_rows
    from kdnas_bench.profiling.canary import normalise

    try:
        pred = load_predictor(device, "torch", 1, root=predictors)
        df = load_rows(device, "torch", 1, store)
    except Exception as exc:
        return {"error": str(exc)}
    df = df[(df["status"] == "ok")].reset_index(drop=True)
    norm, _ = normalise(df, (pred.meta.get("drift") or {}).get("reference_canary_ms"))
    err = pred.predict(norm) / norm["median_ms"].to_numpy() - 1
    narrow = (norm["hidden"] == 128).to_numpy()
    t128 = (norm["batch"] * norm["seq"] == 128).to_numpy()
    return {"rows": len(norm), "rows_128_wide": int(narrow.sum()), "rows_128_tokens": int(t128.sum()),
            "median_error_128_wide": float(np.median(err[narrow])) if narrow.any() else None,
            "median_error_wider": float(np.median(err[~narrow])),
            "median_error_128_tokens": float(np.median(err[t128])) if t128.any() else None,
            "max_tokens_in_rows": int((norm["batch"] * norm["seq"]).max())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--store", default="profiles")
    ap.add_argument("--predictors", default="predictors")
    ap.add_argument("--offline", action="store_true", help="only the sections that read stored rows (no timing)")
    ap.add_argument("--out", default="benchmarks/results/bias.json")
    args = ap.parse_args()
    env = environment("torch", args.threads)
    if args.offline:
        print(json.dumps({"stored_rows": stored_canary_dependence(Path(args.store), env["device_id"]),
                          "stored_fit": stored_fit_residuals(Path(args.store), Path(args.predictors), env["device_id"])},
                         indent=1))
        return
    load_before = os.getloadavg()
    bk = make_backend("torch", args.threads)
    cbk = make_backend("torch", args.threads)
    ch = cbk.load(CANARY_ARCH, CANARY_SHAPE)

    def canary() -> object:
        return cbk.run(ch)

    all_cpus = os.sched_getaffinity(0)
    pin_to = {max(all_cpus)}
    rng = random.Random(0)
    raw: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for rnd in range(args.rounds):
        order = list(CONFIGS)
        rng.shuffle(order)
        for ci, arch in enumerate(order):
            h = bk.load(arch, SHAPE)

            def target(h: Any = h) -> object:
                return bk.run(h)

            protos = list(PROTOCOLS[1:])
            k = (rnd + ci) % len(protos)
            protos = protos[k:] + protos[:k]
            # plain first and last: its two medians bracket the others (their mean is the reference)
            rec: dict[str, Any] = {"round": rnd, "arch": str(arch), "load": os.getloadavg()[0]}
            plain_a = time_callable(target, config=PROFILE_TIMING).median_ms
            canary_a = time_callable(canary, config=PROFILE_TIMING).median_ms
            for p in protos:
                if p in ("call", "chunk", "burst"):
                    pt = time_interleaved(target, canary, config=PROFILE_TIMING, mode=p)
                    rec[p] = pt.target.median_ms
                    rec[f"{p}_canary"] = pt.canary.median_ms
                elif p == "encoder":
                    rec[p] = time_callable(_encoder_only(h), config=PROFILE_TIMING).median_ms
                elif p == "pinned":
                    os.sched_setaffinity(0, pin_to)
                    try:
                        rec[p] = time_callable(target, config=PROFILE_TIMING).median_ms
                    finally:
                        os.sched_setaffinity(0, all_cpus)
            plain_b = time_callable(target, config=PROFILE_TIMING).median_ms
            canary_b = time_callable(canary, config=PROFILE_TIMING).median_ms
            rec["plain"] = (plain_a + plain_b) / 2
            rec["plain_spread"] = abs(plain_a - plain_b) / rec["plain"]
            rec["plain_canary"] = (canary_a + canary_b) / 2
            raw.append(rec)
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rec.items()}), flush=True)
    seconds = time.perf_counter() - t0
    results = []
    for arch in CONFIGS:
        recs = [r for r in raw if r["arch"] == str(arch)]
        entry: dict[str, Any] = {"arch": str(arch), "plain_ms": float(np.median([r["plain"] for r in recs])),
                                 "plain_repeat_spread": float(np.median([r["plain_spread"] for r in recs]))}
        for p in ("call", "chunk", "burst"):
            raw_ratio = [r[p] / r["plain"] for r in recs]
            can_ratio = [r[f"{p}_canary"] / r["plain_canary"] for r in recs]
            bias = [(r[p] / r[f"{p}_canary"]) / (r["plain"] / r["plain_canary"]) for r in recs]
            entry[p] = {"config_vs_plain": float(np.median(raw_ratio)), "canary_vs_plain": float(np.median(can_ratio)),
                        "normalised_bias": float(np.median(bias))}
        for p in ("encoder", "pinned"):
            entry[p] = {"config_vs_plain": float(np.median([r[p] / r["plain"] for r in recs]))}
        results.append(entry)
    doc = {
        "device_id": env["device_id"], "backend": "torch", "threads": args.threads, "shape": "1x128",
        "command": f"../shared/tools/quiet .venv/bin/python benchmarks/bench_bias.py --rounds {args.rounds}",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "seconds": seconds,
        "load_before": load_before, "load_after": os.getloadavg(), "timing": "profile defaults (5 warm-up, >= 10 calls, "
        ">= 0.3 s, <= 2 s per measurement)",
        "results": results, "stored_rows": stored_canary_dependence(Path(args.store), env["device_id"]),
        "stored_fit": stored_fit_residuals(Path(args.store), Path(args.predictors), env["device_id"]), "raw": raw,
    }
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{'arch':18s} {'plain ms':>8s} | {'call':>17s} | {'chunk':>17s} | {'burst':>17s} | enc/pl pin/pl")
    print(f"{'':18s} {'':8s} | {'cfg  can  bias':>17s} | {'cfg  can  bias':>17s} | {'cfg  can  bias':>17s} |")
    for e in results:
        cells = " | ".join(f"{e[p]['config_vs_plain']:.3f} {e[p]['canary_vs_plain']:.3f} {e[p]['normalised_bias']:.3f}"
                           for p in ("call", "chunk", "burst"))
        print(f"{e['arch']:18s} {e['plain_ms']:8.2f} | {cells} | {e['encoder']['config_vs_plain']:.3f} "
              f"{e['pinned']['config_vs_plain']:.3f}")
    print(json.dumps({k: doc[k] for k in ("stored_rows", "stored_fit")}))


if __name__ == "__main__":
    main()
