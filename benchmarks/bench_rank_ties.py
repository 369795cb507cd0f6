"""Rank fidelity of the one-shot score with its tie-breaker, against full-set finals already measured.

A rank-fidelity result of ``bench_rank_fidelity.py`` (``--reference``) holds a dozen students and their scores
after full-set distillation (the reference). This script trains (or reuses) the supernet that result describes
(same space, examples, epochs and losses), scores every student one-shot as the search does
(:class:`kdnas_bench.search.evaluators.SupernetEvaluator`: the dev metric, and as the secondary score minus the
KD loss against the teacher on the same examples) and reports Kendall's tau against the reference

  * of the metric alone (ties stay ties: tau-b), as the earlier result did, and
  * of the metric with its ties broken by the secondary score, the order the search ranks candidates in.

Where the metric saturates (MRPC's F1 of the always-"paraphrase" answer) many students tie, and tau-b counts a
tie as no evidence; the tie-breaker orders them. Figures, not pass/fail.

Run (one thread, under ../shared/tools/heavy; the supernet takes most of the time):
  python benchmarks/bench_rank_ties.py --reference benchmarks/results/rank_fidelity_mrpc.json \
      --teacher R/teachers/mrpc --supernet R/supernet-mrpc-ranks --out benchmarks/results/rank_ties_mrpc.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

SPACE = "search/spaces/minilm-students.toml"


def tau(scores: list[tuple[float, ...]], reference: list[float]) -> float:
    """Kendall's tau-b between the order of ``scores`` (tuples compared in order: a later entry breaks the ties
    of the earlier ones) and ``reference``."""
    from scipy.stats import kendalltau

    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):  # equal tuples share their mean rank (a tie the tuple could not break)
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return float(kendalltau(ranks, reference).statistic)


def main() -> None:
    import torch

    from kdnas_bench.search.evaluators import SupernetEvaluator
    from kdnas_bench.space import Arch, SearchSpace
    from kdnas_bench.supernet import SupernetConfig
    from kdnas_bench.supernet.train import ensure_supernet

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", required=True, help="A rank_fidelity_*.json with its students' reference scores.")
    ap.add_argument("--teacher", required=True, help="The teacher the reference was distilled from.")
    ap.add_argument("--supernet", required=True, help="Folder of the supernet (trained here when empty).")
    ap.add_argument("--data-dir", default="../shared/data/glue")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    ref = json.loads(Path(args.reference).read_text())
    task, sn = ref["task"], ref["supernet"]
    torch.set_num_threads(1)
    cfg = SupernetConfig(examples=None if sn["examples"] >= _train_size(ref) else sn["examples"], epochs=sn["epochs"],
                         losses=sn["losses"], seed=0)
    t0 = time.perf_counter()
    _, doc = ensure_supernet(args.teacher, task, SearchSpace.load(SPACE), args.supernet, data_dir=args.data_dir,
                             cfg=cfg, progress=True)
    ev = SupernetEvaluator(supernet=args.supernet, teacher=args.teacher, task=task, space=SPACE,
                           data_dir=args.data_dir)
    rows: list[dict[str, Any]] = []
    for text, reference in zip(ref["students"], ref["scores"]["reference"], strict=True):
        e = ev.evaluate(Arch.parse(text))
        rows.append({"arch": text, "metric": e.metric, "secondary": e.secondary, "reference": reference})
        print(f"{text:16s} one-shot {e.metric:.4f}  -kd_loss {e.secondary:.4f}  reference {reference:.4f}", flush=True)
    refs = [r["reference"] for r in rows]
    metric_only = tau([(r["metric"],) for r in rows], refs)
    broken = tau([(r["metric"], r["secondary"]) for r in rows], refs)
    secondary_only = tau([(r["secondary"],) for r in rows], refs)
    ties = len(rows) - len({r["metric"] for r in rows})
    out = {"task": task, "reference_file": args.reference, "teacher": args.teacher, "metric": ref.get("metric"),
           "supernet": {"folder": args.supernet, "train_seconds": doc.get("train_seconds"), "steps": doc.get("steps"),
                        **{k: sn[k] for k in ("examples", "epochs", "losses")}},
           "seconds": round(time.perf_counter() - t0, 1), "students": rows, "metric_ties": ties,
           "kendall_tau": {"metric": metric_only, "metric_then_secondary": broken, "secondary": secondary_only},
           "earlier_supernet_tau": ref["methods"]["supernet"]["kendall_tau"]}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"{task}: Kendall tau vs full-set finals: metric {metric_only:.3f} ({ties} tied), metric then -kd_loss "
          f"{broken:.3f}, -kd_loss alone {secondary_only:.3f} (the earlier supernet: "
          f"{out['earlier_supernet_tau']:.3f}) -> {args.out}")


def _train_size(ref: dict[str, Any]) -> int:
    """The task's training-set size as the reference recipe records it (its full-set examples)."""
    return int(ref["reference"]["examples"])


if __name__ == "__main__":
    main()
