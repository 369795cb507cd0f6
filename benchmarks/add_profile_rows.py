"""Add the rows of a profile taken into another store to a dataset of the committed store, keeping every row it holds.

A re-profile with the current canary protocol is taken into a store of its own (a clean adaptive run, its own
learning curve); this appends its rows to the committed dataset as a new file. A row id the dataset already holds
becomes a newer version of that row (readers return the newest copy; the older one stays in its file), every
other stored row stays as it is. ``fit`` then learns from the rows of the newest canary protocol only. The
source's learning-curve points are appended to the dataset's ``_adaptive.json``; with ``--floor`` the source's
noise floor (``_floor.json``, from ``kdnas-bench remeasure``) becomes the dataset's.

Run:  python benchmarks/add_profile_rows.py --from /tmp/ort --device amd-epyc-2c-243f6e --backend onnxruntime \
          --threads 1 --floor
"""

from __future__ import annotations

import argparse
import json

from kdnas_bench.profiling.adaptive import CURVE_FILE
from kdnas_bench.profiling.floor import FLOOR_FILE
from kdnas_bench.profiling.store import ProfileStore


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--from", dest="src", required=True, help="the store the re-profile was taken into")
    ap.add_argument("--to", default="profiles", help="the store to add the rows to")
    ap.add_argument("--device", required=True)
    ap.add_argument("--backend", default="torch")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--floor", action="store_true", help="also take over the source's _floor.json")
    args = ap.parse_args()
    src = ProfileStore(args.src).dataset(args.device, args.backend, args.threads)
    dst = ProfileStore(args.to).dataset(args.device, args.backend, args.threads)
    rows = src.read_table()
    if not rows.num_rows:
        raise SystemExit(f"{src.path} holds no rows")
    with dst.writer():
        before = dst.read_table()
        held = set(before.column("row_id").to_pylist())
        again = sum(r in held for r in rows.column("row_id").to_pylist())
        dst.append(rows.to_pylist())
        curve = dst.read_json(CURVE_FILE) or {"curve": []}
        new_curve = src.read_json(CURVE_FILE)
        if new_curve:
            dst.write_json(CURVE_FILE, {**curve, "curve": [*curve["curve"], *new_curve["curve"]],
                                        "config": new_curve.get("config", curve.get("config"))})
        floor = src.read_json(FLOOR_FILE)
        if args.floor and floor:
            dst.write_json(FLOOR_FILE, floor)
        after = dst.read_table().num_rows
    print(json.dumps({"dataset": str(dst.path), "rows_before": before.num_rows, "rows_added": rows.num_rows,
                      "of_them_new_versions_of_stored_rows": again, "rows_after": after,
                      "floor_taken_over": bool(args.floor and floor)}, indent=1))


if __name__ == "__main__":
    main()
