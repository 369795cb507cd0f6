"""One real end-to-end KD-NAS search on SST-2 (figures, not pass/fail).

Teacher: MiniLM-L6 fine-tuned on SST-2 (--teacher). Budget: a third of the teacher's measured 1-thread
CPU latency at batch 1 x seq 128. The search (kdnas, MiniLM-students space, torch-t1 predictor) uses
proxy distillation; --final distils the winner on --final-examples training examples, exports it and
measures it here. A hand-crafted student (the MiniLM shape scaled down: heads = hidden/32, FFN = 4 x
hidden, as close as possible to the winner's predicted latency) is distilled the same way.

Run:  python benchmarks/bench_search_e2e.py --teacher runs/teacher-sst2-2k --data-dir ../shared/data/glue
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from kdnas_bench.distill.trainer import distill
from kdnas_bench.keys import DatasetKey
from kdnas_bench.predictors.registry import load_predictor
from kdnas_bench.profiling.device import hardware
from kdnas_bench.profiling.measure import measure_latency
from kdnas_bench.search.api import FinalOptions, SearchRequest, run_search
from kdnas_bench.space import Arch, SearchSpace, Shape

TEACHER_ARCH = Arch(6, 384, 12, 1536)
SHAPE = Shape(1, 128)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--data-dir", default="../shared/data/glue")
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--proxy-examples", type=int, default=1000)
    ap.add_argument("--proxy-epochs", type=float, default=2.0)
    ap.add_argument("--final-examples", type=int, default=8000)
    ap.add_argument("--final-epochs", type=float, default=1.0)
    ap.add_argument("--reward", choices=("hard", "soft"), default="hard",
                    help="The search's reward: hard (the metric within the budget, the tool's default) or soft.")
    ap.add_argument("--reward-w", type=float, default=-0.07, help="--reward soft: the latency exponent w.")
    ap.add_argument("--run", default="runs/e2e-sst2")
    ap.add_argument("--out", default="benchmarks/results/search_e2e.json")
    args = ap.parse_args()
    device = hardware(with_gpu=False).device_id
    teacher_ms = measure_latency(TEACHER_ARCH, SHAPE, "torch", 1)["measured_latency_ms"]
    budget = round(teacher_ms / 3, 2)
    print(f"teacher {TEACHER_ARCH}: {teacher_ms:.2f} ms measured (1 thread, 1x128) -> budget {budget} ms", flush=True)
    req = SearchRequest(DatasetKey(device, "torch", 1), (budget,), "sst2", reward_w=args.reward_w, shape=SHAPE,
                        reward_form=args.reward, teacher=args.teacher, data_dir=args.data_dir,
                        space="search/spaces/minilm-students.toml",
                        episodes=args.episodes, candidates=args.candidates, proxy_examples=args.proxy_examples,
                        proxy_epochs=args.proxy_epochs, final=FinalOptions(args.final_examples, args.final_epochs),
                        run_dir=args.run)
    print(req, flush=True)
    res = run_search(req).summary()
    (w,) = res["winners"]
    # the hand-crafted student: MiniLM's shape scaled down, nearest to the winner's predicted latency
    space = SearchSpace.load("search/spaces/minilm-students.toml")
    shaped = [a for a in space.archs if a.heads == max(a.hidden // 32, 2) and a.ffn == 4 * a.hidden]
    pred = load_predictor(device, "torch", 1).predict_interval(
        pd.DataFrame([{**a.to_dict(), "seq": SHAPE.seq, "batch": SHAPE.batch} for a in shaped]))
    feasible = [(abs(float(pred.mid[i]) - w["predicted_latency_ms"]), a) for i, a in enumerate(shaped)
                if float(pred.high[i]) <= budget]
    hand = min(feasible)[1] if feasible else Arch(4, 312, 12, 1200)
    hand_res = distill(args.teacher, "sst2", hand, data_dir=args.data_dir, max_examples=args.final_examples,
                       epochs=args.final_epochs, losses="logits", seed=0)
    hand_ms = measure_latency(hand, SHAPE, "torch", 1)["measured_latency_ms"]
    teacher_meta = json.loads((Path(args.teacher) / "metrics.json").read_text())
    teacher_acc = teacher_meta["metrics"]["accuracy"]
    out = {
        "teacher": {"arch": TEACHER_ARCH.to_dict(), "dev_accuracy": teacher_acc, "latency_ms": teacher_ms,
                    "train_examples": teacher_meta.get("train_examples")},
        "budget_ms": budget, "search": {k: args.__dict__[k] for k in ("episodes", "candidates", "proxy_examples",
                                                                     "proxy_epochs", "final_examples", "final_epochs",
                                                                     "reward", "reward_w")},
        "evaluations": res["evaluations"],
        "winner": {**w, "share_of_teacher": w["final_metric"] / teacher_acc,
                   "speedup_vs_teacher": teacher_ms / w["measured_latency_ms"]},
        "hand_crafted": {"arch": hand.to_dict(), "dev_accuracy": hand_res.primary, "latency_ms": hand_ms,
                         "share_of_teacher": hand_res.primary / teacher_acc, "speedup_vs_teacher": teacher_ms / hand_ms},
    }
    print(json.dumps(out, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
