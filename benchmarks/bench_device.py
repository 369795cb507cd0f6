"""A new device in ten minutes: the issue-12 figures for one device (not pass/fail; no timing here).

Reads what the timed runs stored and fits predictors; measures nothing itself:
  * ``curve``    — the adaptive profile's rows-vs-accuracy curve (``_adaptive.json``);
  * ``floor``    — re-measurement agreement in a later time window (``_floor.json``, `kdnas-bench remeasure`);
  * ``heldout``  — the predictor fitted on the profile vs the *fresh* configs measured in that later window,
                   against their drift-normalised and their raw medians;
  * ``target``   — what to learn: the raw median, the drift-normalised one, or the canary as a covariate
                   (``median · (ref / canary)^β`` for β on a grid, chosen by grouped CV), judged on the fresh rows;
  * ``transfer`` — K rows of this device on top of another device's predictor (``rebase``), mean over seeds,
                   on this device's other rows and on the fresh rows; fitting from scratch on the same K rows;
  * ``load``     — a profile taken under load vs the quiet one: median |difference| of their predictions.

Run:  python benchmarks/bench_device.py --device amd-epyc-2c-243f6e --backend torch \
          --transfer-from intel-xeon-processor-2c-cfff2f --loaded-store /work/artifacts/12/loaded
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kdnas_bench.predictors.crossval import cross_validate
from kdnas_bench.predictors.evaluate import metrics
from kdnas_bench.predictors.features import featurize
from kdnas_bench.predictors.latency import LatencyPredictor
from kdnas_bench.predictors.registry import load_predictor, load_rows, normalise_rows, select_rows
from kdnas_bench.predictors.transfer import TransferPredictor, select_samples
from kdnas_bench.profiling.adaptive import arch_key
from kdnas_bench.profiling.canary import newest_protocol
from kdnas_bench.profiling.store import ProfileStore
from kdnas_bench.space import SearchSpace, sample_archs

KEYS = ("within_5pct", "within_10pct", "mape")


def short(m: dict[str, float] | None) -> dict[str, float] | None:
    return {k: round(float(m[k]), 4) for k in (*KEYS, "rows")} if m else None


def rows_of(store: Path, device: str, backend: str, threads: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    df, _ = newest_protocol(load_rows(device, backend, threads, store))  # the rows `fit` learns from
    fit, loaded, _ = select_rows(df, threads, "auto")
    return pd.concat([fit, loaded], ignore_index=True) if len(loaded) else fit, {"rows": len(df)}


def fresh_rows(store: Path, device: str, backend: str, threads: int) -> pd.DataFrame | None:
    ds = ProfileStore(store).dataset(device, backend, threads)
    doc = ds.read_json("_floor.json")
    if not doc or not doc.get("fresh"):
        return None
    return pd.DataFrame(doc["fresh"])


def judge(pred_ms: np.ndarray, fresh: pd.DataFrame, ref: float | None) -> dict[str, Any]:
    """Predictions (at the reference speed) vs the fresh rows: normalised with the same reference, and raw."""
    out = {"raw": short(metrics(fresh["median_ms"].to_numpy(np.float64), pred_ms))}
    if ref is not None and fresh["canary_ms"].notna().all():
        norm = fresh["median_ms"].to_numpy(np.float64) * ref / fresh["canary_ms"].to_numpy(np.float64)
        out["normalised"] = short(metrics(norm, pred_ms))
    return out


def section_target(df: pd.DataFrame, fresh: pd.DataFrame | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ref = float(df["canary_ms"].median())
    y_raw = df["median_ms"].to_numpy(np.float64)
    c = df["canary_ms"].to_numpy(np.float64)
    for beta in (0.0, 0.25, 0.5, 0.75, 1.0, 1.25):
        rows = df.copy()
        rows["median_ms"] = y_raw * (ref / c) ** beta
        rows["canary_ms"] = np.nan  # cross_validate must not normalise again
        m_cv, _ = cross_validate(rows, 5, 0)
        entry: dict[str, Any] = {"cv_grouped_by_arch": short(m_cv)}
        if fresh is not None:
            model = LatencyPredictor().fit(rows, rows["median_ms"].to_numpy(np.float64), calibrate=False)
            f = fresh.copy()
            # the fresh row judged on the same scale as the model's target
            f_target = f["median_ms"].to_numpy(np.float64) * (ref / f["canary_ms"].to_numpy(np.float64)) ** beta
            entry["fresh_same_scale"] = short(metrics(f_target, model.predict(f)))
            entry["fresh_raw"] = short(metrics(f["median_ms"].to_numpy(np.float64), model.predict(f)))
        out[f"beta={beta:g}"] = entry
        if beta == 1.0 and fresh is not None and "drift_flag" in df:
            keep = ~df["drift_flag"].fillna(False).astype(bool).to_numpy()
            model = LatencyPredictor().fit(rows[keep], rows["median_ms"].to_numpy(np.float64)[keep], calibrate=False)
            f_target = fresh["median_ms"].to_numpy(np.float64) * ref / fresh["canary_ms"].to_numpy(np.float64)
            out["beta=1,without_flagged_rows"] = {"rows": int(keep.sum()),
                                                  "fresh_same_scale": short(metrics(f_target, model.predict(fresh)))}
            print(f"  without the {int((~keep).sum())} drift-flagged rows: fresh rows "
                  f"{fmt(out['beta=1,without_flagged_rows']['fresh_same_scale'])}")
        print(f"target β={beta:g} (0: raw median, 1: drift-normalised): grouped CV {fmt(m_cv)}"
              + (f" · fresh rows, same scale {fmt(entry['fresh_same_scale'])} · raw {fmt(entry['fresh_raw'])}"
                 if fresh is not None else ""))
    return out


def fmt(m: dict[str, Any] | None) -> str:
    return f"±5 {m['within_5pct']:.1%} ±10 {m['within_10pct']:.1%} MAPE {m['mape']:.1%}" if m else "-"


def section_transfer(df: pd.DataFrame, fresh: pd.DataFrame | None, source_device: str, backend: str, threads: int,
                     k: int, seeds: int) -> dict[str, Any]:
    src = load_predictor(source_device, backend, threads)
    assert isinstance(src.model, LatencyPredictor)
    norm, _, info = normalise_rows(df, df.iloc[:0])
    ref = info.get("reference_canary_ms")
    y = norm["median_ms"].to_numpy(np.float64)
    res: dict[str, list[dict[str, Any]]] = {"transfer_rest": [], "scratch_rest": [], "transfer_fresh": [],
                                             "source_unchanged_rest": []}
    for seed in range(seeds):
        used = select_samples(src.model, featurize(norm), k, seed)
        rest = np.setdiff1d(np.arange(len(norm)), used)
        t = TransferPredictor(src.model, method="rebase", seed=seed).fit(norm.iloc[used], y[used])
        s = LatencyPredictor(seed=seed).fit(norm.iloc[used], y[used], calibrate=False)
        res["transfer_rest"].append(metrics(y[rest], t.predict(norm.iloc[rest])))
        res["scratch_rest"].append(metrics(y[rest], s.predict(norm.iloc[rest])))
        res["source_unchanged_rest"].append(metrics(y[rest], src.model.predict(norm.iloc[rest])))
        if fresh is not None:
            res["transfer_fresh"].append(judge(t.predict(fresh), fresh, ref).get("normalised") or {})
    out = {name: {key: float(np.mean([m[key] for m in ms])) for key in KEYS} for name, ms in res.items() if ms}
    if ref is not None:
        # K = 0: the source scaled by the canary's speed ratio (this device's reference canary over the
        # source's predicted canary time; the source device's profile has no canary rows)
        from kdnas_bench.profiling.canary import CANARY

        scale = ref / float(src.model.predict(pd.DataFrame([CANARY]))[0])
        out["canary_ratio_only_all_rows"] = {k: float(v) for k, v in metrics(y, src.model.predict(norm) * scale).items()
                                             if k in KEYS}
        out["canary_speed_ratio"] = scale
    for name, m in out.items():
        if isinstance(m, dict):
            print(f"transfer K={k} from {source_device}, {name}: {fmt(m)} (mean of {seeds} seeds)")
    return {"k": k, "seeds": seeds, "source": source_device, **out}


def section_load(quiet_store: Path, loaded_store: Path, device: str, backend: str, threads: int,
                 space: SearchSpace) -> dict[str, Any]:
    archs = sample_archs(space, 500, sampler="uniform", seed=5)
    rng = np.random.default_rng(5)
    grid = pd.DataFrame([{**a.to_dict(), "seq": s.seq, "batch": s.batch}
                         for a in archs for s in (space.shapes[i] for i in rng.choice(len(space.shapes), 4))])
    out = {}
    for drift in ("canary", "none"):
        preds = []
        refs = []
        for store in (quiet_store, loaded_store):
            df = load_rows(device, backend, threads, store)
            norm, _, info = normalise_rows(df, df.iloc[:0], drift)
            refs.append(info.get("reference_canary_ms"))
            preds.append(LatencyPredictor().fit(norm, norm["median_ms"].to_numpy(np.float64), calibrate=False)
                         .predict(grid))
        rel = preds[1] / preds[0] - 1
        entry = {"median_abs_diff": float(np.median(np.abs(rel))), "median_diff": float(np.median(rel)),
                 "within_5pct": float(np.mean(np.abs(rel) <= 0.05)), "reference_canary_ms": refs}
        if drift == "canary" and all(refs):
            # at the *same* speed: the loaded profile's predictions rescaled to the quiet reference
            rel2 = preds[1] * refs[0] / refs[1] / preds[0] - 1
            entry["at_quiet_reference_median_abs_diff"] = float(np.median(np.abs(rel2)))
            entry["at_quiet_reference_median_diff"] = float(np.median(rel2))
            entry["at_quiet_within_5pct"] = float(np.mean(np.abs(rel2) <= 0.05))
        out[drift] = entry
        print(f"under load vs quiet ({drift}, each at its own reference): median |diff| {entry['median_abs_diff']:.1%} "
              f"(signed {entry['median_diff']:+.1%}), within ±5 % {entry['within_5pct']:.0%}, canary refs {refs}")
        if "at_quiet_reference_median_abs_diff" in entry:
            print(f"under load vs quiet, the loaded profile at the quiet reference (fit --reference-ms): median |diff| "
                  f"{entry['at_quiet_reference_median_abs_diff']:.1%}, within ±5 % {entry['at_quiet_within_5pct']:.0%}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", required=True)
    ap.add_argument("--backend", default="torch")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--store", default="profiles")
    ap.add_argument("--predictors", help="predictors folder for the held-out section (default: predictors/)")
    ap.add_argument("--sections", default="curve,floor,heldout,target,transfer,load")
    ap.add_argument("--transfer-from", default="intel-xeon-processor-2c-cfff2f")
    ap.add_argument("--k", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--loaded-store", action="append", help="store(s) of profiles taken under load (repeatable)")
    ap.add_argument("--space", default="search/spaces/bert.toml")
    ap.add_argument("--out", help="default: benchmarks/results/device_<device>_<backend>-t<threads>.json")
    args = ap.parse_args()
    store = Path(args.store)
    sections = set(args.sections.split(","))
    ds = ProfileStore(store).dataset(args.device, args.backend, args.threads)
    df, _ = rows_of(store, args.device, args.backend, args.threads)
    fresh = fresh_rows(store, args.device, args.backend, args.threads)
    res: dict[str, Any] = {"device_id": args.device, "backend": args.backend, "threads": args.threads,
                           "rows": len(df), "archs": len(set(arch_key(df))),
                           "command": "python " + " ".join(sys.argv)}
    if "curve" in sections:
        res["curve"] = (ds.read_json("_adaptive.json") or {}).get("curve")
        for p in res["curve"] or []:
            print(f"curve: round {p['round']}, {p['rows']} rows, {(p['profiling_seconds'] or 0) / 60:.1f} min: "
                  f"{fmt(p['cv_grouped_by_arch'])}")
    if "floor" in sections:
        floor = ds.read_json("_floor.json") or {}
        res["floor"] = {k: floor.get(k) for k in ("raw", "normalised", "measured_at", "stored_rows_from",
                                                   "stored_rows_to")}
        print(f"floor: raw {fmt(floor.get('raw') and {**floor['raw'], 'mape': floor['raw']['median_abs']})} · "
              f"normalised {fmt(floor.get('normalised') and {**floor['normalised'], 'mape': floor['normalised']['median_abs']})}"
              " (MAPE column: median |change|)")
    if "heldout" in sections and fresh is not None:
        p = load_predictor(args.device, args.backend, args.threads, root=args.predictors)
        ref = (p.meta.get("drift") or {}).get("reference_canary_ms")
        res["heldout_fresh_window"] = {"rows": len(fresh), **judge(p.predict(fresh), fresh, ref),
                                       "predictor_rows": p.meta.get("rows"),
                                       "predictor_heldout": short(p.meta["metrics"]["heldout"])}
        h = res["heldout_fresh_window"]
        print(f"held-out, fresh window ({len(fresh)} configs): normalised {fmt(h.get('normalised'))} · raw {fmt(h['raw'])}")
    if "target" in sections and df["canary_ms"].notna().all():
        res["target"] = section_target(df, fresh)
    if "transfer" in sections:
        res["transfer"] = section_transfer(df, fresh, args.transfer_from, args.backend, args.threads, args.k, args.seeds)
    for loaded in args.loaded_store or []:
        if "load" in sections and Path(loaded).exists():
            print(f"-- under load: {loaded}")
            res.setdefault("load", {})[loaded] = section_load(store, Path(loaded), args.device, args.backend,
                                                              args.threads, SearchSpace.load(args.space))
    out = Path(args.out or f"benchmarks/results/device_{args.device}_{args.backend}-t{args.threads}.json")
    out.write_text(json.dumps(res, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
