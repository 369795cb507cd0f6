"""Summarise benchmarks/gpu_check.sh's training steps into ``OUT/gpu_train.json`` (the format of
benchmarks/results/gpu_train.json): per step its exit code, wall time and what the run folder says (train
seconds, examples, dev accuracy), the goals (final <= 180 s, supernet <= 600 s) and the speed-up over the 2-core
CPU on the same jobs (benchmarks/results/cpu_train_ref.json, measured with the commands it names).

    python3 benchmarks/gpu_summary.py --work /tmp/kdnas-gpu-work --out /tmp/out
"""

from __future__ import annotations

import argparse
import json
import math
import platform
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
GOALS = {"final": 180.0, "supernet": 600.0}


def _json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _steps(out: Path) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    path = out / "steps.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        found[rec["step"]] = rec
    return found


def _tail(path: Path, n: int = 1) -> str:
    lines = [ln for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()] \
        if path.is_file() else []
    return " | ".join(lines[-n:])


def cpu_reference() -> dict[str, Any]:
    """The 2-core CPU's figures for the same jobs (benchmarks/results/cpu_train_ref.json, with its commands)."""
    return _json(RESULTS / "cpu_train_ref.json") or {}


def summarise(work: Path, out: Path, full: int, supernet_epochs: float, teacher_examples: int) -> dict[str, Any]:
    steps = _steps(out)
    env = _tail(out / "env.txt", 20)
    doc: dict[str, Any] = {"host": {"python": platform.python_version(), "env": env}, "steps": {}}
    try:
        import torch

        if torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            doc["host"].update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), torch=torch.__version__,
                               cuda=torch.version.cuda, bf16=torch.cuda.is_bf16_supported())
    except Exception as exc:  # the summary must not fail for want of torch
        doc["host"]["torch_error"] = str(exc)
    ref = cpu_reference()
    doc["cpu_reference"] = ref
    s = doc["steps"]
    if "tests" in steps:
        s["tests"] = {**steps["tests"], "summary": _tail(out / "tests.log")}
    t = _json(work / "teacher" / "metrics.json")
    if "teacher" in steps:
        s["teacher_finetune"] = {**steps["teacher"], "examples": teacher_examples}
        if t:
            s["teacher_finetune"].update(train_seconds=t["train_seconds"], train_examples=t["train_examples"],
                                         dev_accuracy=t["metrics"].get("accuracy"), config=t["config"])
    f = _json(work / "final" / "metrics.json")
    if "final" in steps:
        rec = s["final"] = {**steps["final"], "arch": "3,384,12,1536", "goal_seconds": GOALS["final"]}
        if f:
            rate = f["train_examples"] * f["epochs"] / f["train_seconds"]
            rec.update(train_seconds=f["train_seconds"], train_examples=f["train_examples"], epochs=f["epochs"],
                       teacher_cache_seconds=f.get("teacher_cache_seconds"), dev_accuracy=f["metrics"].get("accuracy"),
                       examples_per_second=round(rate, 1), config=f["config"],
                       met_train=f["train_seconds"] <= GOALS["final"], met_wall=rec["wall_seconds"] <= GOALS["final"])
            cpu = ref.get("final")
            if cpu:
                rec["speedup_vs_cpu"] = {"cpu_examples_per_second": cpu["examples_per_second"],
                                         "speedup": round(rate / cpu["examples_per_second"], 1),
                                         "cpu_projected_seconds": round(rec["train_examples"] * rec["epochs"]
                                                                        / cpu["examples_per_second"], 1),
                                         "how": "training examples per second (teacher cache included) here over the "
                                                "2-core CPU's on the same student and recipe"}
    if "supernet" in steps:
        rec = s["supernet"] = {**steps["supernet"], "examples": full, "epochs": supernet_epochs,
                               "goal_seconds": GOALS["supernet"]}
        done = _json(work / "supernet" / "supernet.json")
        ck = _json(work / "supernet" / "checkpoint.json")
        total = math.ceil(math.ceil(full / 32) * supernet_epochs)
        if done:
            rec.update(complete=True, steps=done["steps"], train_seconds=done["train_seconds"],
                       teacher_cache_seconds=done.get("teacher_cache_seconds"), accelerator=done.get("accelerator"),
                       precision=done.get("precision"), seconds_per_step=done["train_seconds"] / done["steps"])
        elif ck:
            per = ck["seconds"] / ck["step"]
            rec.update(complete=False, steps_done=ck["step"], steps=total, seconds_at_checkpoint=ck["seconds"],
                       seconds_per_step=per, projected_train_seconds=round(per * total, 1))
        if "seconds_per_step" in rec:
            projected = rec.get("train_seconds", rec.get("projected_train_seconds"))
            rec["met"] = projected is not None and projected <= GOALS["supernet"]
            if "supernet" in ref:
                per = ref["supernet"]["seconds_per_step"]
                rec["speedup_vs_cpu"] = {"cpu_seconds_per_step": per, "speedup": round(per / rec["seconds_per_step"], 1),
                                         "cpu_projected_seconds": round(per * total, 1),
                                         "how": "seconds per sandwich step (batch 32, 4 sub-networks) on the 2-core CPU "
                                                "over this one's"}
    if "search" in steps:
        rec = s["search"] = dict(steps["search"])
        summary = _json(work / "search" / "summary.json")
        if summary:
            w = (summary.get("winners") or [{}])[0]
            rec.update(evaluations=summary.get("evaluations"), winner=w.get("arch"), proxy_metric=w.get("proxy_metric"),
                       final_metric=w.get("final_metric"), final_train_seconds=w.get("final_train_seconds"),
                       predicted_latency_ms=w.get("predicted_latency_ms"))
        failed = 0
        log = work / "search" / "evaluations.jsonl"
        for line in log.read_text(encoding="utf-8").splitlines() if log.is_file() else []:
            failed += '"error"' in line
        rec["failed_candidates"] = failed
    return doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--full", type=int, default=67349)
    ap.add_argument("--supernet-epochs", type=float, default=2.0)
    ap.add_argument("--teacher-examples", type=int, default=2000)
    args = ap.parse_args()
    doc = summarise(args.work, args.out, args.full, args.supernet_epochs, args.teacher_examples)
    (args.out / "gpu_train.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(doc["steps"], indent=1)[:6000])


if __name__ == "__main__":
    main()
