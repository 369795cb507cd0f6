"""The heterogeneous-FFN benchmark's two pieces: widths allocated by importance keep the total and every layer's
floor, and a model cut to them is a BERT that still runs, with each layer's first neurons kept."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from kdnas_bench.models import build_model
from kdnas_bench.space import Arch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_hetero_ffn import allocate, narrow_ffn


def test_allocation_keeps_the_total_the_floor_and_follows_the_scores() -> None:
    scores = [torch.tensor([9.0, 8.0, 7.0, 6.0]), torch.tensor([1.0, 0.5, 0.2, 0.1]), torch.tensor([5.0, 4.0, 0.3, 0.0])]
    assert allocate(scores, 6, floor=1) == [4, 1, 1]  # after one each, the three best of the rest are layer 0's
    assert allocate(scores, 7, floor=1) == [4, 1, 2]
    assert allocate(scores, 6, floor=2) == [2, 2, 2]
    assert sum(allocate(scores, 9, floor=0)) == 9


def test_narrowed_model_runs_and_keeps_the_first_neurons() -> None:
    model = build_model(Arch(3, 32, 2, 64)).eval()
    before = [layer.intermediate.dense.weight.clone() for layer in model.bert.encoder.layer]
    narrow_ffn(model, [64, 16, 40])
    for layer, w, f in zip(model.bert.encoder.layer, before, (64, 16, 40), strict=True):
        assert layer.intermediate.dense.weight.shape == (f, 32) and layer.output.dense.weight.shape == (32, f)
        assert torch.equal(layer.intermediate.dense.weight, w[:f])
    ids = torch.randint(0, 100, (2, 8))
    with torch.no_grad():
        assert model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.shape == (2, 2)
