"""Deploy-time backends (issue 13): int8 vs fp32 speed-up, int8 accuracy drop, memory predictor accuracy.

Sections (each writes its part of ``benchmarks/results/backends.json``; ``report`` prints everything):
  * ``speedup``  — TIMING: Sobol-sampled configs of the default space, each timed on ``onnxruntime`` and
                   ``onnxruntime-int8`` (and ``torch`` vs ``torch-bf16`` with ``--bf16``) call by call
                   interleaved (A, B, A, B, … in the same seconds, so drift cancels in the ratio); geometric
                   mean of fp32 / int8 medians, overall and by parameter-count tercile. Run it under
                   /work/tools/quiet.
  * ``space``    — the same ratio predicted by the committed predictors over the whole space (every arch × shape).
  * ``accuracy`` — the int8 dev metric beside fp32 of distilled students (their ``quantized.json``, written by
                   ``kdnas-bench distill --quantize int8``).
  * ``memory``   — the memory models' held-out accuracy (stored in each predictor's ``memory.json``: 20 % of the
                   archs held out, all their shapes) and a fresh check: ``--fresh N`` configs not in the profile,
                   each measured in a fresh process now (with the current method) and compared with the
                   prediction (memory does not depend on the machine's load). Each entry names the measuring
                   method of the model's rows (``memory_method``: 2 = anonymous memory only); a model fitted on
                   another method than the current one gets no fresh check (the figures would not compare).
  * ``report``   — print the JSON.

Run (device amd-epyc-2c-243f6e):
  /work/tools/heavy python benchmarks/bench_backends.py speedup --n 40 --prepare   # exports, untimed
  /work/tools/quiet python benchmarks/bench_backends.py speedup --n 40 --bf16
  python benchmarks/bench_backends.py space
  python benchmarks/bench_backends.py accuracy --students /work/artifacts/13/students/*
  /work/tools/heavy python benchmarks/bench_backends.py memory --fresh 24
  python benchmarks/bench_backends.py report        # (or no section: what `nox -s bench` runs)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kdnas_bench.models import count_params
from kdnas_bench.predictors.evaluate import metrics
from kdnas_bench.predictors.registry import list_predictors, load_predictor
from kdnas_bench.profiling.device import hardware
from kdnas_bench.space import ARCH_DIMS, SearchSpace, iter_configs

OUT = Path(__file__).parent / "results" / "backends.json"
PAIRS = {"int8": ("onnxruntime", "onnxruntime-int8"), "bf16": ("torch", "torch-bf16")}
KEYS = ("within_5pct", "within_10pct", "mape", "rows")


def _load() -> dict[str, Any]:
    return json.loads(OUT.read_text()) if OUT.exists() else {}


def _save(section: str, doc: Any) -> None:
    data = _load()
    data[section] = doc
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, indent=2, default=float) + "\n")


def _gmean(x: np.ndarray) -> float:
    return float(np.exp(np.mean(np.log(x))))


def _by_size(params: np.ndarray, ratio: np.ndarray) -> list[dict[str, Any]]:
    edges = np.quantile(params, [0, 1 / 3, 2 / 3, 1])
    out = []
    for i, name in enumerate(("small", "medium", "large")):
        sel = (params >= edges[i]) & ((params <= edges[i + 1]) if i == 2 else (params < edges[i + 1]))
        if sel.any():
            out.append({"size": name, "params_m": [round(float(edges[i]) / 1e6, 1), round(float(edges[i + 1]) / 1e6, 1)],
                        "configs": int(sel.sum()), "geomean_speedup": round(_gmean(ratio[sel]), 3)})
    return out


def speedup(args: argparse.Namespace) -> None:
    from kdnas_bench.profiling.backends import BACKENDS, make_backend
    from kdnas_bench.profiling.timing import TimingConfig, time_interleaved

    space = SearchSpace.load(args.space) if args.space else SearchSpace.load(
        Path(__file__).parent.parent / "search" / "spaces" / "bert.toml")
    cfg = TimingConfig(warmup=3, min_calls=10, min_seconds=0.3, max_seconds=2.0)
    stream = iter_configs(space, sampler="sobol", seed=args.seed + 1000, shapes_per_arch=1)
    configs = [next(stream)[1:] for _ in range(args.n)]
    device = hardware(with_gpu=False).device_id
    doc: dict[str, Any] = {"device_id": device, "configs": args.n, "seed": args.seed, "timing": "call by call interleaved"}
    for kind in (["int8", "bf16"] if args.bf16 else ["int8"]):
        base_name, fast_name = PAIRS[kind]
        if BACKENDS[fast_name].unavailable():
            doc[kind] = {"skipped": BACKENDS[fast_name].unavailable()}
            continue
        base, fast = make_backend(base_name, args.threads), make_backend(fast_name, args.threads)
        if args.prepare:  # the cacheable work (ONNX export, quantization) outside the timing job
            for arch, _ in configs:
                for b in (base, fast):
                    if hasattr(b, "prepare"):
                        b.prepare(arch)
            continue
        rows = []
        for i, (arch, shape) in enumerate(configs):
            hb, hf = base.load(arch, shape), fast.load(arch, shape)
            pair = time_interleaved(lambda f=fast, h=hf: f.run(h), lambda b=base, h=hb: b.run(h), config=cfg)
            rows.append({**arch.to_dict(), "batch": shape.batch, "seq": shape.seq, "params": count_params(arch),
                         "fp_ms": pair.canary.median_ms, "low_ms": pair.target.median_ms,
                         "speedup": pair.canary.median_ms / pair.target.median_ms})
            print(f"[{kind} {i + 1}/{args.n}] {arch} {shape.batch}x{shape.seq}: {base_name} {pair.canary.median_ms:.2f} ms, "
                  f"{fast_name} {pair.target.median_ms:.2f} ms ({rows[-1]['speedup']:.2f}x)", flush=True)
            base.close()
            fast.close()
        df = pd.DataFrame(rows)
        r = df["speedup"].to_numpy()
        doc[kind] = {"pair": [base_name, fast_name], "geomean_speedup": round(_gmean(r), 3),
                     "median_speedup": round(float(np.median(r)), 3), "faster_share": round(float(np.mean(r > 1)), 3),
                     "by_size": _by_size(df["params"].to_numpy(float), r), "rows": rows}
        print(json.dumps({k: v for k, v in doc[kind].items() if k != "rows"}, indent=1))
    if not args.prepare:
        _save("speedup", doc)


def _predicted(device: str, base: str, fast: str, threads: int) -> dict[str, Any] | None:
    """fp32 / low-precision latency predicted by the committed predictors over every arch × shape of the space."""
    try:
        pb, pf = load_predictor(device, base, threads), load_predictor(device, fast, threads)
    except Exception as exc:  # no predictor yet
        return {"error": str(exc)}
    space = SearchSpace.load(Path(__file__).parent.parent / "search" / "spaces" / "bert.toml")
    archs = list(space.archs)
    cols = {d: np.repeat([getattr(a, d) for a in archs], len(space.shapes)) for d in ARCH_DIMS}
    frame = pd.DataFrame({**cols, "batch": np.tile([s.batch for s in space.shapes], len(archs)),
                          "seq": np.tile([s.seq for s in space.shapes], len(archs))})
    ratio = pb.predict(frame) / pf.predict(frame)
    params = np.repeat([count_params(a) for a in archs], len(space.shapes)).astype(float)
    return {"configs": len(frame), "geomean_speedup": round(_gmean(ratio), 3),
            "faster_share": round(float(np.mean(ratio > 1)), 3),
            "by_size": _by_size(params, ratio),
            "note": "predicted at each predictor's reference speed (drift-normalised), so the two may differ by the "
                    "ratio of their reference canaries"}


def space(args: argparse.Namespace) -> None:
    device = hardware(with_gpu=False).device_id
    doc = {kind: _predicted(device, base, fast, args.threads) for kind, (base, fast) in PAIRS.items()}
    print(json.dumps(doc, indent=1))
    _save("predicted_space", doc)


def accuracy(args: argparse.Namespace) -> None:
    rows = []
    for folder in args.students:
        q = Path(folder) / "quantized.json"
        if not q.is_file():
            print(f"skip {folder}: no quantized.json (distil with --quantize int8)", file=sys.stderr)
            continue
        doc = json.loads(q.read_text())
        m = json.loads((Path(folder) / "metrics.json").read_text())
        rows.append({"student": Path(folder).name, "arch": m["arch"], "params": m["params"],
                     "train_examples": m["train_examples"], "epochs": m["epochs"], "fp32": doc["fp32_metric"],
                     "int8": doc["metric"], "drop_points": round(doc["drop_points"], 3), "onnx_bytes": doc["onnx_bytes"]})
        print(f"{rows[-1]['student']}: fp32 {doc['fp32_metric']:.4f} int8 {doc['metric']:.4f} "
              f"(drop {doc['drop_points']:+.2f} pts)")
    drops = [r["drop_points"] for r in rows]
    _save("accuracy", {"task": "sst2", "students": rows, "max_drop_points": max(drops) if drops else None,
                       "mean_drop_points": float(np.mean(drops)) if drops else None,
                       "goal": "drop <= 1 point on SST-2", "met": bool(drops) and max(drops) <= 1.0})


def memory(args: argparse.Namespace) -> None:
    from kdnas_bench.predictors.memory import fit_memory
    from kdnas_bench.predictors.rows import load_rows
    from kdnas_bench.profiling.memory import METHOD, MemoryProbe, method_label

    device = hardware(with_gpu=False).device_id
    out: dict[str, Any] = {"device_id": device, "method": METHOD, "method_label": method_label(METHOD),
                           "goal": "peak memory predicted within ±10 % for >= 95 % of held-out rows",
                           "predictors": []}
    space = SearchSpace.load(Path(__file__).parent.parent / "search" / "spaces" / "bert.toml")
    stream = iter_configs(space, sampler="uniform", seed=args.seed + 77, shapes_per_arch=1)
    fresh = [next(stream)[1:] for _ in range(args.fresh)]
    for info in list_predictors():
        if info["device_id"] != device or info.get("error"):
            continue
        p = load_predictor(device, info["backend"], info["threads"])
        if not p.memory:
            continue
        peak = p.memory["peak_rss_bytes"]
        entry: dict[str, Any] = {"backend": info["backend"], "threads": info["threads"],
                                 "memory_method": p.memory_method, "rows": peak.metrics.get("rows"),
                                 "archs": peak.metrics.get("archs"),
                                 "heldout": {t: {k: m.metrics["heldout"][k] for k in KEYS if k in m.metrics["heldout"]}
                                             for t, m in p.memory.items()},
                                 "met": bool(peak.metrics["heldout"]["within_10pct"] >= 0.95)}
        # the stored figure is one split (seed 0); five splits say how much it depends on which archs are held out
        rows = load_rows(device, info["backend"], info["threads"])
        splits = [fit_memory(rows, seed=k)["peak_rss_bytes"].metrics["heldout"]["within_10pct"] for k in range(5)]
        entry["heldout_5_splits_within_10pct"] = {"mean": round(float(np.mean(splits)), 4),
                                                  "min": round(float(np.min(splits)), 4)}
        if fresh and p.memory_method == METHOD:
            probe = MemoryProbe(info["backend"], info["threads"], {"vocab_size": space.vocab_size,
                                                                   "num_labels": space.num_labels})
            measured = []
            for arch, shape in fresh:
                measured.append(probe.measure(arch, shape).peak_rss_bytes / 2**20)
            probe.close()
            pred = p.predict_memory_mb([(a, s) for a, s in fresh])
            m = metrics(np.asarray(measured), np.asarray(pred))
            entry["fresh"] = {k: round(float(m[k]), 4) for k in KEYS}
            entry["fresh_configs"] = [{**a.to_dict(), "batch": s.batch, "seq": s.seq, "measured_mb": round(x, 2),
                                       "predicted_mb": round(float(y), 2)} for (a, s), x, y in zip(fresh, measured, pred,
                                                                                                  strict=True)]
        out["predictors"].append(entry)
        print(json.dumps({k: v for k, v in entry.items() if k != "fresh_configs"}))
    _save("memory", out)


def report(_: argparse.Namespace) -> None:
    doc = _load()
    for kind in ("int8", "bf16"):
        s = (doc.get("speedup") or {}).get(kind)
        if s and "geomean_speedup" in s:
            print(f"{s['pair'][1]} vs {s['pair'][0]}: geomean {s['geomean_speedup']}x over {len(s['rows'])} configs "
                  f"(faster on {s['faster_share']:.0%}); by size "
                  + ", ".join(f"{b['size']} {b['geomean_speedup']}x" for b in s["by_size"]))
        p = (doc.get("predicted_space") or {}).get(kind)
        if p and "geomean_speedup" in p:
            print(f"  predicted over the space ({p['configs']} configs): geomean {p['geomean_speedup']}x; by size "
                  + ", ".join(f"{b['size']} {b['geomean_speedup']}x" for b in p["by_size"]))
    for r in (doc.get("accuracy") or {}).get("students", []):
        print(f"{r['student']}: fp32 {r['fp32']:.4f}, int8 {r['int8']:.4f}, drop {r['drop_points']:+.2f} pts")
    for e in (doc.get("memory") or {}).get("predictors", []):
        print(f"memory {e['backend']} t{e['threads']} (method {e.get('memory_method', 1)}, {e.get('rows')} rows): "
              f"held-out {e['heldout']['peak_rss_bytes']}" + (f", fresh {e['fresh']}" if "fresh" in e else "")
              + (f", 5 splits ±10 % {e['heldout_5_splits_within_10pct']}" if "heldout_5_splits_within_10pct" in e else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="section")
    s = sub.add_parser("speedup")
    s.add_argument("--n", type=int, default=40)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--space")
    s.add_argument("--bf16", action="store_true")
    s.add_argument("--prepare", action="store_true", help="only export / quantize the configs' models (untimed)")
    sp = sub.add_parser("space")
    sp.add_argument("--threads", type=int, default=1)
    a = sub.add_parser("accuracy")
    a.add_argument("--students", nargs="+", required=True)
    m = sub.add_parser("memory")
    m.add_argument("--fresh", type=int, default=24)
    m.add_argument("--seed", type=int, default=0)
    sub.add_parser("report")
    args = ap.parse_args()
    sections = {"speedup": speedup, "space": space, "accuracy": accuracy, "memory": memory, "report": report}
    sections[args.section or "report"](args)  # no section: print the stored figures (what `nox -s bench` runs)


if __name__ == "__main__":
    main()
