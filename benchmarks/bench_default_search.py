"""The default search against the quickstart's, on one task at one budget (figures, not pass/fail).

Goal: on a 2-core CPU, ``kdnas-bench search`` with its defaults (supernet scores, re-ranking, the teacher's head size)
and a teacher fine-tuned on 2,000 examples finishes in <= 20 minutes, and its winner is at least as accurate as the
quickstart's winner at the same budget. Steps, each the CLI command a user types (printed, timed: wall and CPU):

1. ``teacher finetune`` on 2,000 examples x 1 epoch (skipped when ROOT/teacher exists);
2. the default search (ROOT/default), then the same command with ``--final`` (the winner distilled on
   ``--final-examples`` x 1 epoch from its supernet weights, exported, measured here);
3. the quickstart's search at the same budget (3 x 4 one-shot scores, the best 2 re-ranked from 500 examples, any head
   size; ROOT/quickstart), reusing the default run's supernet (the quickstart trains the same one: the teacher's 2,000
   examples x 1 epoch, same seed), and ``--final`` the same way.

The task is given after ``--`` as task options (``--task sst2 --data-dir ../shared/data/glue``, or ``--train-file ...``).

Run:  python benchmarks/bench_default_search.py --root runs/bench-default --budget-ms 13.33 \\
          -- --task sst2 --data-dir ../shared/data/glue
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SPACE = "search/spaces/minilm-students.toml"
QUICKSTART = ["--episodes", "3", "--candidates", "4", "--rerank-top", "2", "--rerank-examples", "500",
              "--rerank-epochs", "2", "--head-dim", "any"]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(argv: list[str], log: list[dict[str, Any]], name: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "kdnas_bench", *argv]
    print(f"$ kdnas-bench {shlex.join(argv)}", flush=True)
    t0, c0 = time.perf_counter(), _cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    step = {"step": name, "command": "kdnas-bench " + shlex.join(argv), "wall_s": round(time.perf_counter() - t0, 1),
            "cpu_s": round(_cpu() - c0, 1), "rc": proc.returncode}
    log.append(step)
    print(f"  {name}: {step['wall_s']} s wall, {step['cpu_s']} s CPU, rc {proc.returncode}", flush=True)
    if proc.returncode:
        sys.exit(f"{name} failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
    return json.loads(proc.stdout) if "--json" in argv else {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default="runs/bench-default")
    ap.add_argument("--device", help="latency device id (default: this machine's)")
    ap.add_argument("--budget-ms", type=float, required=True)
    ap.add_argument("--teacher-examples", type=int, default=2000)
    ap.add_argument("--final-examples", type=int, default=4000)
    ap.add_argument("--out", default=None, help="JSON result (default benchmarks/results/default_search_<device>.json)")
    ap.add_argument("task", nargs=argparse.REMAINDER, help="-- then the task options")
    args = ap.parse_args()
    task = [a for a in args.task if a != "--"]
    if not task:
        ap.error("give the task options after --")
    from kdnas_bench.profiling.device import hardware

    here = hardware(with_gpu=False).device_id
    device = args.device or here
    root = Path(args.root)
    log: list[dict[str, Any]] = []
    teacher = root / "teacher"
    if not (teacher / "config.json").is_file():
        run(["teacher", "finetune", *task, "--max-examples", str(args.teacher_examples), "--epochs", "1",
             "--threads", "1", "--out", str(teacher), "--json"], log, "teacher")
    t_metrics = json.loads((teacher / "metrics.json").read_text())
    base = ["search", "--device", device, "--backend", "torch", "--budget-ms", f"{args.budget_ms:g}", *task,
            "--teacher", str(teacher), "--space", SPACE]
    final = ["--final", "--final-examples", str(args.final_examples), "--final-epochs", "1", "--json"]
    default = [*base, "--out", str(root / "default")]
    run([*default, "--json"], log, "default search")
    d = run([*default, *final], log, "default final")
    quick = [*base, *QUICKSTART, "--supernet", str(root / "default" / "supernet"), "--out", str(root / "quickstart")]
    q = run([*quick, *final], log, "quickstart search + final")
    keep = ("arch", "predicted_latency_ms", "proxy_metric", "final_metric", "final_metrics", "measured_latency_ms",
            "budget_held")
    doc = {"device_id": here, "latency_device": device, "budget_ms": args.budget_ms, "task_options": task,
           "teacher": {"examples": t_metrics.get("train_examples"), "metrics": t_metrics.get("metrics")},
           "default": {k: d["winners"][0].get(k) for k in keep}, "quickstart": {k: q["winners"][0].get(k) for k in keep},
           "steps": log}
    doc["default_search_wall_s"] = log[-3]["wall_s"]
    doc["default_search_cpu_s"] = log[-3]["cpu_s"]
    doc["winner_at_least_as_accurate"] = doc["default"]["final_metric"] >= doc["quickstart"]["final_metric"]
    out = Path(args.out or f"benchmarks/results/default_search_{here}.json")
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps({k: doc[k] for k in ("default", "quickstart", "default_search_wall_s", "default_search_cpu_s",
                                          "winner_at_least_as_accurate")}, indent=2))


if __name__ == "__main__":
    main()
