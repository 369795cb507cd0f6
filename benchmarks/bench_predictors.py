"""Latency-predictor figures for the README (not pass/fail).

1. accuracy per profile dataset: held-out and 5-fold CV ±5/±10/±15 %, MAPE, Kendall τ, coverage of the
   90 % interval and of its upper bound; the same predictor on the rows measured on a loaded machine;
   what was tried (every row, base model only, trees only, no monotone constraints), same split;
2. measurement noise: bootstrap standard error of each stored median, from its raw times;
3. few-shot transfer between datasets of this device (e.g. torch-t1 -> onnxruntime-t1): K = 10, 30, 100
   rows of the target on top of the source predictor, against fitting from scratch on the same K rows;
4. speed: predictions per second on 100,000 configs (library call, and `kdnas-bench predict` end to end),
   and the ratio to measuring them (the profile's seconds per row);
5. public architectures inside the space, measured fresh now with torch eager, 1 thread, against the
   torch-t1 predictor (the measurement pins itself to the last CPU; run with nothing else busy).

Run:  taskset -c 1 python benchmarks/bench_predictors.py [--store profiles] [--no-public]
Writes benchmarks/results/predictors.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kdnas_bench.predictors import LatencyPredictor, TransferPredictor
from kdnas_bench.predictors.evaluate import coverage, holdout_split, metrics
from kdnas_bench.predictors.features import featurize
from kdnas_bench.predictors.registry import fit_and_save, load_predictor, select_rows
from kdnas_bench.predictors.transfer import select_samples
from kdnas_bench.profiling.store import ProfileStore

PUBLIC = {  # well-known BERT-style students inside the space's ranges (layers, hidden, heads, ffn)
    "BERT-tiny (2L/128)": "2,128,2,512",
    "BERT-mini (4L/256)": "4,256,4,1024",
    "TinyBERT-4L (4L/312)": "4,312,12,1200",
    "BERT-small (4L/512)": "4,512,8,2048",
    "MiniLM-L6-H384": "6,384,12,1536",
    "BERT-medium (8L/512)": "8,512,8,2048",
    "MiniLM-L12-H384": "12,384,12,1536",
    "DistilBERT-like (6L/768)": "6,768,12,3072",
    "BERT-base (12L/768)": "12,768,12,3072",
}
PUBLIC_SHAPES = [(1, 128), (4, 64), (16, 16)]  # (batch, seq)
KS = (10, 30, 100)


def fmt(m: dict[str, Any] | None) -> str:
    if not m:
        return "-"
    return (f"±5% {m['within_5pct']:6.1%}  ±10% {m['within_10pct']:6.1%}  ±15% {m['within_15pct']:6.1%}  "
            f"MAPE {m['mape']:5.2%}  τ {m['kendall_tau']:.3f}  n={int(m['rows'])}")


def seconds_per_row(df: pd.DataFrame) -> float:
    """Mean wall seconds per measured row while the profiler ran (gaps > 2 min are pauses)."""
    ts = pd.to_datetime(df["timestamp"], utc=True).sort_values()
    gaps = ts.diff().dt.total_seconds().to_numpy()[1:]
    gaps = gaps[gaps < 120]
    return float(gaps.mean()) if gaps.size else float("nan")


def median_se(times: Any, rng: np.random.Generator, draws: int = 200) -> float:
    t = np.asarray(times, dtype=np.float64)
    if t.size < 3:
        return float("nan")
    meds = np.median(rng.choice(t, size=(draws, t.size), replace=True), axis=1)
    return float(meds.std() / np.median(t))


def variant(df: pd.DataFrame, params: dict[str, Any], seeds: range = range(5),
            extra_train: pd.DataFrame | None = None) -> dict[str, Any]:
    """Held-out metrics averaged over random 80/20 splits (one per seed); ``extra_train`` rows are
    added to every training set (never to a test set)."""
    y = df["median_ms"].to_numpy()
    runs = []
    for seed in seeds:
        train, test = holdout_split(len(df), 0.2, seed)
        fit_df = pd.concat([df.iloc[train], extra_train]) if extra_train is not None else df.iloc[train]
        model = LatencyPredictor(**{"cv_folds": 3, **params}, seed=seed).fit(fit_df, fit_df["median_ms"])
        pi = model.predict_interval(df.iloc[test])
        runs.append({**metrics(y[test], pi.mid), "interval_coverage": coverage(y[test], pi.low, pi.high)})
    return {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}


def accuracy(name: str, all_rows: pd.DataFrame, threads: int, tmp: Path, key: tuple[str, str, int],
             store: Path) -> dict[str, Any]:
    _, meta = fit_and_save(*key, store=store, out=tmp)
    df, loaded, _ = select_rows(all_rows, threads)
    held = meta["metrics"]["heldout"]
    train, test = holdout_split(len(df), 0.2, 0)  # the split `fit` used for its held-out metrics
    y = df["median_ms"].to_numpy()
    model = LatencyPredictor().fit(df.iloc[train], y[train])
    upper = float(np.mean(y[test] <= model.predict_interval(df.iloc[test]).high))
    seeds = [variant(df, {"cv_folds": 5}, seeds=range(s, s + 1)) for s in range(5)]
    tried = {
        "default (5 splits)": variant(df, {}),
        "also fit on loaded rows": variant(df, {}, extra_train=loaded) if len(loaded) else None,
        "analytic base only": variant(df, {"n_estimators": 0}),
        "trees only (no base)": variant(df, {"base": False, "n_estimators": 1500, "num_leaves": 15,
                                             "min_data_in_leaf": 5, "learning_rate": 0.05, "objective": "regression"}),
        "no monotone constraints": variant(df, {"monotone": False}),
        "squared loss": variant(df, {"objective": "regression"}),
    }
    print(f"\n== {name}: {meta['data']['selection']['rows_quiet']} quiet rows of {len(all_rows)} "
          f"(load average ≤ {meta['data']['selection']['max_load']})")
    print(f"  held-out (seed 0)     {fmt(held)}  interval cover {held['interval_coverage']:.1%}  upper-bound cover {upper:.1%}")
    print(f"  5-fold CV             {fmt(meta['metrics']['cv'])}")
    w10 = [s["within_10pct"] for s in seeds]
    w5 = [s["within_5pct"] for s in seeds]
    print(f"  held-out, 5 splits    ±10% {np.mean(w10):.1%} (min {min(w10):.1%})  ±5% {np.mean(w5):.1%} (min {min(w5):.1%})")
    print(f"  loaded rows (not fit) {fmt(meta['metrics']['loaded_rows'])}")
    for label, m in tried.items():
        print(f"  tried: {label:24s} {fmt(m)}")
    print("  (tried: mean of 5 random 80/20 splits of the quiet rows, tested on the same quiet held-out rows)")
    return {"heldout": held, "cv": meta["metrics"]["cv"], "loaded_rows": meta["metrics"]["loaded_rows"],
            "interval": meta["interval"], "upper_bound_coverage": upper, "heldout_5_splits": seeds,
            "selection": meta["data"]["selection"], "tried": tried}


def noise(df: pd.DataFrame) -> dict[str, float]:
    rng = np.random.default_rng(0)
    se = np.array([median_se(t, rng) for t in df["times_ms"]])
    out = {"median_rel_se_of_median": float(np.nanmedian(se)), "p90_rel_se_of_median": float(np.nanpercentile(se, 90)),
           "median_cv": float(df["cv"].median())}
    print(f"  noise: relative SE of a stored median {out['median_rel_se_of_median']:.2%} (p90 "
          f"{out['p90_rel_se_of_median']:.2%}); per-call CV {out['median_cv']:.2%}")
    return out


def few_shot(source_df: pd.DataFrame, target_df: pd.DataFrame, seeds: int = 5) -> dict[str, Any]:
    source = LatencyPredictor().fit(source_df, source_df["median_ms"])
    y = target_df["median_ms"].to_numpy()
    out: dict[str, Any] = {}
    for k in KS:
        if k >= len(target_df) - 20:
            continue
        res: dict[str, list[dict[str, float]]] = {"transfer": [], "scratch": [], "transfer_random_rows": []}
        for s in range(seeds):
            used = select_samples(source, featurize(target_df), k, seed=s)
            rand = np.sort(np.random.default_rng(s).choice(len(target_df), k, replace=False))
            for label, idx in (("transfer", used), ("scratch", used), ("transfer_random_rows", rand)):
                rest = np.setdiff1d(np.arange(len(target_df)), idx)
                if label == "scratch":
                    model: Any = LatencyPredictor(seed=s).fit(target_df.iloc[idx], y[idx])
                else:
                    model = TransferPredictor(source, seed=s).fit(target_df.iloc[idx], y[idx])
                pi = model.predict_interval(target_df.iloc[rest])
                res[label].append({**metrics(y[rest], pi.mid), "interval_coverage": coverage(y[rest], pi.low, pi.high)})
        out[str(k)] = {label: {m: float(np.mean([r[m] for r in runs])) for m in runs[0]} for label, runs in res.items()}
        t, sc, rr = out[str(k)]["transfer"], out[str(k)]["scratch"], out[str(k)]["transfer_random_rows"]
        print(f"  K={k:3d}  transfer ±10% {t['within_10pct']:6.1%} MAPE {t['mape']:5.2%} τ {t['kendall_tau']:.3f} | "
              f"scratch ±10% {sc['within_10pct']:6.1%} MAPE {sc['mape']:5.2%} τ {sc['kendall_tau']:.3f} | "
              f"transfer, random rows ±10% {rr['within_10pct']:6.1%}")
    return out


def speed(tmp: Path, key: tuple[str, str, int], sec_per_row: float) -> dict[str, Any]:
    from kdnas_bench.paths import default_space
    from kdnas_bench.space import SearchSpace, sample_archs, sample_shapes

    space = SearchSpace.load(default_space())
    archs, shapes = sample_archs(space, 100_000, seed=1), sample_shapes(space, 100_000, seed=2)
    frame = pd.DataFrame([{**a.to_dict(), "seq": s.seq, "batch": s.batch} for a, s in zip(archs, shapes, strict=True)])
    p = load_predictor(*key, root=tmp)
    t0 = time.perf_counter()
    p.predict_interval(frame)
    lib = time.perf_counter() - t0
    cfg = tmp / "configs100k.json"
    cfg.write_text(frame.to_json(orient="records"))
    cmd = [sys.executable, "-m", "kdnas_bench", "predict", "--device", key[0], "--backend", key[1], "--threads",
           str(key[2]), "--configs", str(cfg), "--predictors", str(tmp), "--json"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cli = time.perf_counter() - t0
    out = {"configs": 100_000, "library_seconds": lib, "library_predictions_per_second": 100_000 / lib,
           "cli_seconds_end_to_end": cli, "measured_seconds_per_row": sec_per_row,
           "speedup_vs_measuring": sec_per_row * 100_000 / lib}
    print(f"\n== speed: 100,000 configs in {lib:.2f} s in-process ({out['library_predictions_per_second']:,.0f}/s); "
          f"`kdnas-bench predict --configs` end to end {cli:.2f} s; measuring takes {sec_per_row:.2f} s per row → "
          f"{out['speedup_vs_measuring']:,.0f}x faster than measuring")
    return out


def public_archs(tmp: Path, key: tuple[str, str, int], timing_row: pd.Series, force: bool = False) -> dict[str, Any]:
    from kdnas_bench.profiling.backends import make_backend
    from kdnas_bench.profiling.device import load_average
    from kdnas_bench.profiling.runner import measure
    from kdnas_bench.profiling.timing import TimingConfig
    from kdnas_bench.space import Arch, Shape

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    busy_now = os.getloadavg()[0]
    if busy_now > key[2] + 1.75 and not force:
        print(f"\n== public architectures: SKIPPED, load average {busy_now:.1f}: other processes share the CPUs, "
              "so fresh measurements would be inflated. Rerun on an idle machine (or pass --force-public):\n"
              "   taskset -c 1 python benchmarks/bench_predictors.py --sections public")
        p = load_predictor(*key, root=tmp)
        predicted = []
        for name, text in PUBLIC.items():
            for batch, seq in PUBLIC_SHAPES:
                pi = p.predict_interval([(Arch.parse(text), Shape(batch, seq))])
                predicted.append({"name": name, "arch": text, "batch": batch, "seq": seq, "predicted_ms": float(pi.mid[0]),
                                  "low_ms": float(pi.low[0]), "high_ms": float(pi.high[0]),
                                  "out_of_range": bool(pi.out_of_range[0])})
                print(f"  predicted only: {name:26s} {batch:2d}x{seq:<3d} {pi.mid[0]:8.2f} ms "
                      f"[{pi.low[0]:.2f}, {pi.high[0]:.2f}]")
        return {"skipped": f"load average {busy_now:.2f} at {time.strftime('%H:%M:%SZ', time.gmtime())}",
                "predicted": predicted}
    timing = TimingConfig(warmup=int(timing_row["warmup"]), min_calls=int(timing_row["min_calls"]),
                          min_seconds=float(timing_row["min_seconds"]), max_seconds=2.0)
    p = load_predictor(*key, root=tmp)
    bk = make_backend(key[1], key[2])
    rows = []
    print(f"\n== public architectures, measured now ({key[1]}, {key[2]} thread, CPU {sorted(os.sched_getaffinity(0))}, "
          f"load average {load_average():.2f})")
    for name, text in PUBLIC.items():
        arch = Arch.parse(text)
        for batch, seq in PUBLIC_SHAPES:
            m = measure(bk, arch, Shape(batch, seq), timing)
            if m.timing is None:
                continue
            pi = p.predict_interval([(arch, Shape(batch, seq))])
            meas = m.timing.median_ms
            rows.append({"name": name, "arch": text, "batch": batch, "seq": seq, "measured_ms": meas,
                         "predicted_ms": float(pi.mid[0]), "low_ms": float(pi.low[0]), "high_ms": float(pi.high[0]),
                         "rel_error": float(pi.mid[0] / meas - 1), "in_interval": bool(pi.low[0] <= meas <= pi.high[0]),
                         "out_of_range": bool(pi.out_of_range[0]), "load_before": m.load_before,
                         "cv": m.timing.cv})
            r = rows[-1]
            print(f"  {name:26s} {batch:2d}x{seq:<3d} measured {meas:8.2f} ms  predicted {r['predicted_ms']:8.2f} "
                  f"[{r['low_ms']:.2f}, {r['high_ms']:.2f}]  error {r['rel_error']:+6.1%}"
                  f"{'' if r['in_interval'] else '  (outside interval)'}  load {m.load_before:.2f}")
    bk.close()
    err = np.abs([r["rel_error"] for r in rows])
    busy = float(np.mean([r["load_before"] > key[2] + 0.75 for r in rows]))
    if busy:
        print(f"  NOTE: {busy:.0%} of these measurements started at a load average above {key[2] + 0.75}: other "
              "processes were running, so the measured latencies are inflated")
    summary = {"configs": len(rows), "share_measured_under_load": busy, "within_5pct": float(np.mean(err <= 0.05)),
               "within_10pct": float(np.mean(err <= 0.10)),
               "mape": float(np.mean(err)), "interval_coverage": float(np.mean([r["in_interval"] for r in rows]))}
    print(f"  public archs: ±5% {summary['within_5pct']:.1%}  ±10% {summary['within_10pct']:.1%}  MAPE "
          f"{summary['mape']:.2%}  interval cover {summary['interval_coverage']:.1%}")
    return {"rows": rows, "summary": summary}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default="profiles")
    ap.add_argument("--no-public", action="store_true", help="skip measuring the public archs")
    ap.add_argument("--force-public", action="store_true", help="measure the public archs even on a busy machine")
    ap.add_argument("--sections", default="accuracy,fewshot,speed,public",
                    help="comma-separated subset of accuracy,fewshot,speed,public")
    ap.add_argument("--out", default="benchmarks/results/predictors.json")
    args = ap.parse_args()
    sections = set(args.sections.split(",")) - ({"public"} if args.no_public else set())
    store = Path(args.store)
    results: dict[str, Any] = {"command": "taskset -c 1 python " + " ".join(sys.argv), "datasets": [],
                               "few_shot": [], "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    frames: dict[tuple[str, str, int], pd.DataFrame] = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for ds in ProfileStore(store).datasets():
            key = (ds.key.device_id, ds.key.backend, ds.key.threads)
            raw = ds.read()
            ok = raw[(raw["status"] == "ok")].reset_index(drop=True)
            if len(ok) < 50:
                print(f"skip {key}: {len(ok)} rows")
                continue
            frames[key] = ok
            if "accuracy" not in sections:
                fit_and_save(*key, store=store, out=tmp)
                continue
            entry = {"device_id": key[0], "backend": key[1], "threads": key[2], "rows": len(ok),
                     **accuracy(f"{key[0]} {key[1]} t{key[2]}", ok, key[2], tmp, key, store)}
            entry["noise"] = noise(select_rows(ok, key[2])[0])
            entry["measured_seconds_per_row"] = seconds_per_row(raw)
            results["datasets"].append(entry)
        for src in frames:
            for dst in frames:
                if "fewshot" not in sections or src == dst or src[0] != dst[0]:
                    continue
                q = {k: select_rows(f, k[2])[0] for k, f in frames.items()}
                print(f"\n== few-shot: {src[1]} t{src[2]} -> {dst[1]} t{dst[2]} ({len(q[dst])} target rows, 5 seeds; "
                      "held-out = the target rows not used)")
                results["few_shot"].append({"source": list(src), "target": list(dst), "k": few_shot(q[src], q[dst])})
        torch_key = next((k for k in frames if k[1] == "torch" and k[2] == 1), None)
        if torch_key is not None:
            if "speed" in sections:
                results["speed"] = speed(tmp, torch_key, seconds_per_row(frames[torch_key]))
            if "public" in sections:
                results["public_archs"] = public_archs(tmp, torch_key, frames[torch_key].iloc[-1], args.force_public)
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out = Path(args.out)
    if out.exists() and sections != {"accuracy", "fewshot", "speed", "public"}:  # a partial run updates the file
        previous = json.loads(out.read_text())
        keep = {"accuracy": "datasets", "fewshot": "few_shot", "speed": "speed", "public": "public_archs"}
        for section, key in keep.items():
            if section not in sections and key in previous:
                results[key] = previous[key]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
