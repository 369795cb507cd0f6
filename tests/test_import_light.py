"""``import kdnas_bench.cli`` (what every ``kdnas-bench`` command pays before it parses an option) stays light: in a
fresh interpreter it loads neither torch nor pandas (nor the other heavy libraries the library imports on use).

The modules are asserted exactly. Time is asserted only loosely, as the process's CPU time (user + system, which
other processes on a busy machine hardly change, unlike wall time), best of three interpreters, against twice the
goal of 0.5 s; the figure itself is a benchmark (``python benchmarks/bench_import.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NEVER = ("torch", "pandas", "pyarrow", "transformers", "lightgbm", "onnxruntime", "sklearn", "scipy", "matplotlib",
         "datasets", "safetensors", "ray")
CPU_BOUND_S = 1.0  # the goal is 0.5 s; twice that as headroom for slow CI machines

PROBE = """
import json, sys, time
c0 = time.process_time()
import {module}
cpu = time.process_time() - c0
print(json.dumps({{"cpu_s": cpu, "modules": sorted(m.split(".")[0] for m in sys.modules)}}))
"""


def fresh_import(module: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    out = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], capture_output=True, text=True,
                         check=True, env=env, cwd=ROOT, timeout=120)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_probe_sees_a_heavy_import() -> None:  # the checks below can fail: a module that needs pandas loads it
    assert "pandas" in fresh_import("kdnas_bench.predictors.features")["modules"]  # type: ignore[operator]


def test_importing_the_cli_loads_no_heavy_library() -> None:
    loaded = set(fresh_import("kdnas_bench.cli")["modules"])  # type: ignore[call-overload]
    assert not loaded & set(NEVER), f"import kdnas_bench.cli loads {sorted(loaded & set(NEVER))}"


def test_the_packages_import_light() -> None:
    """Every package's ``__init__`` is a lazy name table: importing any package loads none of its submodules."""
    probe = fresh_import("kdnas_bench.search, kdnas_bench.report, kdnas_bench.supernet, kdnas_bench.testing, "
                         "kdnas_bench.distill, kdnas_bench.predictors, kdnas_bench.profiling")
    loaded = set(probe["modules"])  # type: ignore[call-overload]
    assert not loaded & set(NEVER), sorted(loaded & set(NEVER))


def test_importing_the_cli_is_quick() -> None:
    fresh_import("kdnas_bench.cli")  # writes the bytecode
    best = min(float(fresh_import("kdnas_bench.cli")["cpu_s"]) for _ in range(3))  # type: ignore[arg-type]
    assert best < CPU_BOUND_S, f"import kdnas_bench.cli took {best:.2f} s of CPU (goal 0.5 s)"
