"""The KD-loss contract (:mod:`kdnas_bench.testing.losses`: a scalar, finite, non-negative and differentiable;
zero when the student reproduces the teacher, for losses that read the teacher; blind to padded tokens; sized
for any student / teacher widths and depths; regression tasks too) on every registered loss, and the spec strings."""

from __future__ import annotations

import pytest

from kdnas_bench.distill.losses import LOSSES, build_losses, needs_teacher
from kdnas_bench.errors import KdnasError
from kdnas_bench.testing import LOSS_CHECKS


@pytest.mark.parametrize(("name", "check"), [(n, c) for n in sorted(LOSSES) for c in LOSS_CHECKS])
def test_loss_contract(name: str, check: str) -> None:
    LOSS_CHECKS[check](LOSSES[name])


def test_spec_strings_build_registered_losses_in_order() -> None:
    cfg_s = type("C", (), {"hidden_size": 32, "num_hidden_layers": 2})()
    cfg_t = type("C", (), {"hidden_size": 48, "num_hidden_layers": 4})()
    built = build_losses("attn,logits:0.5,ce", student_config=cfg_s, teacher_config=cfg_t, regression=False)
    assert [(b.name, b.weight) for b in built] == [("attn", 1.0), ("logits", 0.5), ("ce", 1.0)]
    assert needs_teacher(built) and not needs_teacher(built[2:])
    with pytest.raises(KdnasError, match="unknown loss"):
        build_losses("nosuchloss", student_config=cfg_s, teacher_config=cfg_t, regression=False)
