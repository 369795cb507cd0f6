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
from typing import Any

import torch
from bench_hetero_ffn import allocate, measure_twin, parser, setup

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


def _whole_heads(arch: Arch, teacher: Any) -> None:
    tcfg = teacher.model.config
    head_dim = int(tcfg.hidden_size) // int(tcfg.num_attention_heads)
    if arch.hidden != arch.heads * head_dim:
        raise SystemExit(f"--arch {arch}: its heads are {arch.hidden // arch.heads} wide, not the teacher's "
                         f"{head_dim}: whole teacher heads cannot move between layers")


def train(args: argparse.Namespace) -> None:
    from kdnas_bench.distill import distill
    from kdnas_bench.distill.inherit import importance_scores, teacher_importance
    from kdnas_bench.distill.trainer import init_student

    st = setup(args, check=_whole_heads)
    arch, work, teacher, data, kept, recipe, done = st.arch, st.work, st.teacher, st.data, st.kept, st.recipe, st.done
    head_dim = arch.hidden // arch.heads
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
    from kdnas_bench.models import build_model

    measure_twin(args, "hetero-heads", "heads", lambda arch, heads: set_heads(build_model(arch), heads,
                                                                             arch.hidden // arch.heads))


def main() -> None:
    args = parser(__doc__, "hetero-heads", 2, "Heads every layer keeps before the global ranking.").parse_args()
    train(args) if args.cmd == "train" else measure(args)


if __name__ == "__main__":
    main()
