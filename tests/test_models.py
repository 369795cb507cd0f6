from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from kdnas_bench.models import build_model, count_params, flops, make_inputs
from kdnas_bench.space import Arch, Shape


@pytest.mark.parametrize("arch", [Arch(4, 312, 12, 1200), Arch(1, 64, 2, 96), Arch(3, 128, 8, 512)])
def test_param_count_matches_model(arch: Arch) -> None:
    model = build_model(arch, num_labels=3)
    assert count_params(arch, num_labels=3) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("arch, shape", [(Arch(4, 312, 12, 1200), Shape(2, 24)), (Arch(2, 64, 4, 128), Shape(3, 16))])
def test_flops_match_torch_flop_counter(arch: Arch, shape: Shape) -> None:
    model = build_model(arch, attn_implementation="eager")
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(**make_inputs(shape))
    analytic = flops(arch, shape)
    assert analytic.total == counter.get_total_flops()
    assert analytic.attention == 4 * shape.batch * shape.seq**2 * arch.hidden * arch.layers


def test_off_grid_arch_builds_and_runs() -> None:
    model = build_model(Arch(4, 312, 12, 1200))
    with torch.inference_mode():
        logits = model(**make_inputs(Shape(2, 16))).logits
    assert logits.shape == (2, 2)


def test_build_model_is_seeded_and_leaves_the_global_rng_alone() -> None:
    import torch

    from kdnas_bench.models import build_model, tensors_hash

    arch = Arch(1, 32, 2, 64)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = build_model(arch, seed=5)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's random stream is untouched
    b = build_model(arch, seed=5)
    c = build_model(arch, seed=6)
    assert tensors_hash(a.state_dict()) == tensors_hash(b.state_dict()) != tensors_hash(c.state_dict())
