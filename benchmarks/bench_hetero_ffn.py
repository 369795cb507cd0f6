"""Per-layer (heterogeneous) FFN widths inherited by importance, against the homogeneous student of the same total.

A student ``L,H,A,F`` keeps ``F`` FFN neurons in every layer. Its heterogeneous twin keeps the same ``L·F`` neurons
in all, chosen by the teacher's importance (|w ⊙ grad| of the task loss on 256 training examples,
:func:`kdnas_bench.distill.inherit.importance_scores`, the score that orders inheritance): every layer's ``--floor``
best neurons first, the rest by one ranking across the layers (global pruning). Within a layer the kept neurons
are the inherited order's prefix, so the twin is the homogeneous student's inheritance with other widths. Both
are distilled with the claims recipe (``bench_claims.py train``: whole training set, lr 2e-4, length-grouped
batches, logits + labels) for ``--seeds`` seeds; ``measure`` times the twin, the homogeneous student and the
teacher interleaved (torch, one thread, 1 x 128) so that the VM's drift hits all alike.

  python benchmarks/bench_hetero_ffn.py train --task stsb --teacher R/teachers/stsb --arch 6,256,8,256 \\
      --root R/hetero --data-dir glue --epochs 3
  python benchmarks/bench_hetero_ffn.py measure --task stsb --root R/hetero --arch 6,256,8,256 --rounds 300
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import torch

from kdnas_bench.space import Arch, Shape

SHAPE = Shape(1, 128)
TEACHER_ARCH = Arch(6, 384, 12, 1536)


def allocate(scores: list[torch.Tensor], total: int, floor: int) -> list[int]:
    """FFN widths per layer: each layer's ``floor`` best neurons, then the rest of ``total`` by one ranking."""
    n = len(scores)
    if floor * n > total:
        raise SystemExit(f"--floor {floor} x {n} layers exceeds the {total} neurons to keep")
    rest = torch.cat([s.sort(descending=True).values[floor:] for s in scores])
    owner = torch.cat([torch.full((len(s) - floor,), i) for i, s in enumerate(scores)])
    picked = owner[torch.topk(rest.double(), total - floor * n).indices]
    return [floor + int(c) for c in torch.bincount(picked, minlength=n)]


@torch.no_grad()
def narrow_ffn(model: Any, widths: list[int]) -> Any:
    """``model`` (a BERT classifier) with layer ``i``'s FFN cut to its first ``widths[i]`` neurons, in place."""
    for layer, f in zip(model.bert.encoder.layer, widths, strict=True):
        inter, out = layer.intermediate.dense, layer.output.dense
        a, b = torch.nn.Linear(inter.in_features, f), torch.nn.Linear(f, out.out_features)
        a.weight.copy_(inter.weight[:f]), a.bias.copy_(inter.bias[:f])
        b.weight.copy_(out.weight[:, :f]), b.bias.copy_(out.bias)
        layer.intermediate.dense, layer.output.dense = a, b
    return model


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []


def setup(args: argparse.Namespace, check: Any = None) -> argparse.Namespace:
    """What a twin benchmark's ``train`` starts from: the arch, work folder, teacher (``check(arch, teacher)`` may
    refuse it), data, the teacher layers the student keeps, the recipe's name and the (name, seed) already done."""
    from kdnas_bench.distill import load_teacher
    from kdnas_bench.distill.inherit import depth_map
    from kdnas_bench.distill.trainer import prepare_data

    torch.set_num_threads(1)
    arch = Arch.parse(args.arch)
    work = Path(args.root) / args.task
    work.mkdir(parents=True, exist_ok=True)
    teacher = load_teacher(args.teacher, task=args.task)
    if check is not None:
        check(arch, teacher)
    data = prepare_data(teacher.tokenizer, args.task, data_dir=args.data_dir)
    kept = depth_map(arch.layers, int(teacher.model.config.num_hidden_layers))
    recipe = f"n{len(data.train)}-e{args.epochs}-lr{args.lr}-{args.losses}-length-inherited"
    done = {(r["name"], r["seed"]) for r in _rows(work / "finals.jsonl") if r["recipe"] == recipe}
    return argparse.Namespace(arch=arch, work=work, teacher=teacher, data=data, kept=kept, recipe=recipe, done=done)


def train(args: argparse.Namespace) -> None:
    from kdnas_bench.distill import distill
    from kdnas_bench.distill.inherit import importance_scores
    from kdnas_bench.distill.trainer import init_student

    st = setup(args)
    arch, work, teacher, data, kept, recipe, done = st.arch, st.work, st.teacher, st.data, st.kept, st.recipe, st.done
    for seed in range(args.seeds):
        with torch.enable_grad():
            scores, _ = importance_scores(teacher.model, data.train, regression=data.task.is_regression, seed=seed)
        widths = allocate([scores[("ffn", t)] for t in kept], arch.layers * arch.ffn, args.floor)
        for name in args.students.split(","):
            if (name, seed) in done:
                continue
            if name == "homogeneous":
                init, w = None, [arch.ffn] * arch.layers
            else:
                wide = Arch(arch.layers, arch.hidden, arch.heads, max(widths))
                init = narrow_ffn(init_student(wide, teacher, data.task, seed=seed, data=data.train), widths)
                w = widths
            r = distill(teacher, args.task, arch, data=data, epochs=args.epochs, losses=args.losses, seed=seed,
                        lr=args.lr, batching="length", init_model=init, progress=True)
            rec = {"name": name, "arch": str(arch), "ffn_widths": w, "seed": seed, "metric": r.primary,
                   "metrics": r.metrics, "train_seconds": r.train_seconds, "recipe": recipe,
                   **({"params": sum(p.numel() for p in init.parameters())} if init is not None else {})}
            with (work / "finals.jsonl").open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
            print(json.dumps(rec), flush=True)


def measure_twin(args: argparse.Namespace, name: str, field: str, twin: Any) -> None:
    """Time the ``name`` twin (``twin(arch, rows[0][field])`` builds it), the homogeneous student and the teacher
    interleaved; each run adds a pass to ``latency.json`` (the VM drifts, so one pass is one sample)."""
    from bench_claims import interleaved_times

    from kdnas_bench.models import build_model, make_inputs
    from kdnas_bench.profiling.device import hardware

    torch.set_num_threads(1)
    arch = Arch.parse(args.arch)
    work = Path(args.root) / args.task
    rows = [r for r in _rows(work / "finals.jsonl") if r["name"] == name and r["arch"] == str(arch)]
    if not rows:
        raise SystemExit(f"no {name} rows for {arch} in {work / 'finals.jsonl'}: run train first")
    shape = rows[0][field]
    models = {"teacher": build_model(TEACHER_ARCH).eval(), "homogeneous": build_model(arch).eval(),
              name: twin(arch, shape).eval()}
    times = interleaved_times(models, make_inputs(SHAPE), args.rounds, args.warmup)
    ms = {k: statistics.median(v) for k, v in times.items()}
    path = work / "latency.json"
    out = json.loads(path.read_text()) if path.is_file() else {}
    if out.get(field) != shape or out.get("rounds") != args.rounds or "passes" not in out:  # another twin: anew
        out = {"device_id": hardware(with_gpu=False).device_id, "shape": str(SHAPE), "threads": 1, field: shape,
               "rounds": args.rounds, "method": f"interleaved, {args.rounds} rounds, median", "passes": []}
    out["passes"].append(ms)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(ms))


def measure(args: argparse.Namespace) -> None:
    measure_twin(args, "hetero-ffn", "ffn_widths", lambda arch, widths: narrow_ffn(
        build_wide(arch, widths), widths))


def build_wide(arch: Arch, widths: list[int]) -> Any:
    from kdnas_bench.models import build_model

    return build_model(Arch(arch.layers, arch.hidden, arch.heads, max(widths)))


def parser(doc: str, twin: str, floor: int, floor_help: str) -> argparse.ArgumentParser:
    """The command line of a heterogeneous-twin benchmark (``train`` and ``measure``); ``twin`` names its student."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
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
    tr.add_argument("--students", default=twin, help=f"Comma list: {twin} and/or homogeneous (the claims table's "
                    "row of the same arch is the homogeneous one, distilled exactly so).")
    tr.add_argument("--floor", type=int, default=floor, help=floor_help)
    me = sub.add_parser("measure")
    me.add_argument("--task", required=True)
    me.add_argument("--arch", required=True)
    me.add_argument("--root", required=True)
    me.add_argument("--rounds", type=int, default=300)
    me.add_argument("--warmup", type=int, default=20)
    return ap


def main() -> None:
    args = parser(__doc__, "hetero-ffn", 64, "Neurons every layer keeps before the global ranking.").parse_args()
    train(args) if args.cmd == "train" else measure(args)


if __name__ == "__main__":
    main()
