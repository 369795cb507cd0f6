"""The heterogeneous-heads benchmark's pieces: head scores sum a head's channels, and a BERT whose layers hold
different numbers of heads runs, takes each layer's first heads from its source, and is unchanged when every
layer keeps all its heads."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from kdnas_bench.models import build_model
from kdnas_bench.space import Arch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_hetero_ffn import allocate
from bench_hetero_heads import head_scores, set_heads


def _source(model: torch.nn.Module) -> list[dict[str, torch.Tensor]]:
    out = []
    for layer in model.bert.encoder.layer:
        sa, dense = layer.attention.self, layer.attention.output.dense
        out.append({f"{n}.{p}": getattr(getattr(sa, n), p).detach().clone() for n in ("query", "key", "value")
                    for p in ("weight", "bias")} | {"dense.weight": dense.weight.detach().clone(),
                                                   "dense.bias": dense.bias.detach().clone()})
    return out


def test_head_scores_sum_each_heads_channels() -> None:
    ch = torch.tensor([1.0, 2.0, 3.0, 4.0, 0.5, 0.5])
    assert head_scores(ch, 2).tolist() == [3.0, 7.0, 1.0]
    assert allocate([head_scores(ch, 2), torch.tensor([0.1, 0.2, 0.3])], 4, floor=1) == [3, 1]


def test_all_heads_kept_is_the_same_function() -> None:
    torch.manual_seed(0)
    model = build_model(Arch(2, 32, 4, 64)).eval()  # heads of 8
    ids = torch.randint(0, 100, (2, 8))
    with torch.no_grad():
        before = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        set_heads(model, [4, 4], 8, _source(model))
        after = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    torch.testing.assert_close(after, before)


def test_layers_with_other_head_counts_run_and_keep_their_first_heads() -> None:
    torch.manual_seed(0)
    model = build_model(Arch(3, 32, 4, 64)).eval()
    src = _source(model)
    src[1] = {k: torch.cat([v, v], dim=0) if k != "dense.weight" and k != "dense.bias" else
              (torch.cat([v, v], dim=1) if k == "dense.weight" else v) for k, v in src[1].items()}  # 8 heads to take
    set_heads(model, [2, 6, 4], 8, src)
    for layer, a in zip(model.bert.encoder.layer, (2, 6, 4), strict=True):
        sa = layer.attention.self
        assert sa.query.weight.shape == (a * 8, 32) and layer.attention.output.dense.weight.shape == (32, a * 8)
        assert sa.num_attention_heads == a
    assert torch.equal(model.bert.encoder.layer[0].attention.self.query.weight, src[0]["query.weight"][:16])
    assert torch.equal(model.bert.encoder.layer[1].attention.output.dense.weight, src[1]["dense.weight"][:, :48])
    ids = torch.randint(0, 100, (2, 8))
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()
    set_heads(model, [1, 1, 1], 8)  # no source: random weights of the new widths (the timing twin)
    assert model.bert.encoder.layer[2].attention.self.value.weight.shape == (8, 32)
