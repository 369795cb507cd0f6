"""How long ``import kdnas_bench.cli`` takes (what every ``kdnas-bench`` command pays before it parses an option),
and which heavy libraries it loads (the goal: under 0.5 s, neither torch nor pandas).

Each run is a fresh interpreter (``python -c``), so nothing is cached in memory; one untimed run first writes the
bytecode. Reported: the median and spread over ``--runs`` interpreters of the wall time and of the process's CPU
time (user + system; the figure a busy shared machine disturbs least), and the heavy modules found in
``sys.modules`` after the import. Not pass/fail: tests/test_import_light.py asserts the modules.

Run:
  python benchmarks/bench_import.py            # prints the figures, writes benchmarks/results/import_time.json
  python benchmarks/bench_import.py --runs 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "import_time.json"
HEAVY = ("torch", "transformers", "pandas", "pyarrow", "lightgbm", "onnxruntime", "sklearn", "scipy", "matplotlib",
         "ray", "datasets", "safetensors")
PROBE = f"""
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
import kdnas_bench.cli
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({{"wall_s": wall, "cpu_s": cpu, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""


def probe() -> dict[str, Any]:
    """One fresh interpreter's import of the CLI."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, env=env, cwd=ROOT)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def summary(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "q1": q[0], "q3": q[2]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10, help="fresh interpreters timed (default 10)")
    ap.add_argument("--out", type=Path, default=OUT, help="the JSON written (default benchmarks/results/import_time.json)")
    args = ap.parse_args(argv)
    probe()  # untimed: writes the bytecode
    runs = [probe() for _ in range(max(1, args.runs))]
    result = {
        "what": "import kdnas_bench.cli in a fresh interpreter",
        "runs": len(runs),
        "wall_s": summary([r["wall_s"] for r in runs]),
        "cpu_s": summary([r["cpu_s"] for r in runs]),
        "heavy_modules_loaded": sorted({m for r in runs for m in r["heavy"]}),
        "goal_s": 0.5,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"import kdnas_bench.cli ({len(runs)} fresh interpreters): wall median {result['wall_s']['median']:.3f} s "
          f"(IQR {result['wall_s']['q1']:.3f}-{result['wall_s']['q3']:.3f}), CPU median {result['cpu_s']['median']:.3f} s; "
          f"heavy modules loaded: {', '.join(result['heavy_modules_loaded']) or 'none'}")
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
