"""Per-layer (heterogeneous) attention heads inherited by importance, against the homogeneous student of the same total.

A student ``L,H,A,F`` of a space whose head size is the teacher's (``H / A`` = the teacher's head dim) keeps ``A``
whole teacher heads in every layer. Its heterogeneous twin keeps the same ``L·A`` heads in all, chosen by the
teacher's head importance (the sum of a head's channel scores, |w ⊙ grad| of the task loss on 256 training
examples, :func:`kdnas_bench.distill.inherit.importance_scores` — the score that orders inheritance): every
layer's ``--floor`` best heads first, the rest by one ranking across the layers (global pruning, as for the FFN
widths of ``bench_hetero_ffn.py``). Within a layer the kept heads are the inherited order's prefix, and every other
tensor is the homogeneous student's inheritance, so the twins differ only in where the heads sit. Same total heads
means the same Q/K/V/output weights and attention FLOPs. Both are distilled with the claims recipe
(``bench_claims.py train``: whole training set, lr 2e-4, length-grouped batches, logits + labels) for ``--seeds``
seeds; ``measure`` times the twin, the homogeneous student and the teacher interleaved (torch, one thread,
1 x 128) so that the VM's drift hits all alike.

  python benchmarks/bench_hetero_heads.py train --task stsb --teacher R/teachers/stsb --arch 6,256,8,256 \\
      --root R/hetero-heads --data-dir glue --epochs 3
  python benchmarks/bench_hetero_heads.py measure --task stsb --root R/hetero-heads --arch 6,256,8,256 --rounds 600
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import torch
from bench_hetero_ffn import SHAPE, TEACHER_ARCH, _rows, allocate

from kdnas_bench.space import Arch


def head_scores(channel_scores: torch.Tensor, head_dim: int) -> torch.Tensor:
    """A layer's head scores: the sum of each head's attention-channel scores."""
    return channel_scores.double().view(-1, head_dim).sum(1)


@torch.no_grad()
def set_heads(model: Any, heads: list[int], head_dim: int, source: list[dict[str, torch.Tensor]] | None = None) -> Any:
    """``model`` (a BERT classifier) with layer ``i``'s self-attention cut or grown to ``heads[i]`` heads of
    ``head_dim``, in place. ``source``: per layer, the rewired teacher layer's ``query``/``key``/``value``/``dense``
    weights and biases (heads in importance order) to take prefixes from; None keeps fresh random weights (timing)."""
    for i, (layer, a) in enumerate(zip(model.bert.encoder.layer, heads, strict=True)):
        sa, out = layer.attention.self, layer.attention.output
        hidden, width = out.dense.out_features, a * head_dim
        for name in ("query", "key", "value"):
            lin = torch.nn.Linear(hidden, width)
            if source is not None:
                lin.weight.copy_(source[i][f"{name}.weight"][:width, :hidden])
                lin.bias.copy_(source[i][f"{name}.bias"][:width])
            setattr(sa, name, lin)
        dense = torch.nn.Linear(width, hidden)
        if source is not None:
            dense.weight.copy_(source[i]["dense.weight"][:hidden, :width])
            dense.bias.copy_(source[i]["dense.bias"][:hidden])
        out.dense = dense
        sa.num_attention_heads, sa.attention_head_size, sa.all_head_size = a, head_dim, width
    return model


def _teacher_layers(teacher_model: Any, importance: Any, kept: list[int]) -> list[dict[str, torch.Tensor]]:
    """The rewired teacher's attention tensors of the kept layers (heads in importance order)."""
    from kdnas_bench.distill.inherit import rewire

    state = rewire(teacher_model.state_dict(), importance)
    names = {"query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
             "dense": "attention.output.dense"}
    return [{f"{k}.{p}": state[f"bert.encoder.layer.{t}.{v}.{p}"] for k, v in names.items() for p in ("weight", "bias")}
            for t in kept]


def train(args: argparse.Namespace) -> None:
    from kdnas_bench.distill import distill, load_teacher
    from kdnas_bench.distill.inherit import depth_map, importance_scores, teacher_importance
    from kdnas_bench.distill.trainer import init_student, prepare_data

    torch.set_num_threads(1)
    arch = Arch.parse(args.arch)
    work = Path(args.root) / args.task
    work.mkdir(parents=True, exist_ok=True)
    teacher = load_teacher(args.teacher, task=args.task)
    tcfg = teacher.model.config
    head_dim = int(tcfg.hidden_size) // int(tcfg.num_attention_heads)
    if arch.hidden != arch.heads * head_dim:
        raise SystemExit(f"--arch {arch}: its heads are {arch.hidden // arch.heads} wide, not the teacher's "
                         f"{head_dim}: whole teacher heads cannot move between layers")
    data = prepare_data(teacher.tokenizer, args.task, data_dir=args.data_dir)
    kept = depth_map(arch.layers, int(tcfg.num_hidden_layers))
    recipe = f"n{len(data.train)}-e{args.epochs}-lr{args.lr}-{args.losses}-length-inherited"
    done = {(r["name"], r["seed"]) for r in _rows(work / "finals.jsonl") if r["recipe"] == recipe}
    for seed in range(args.seeds):
        regression = data.task.is_regression
        with torch.enable_grad():
            scores, _ = importance_scores(teacher.model, data.train, regression=regression, seed=seed)
            imp = teacher_importance(teacher.model, data.train, regression=regression, seed=seed)
        heads = allocate([head_scores(scores[("att", t)], head_dim) for t in kept], arch.layers * arch.heads,
                         args.floor)
        for name in args.students.split(","):
            if (name, seed) in done:
                continue
            init = init_student(arch, teacher, data.task, seed=seed, data=data.train)
            if name == "homogeneous":
                h = [arch.heads] * arch.layers
            else:
                set_heads(init, heads, head_dim, _teacher_layers(teacher.model, imp, kept))
                h = heads
            r = distill(teacher, args.task, arch, data=data, epochs=args.epochs, losses=args.losses, seed=seed,
                        lr=args.lr, batching="length", init_model=init, progress=True)
            rec = {"name": name, "arch": str(arch), "heads": h, "seed": seed, "metric": r.primary,
                   "metrics": r.metrics, "train_seconds": r.train_seconds, "recipe": recipe,
                   "params": sum(p.numel() for p in init.parameters())}
            with (work / "finals.jsonl").open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
            print(json.dumps(rec), flush=True)


def measure(args: argparse.Namespace) -> None:
    from bench_claims import interleaved_times

    from kdnas_bench.models import build_model, make_inputs
    from kdnas_bench.profiling.device import hardware

    torch.set_num_threads(1)
    arch = Arch.parse(args.arch)
    work = Path(args.root) / args.task
    rows = [r for r in _rows(work / "finals.jsonl") if r["name"] == "hetero-heads" and r["arch"] == str(arch)]
    if not rows:
        raise SystemExit(f"no hetero-heads rows for {arch} in {work / 'finals.jsonl'}: run train first")
    heads = rows[0]["heads"]
    models = {"teacher": build_model(TEACHER_ARCH).eval(), "homogeneous": build_model(arch).eval(),
              "hetero-heads": set_heads(build_model(arch), heads, arch.hidden // arch.heads).eval()}
    times = interleaved_times(models, make_inputs(SHAPE), args.rounds, args.warmup)
    ms = {k: statistics.median(v) for k, v in times.items()}
    path = work / "latency.json"
    out = json.loads(path.read_text()) if path.is_file() else {}
    if out.get("heads") != heads or out.get("rounds") != args.rounds:  # another twin or protocol: start again
        out = {"device_id": hardware(with_gpu=False).device_id, "shape": str(SHAPE), "threads": 1, "heads": heads,
               "rounds": args.rounds, "method": f"interleaved, {args.rounds} rounds, median", "passes": []}
    out["passes"].append(ms)  # each run of measure adds a pass: the VM drifts, so one pass is one sample
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(ms))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    tr = sub.add_parser("train")
    tr.add_argument("--task", required=True)
    tr.add_argument("--teacher", required=True)
    tr.add_argument("--arch", required=True)
    tr.add_argument("--root", required=True)
    tr.add_argument("--data-dir", default="../shared/data/glue")
    tr.add_argument("--epochs", type=float, default=3.0)
    tr.add_argument("--lr", type=float, default=2e-4)
    tr.add_argument("--losses", default="logits,ce")
    tr.add_argument("--seeds", type=int, default=3)
    tr.add_argument("--students", default="hetero-heads", help="Comma list: hetero-heads and/or homogeneous (the "
                    "claims table's row of the same arch is the homogeneous one, distilled exactly so).")
    tr.add_argument("--floor", type=int, default=2, help="Heads every layer keeps before the global ranking.")
    me = sub.add_parser("measure")
    me.add_argument("--task", required=True)
    me.add_argument("--arch", required=True)
    me.add_argument("--root", required=True)
    me.add_argument("--rounds", type=int, default=300)
    me.add_argument("--warmup", type=int, default=20)
    args = ap.parse_args()
    train(args) if args.cmd == "train" else measure(args)


if __name__ == "__main__":
    main()
