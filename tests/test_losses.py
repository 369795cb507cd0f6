"""One conformance suite that every registered KD loss (``kdnas_bench.distill.losses.LOSSES``) runs: a scalar,
finite, non-negative and differentiable; zero when the student reproduces the teacher (for losses that read the
teacher); blind to padded tokens; sized for any student / teacher widths and depths; regression tasks too."""

from __future__ import annotations

import pytest
import torch

from kdnas_bench.distill.losses import LOSSES, KDLoss, LossContext, Outputs, build_losses, needs_teacher
from kdnas_bench.errors import KdnasError

B, S, CLASSES = 3, 7, 2


def _outputs(hidden: int, layers: int, *, regression: bool = False, seed: int = 0, grad: bool = False) -> Outputs:
    g = torch.Generator().manual_seed(seed)

    def t(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g).requires_grad_(grad)

    return Outputs(t(B, 1 if regression else CLASSES), tuple(t(B, S, hidden) for _ in range(layers + 1)),
                   (t(B, S, hidden), t(B, S, hidden), t(B, S, hidden)))


def _batch(regression: bool = False) -> dict[str, torch.Tensor]:
    mask = torch.ones(B, S, dtype=torch.long)
    mask[0, 4:] = 0  # padding in the first example
    mask[2, 6:] = 0
    labels = torch.tensor([0.2, 3.1, 4.5]) if regression else torch.tensor([0, 1, 1])
    return {"attention_mask": mask, "labels": labels}


def _make(name: str, ctx: LossContext) -> KDLoss:
    loss = LOSSES[name](1.0, ctx)
    assert isinstance(loss, KDLoss) and loss.weight == 1.0
    return loss


@pytest.fixture(params=sorted(LOSSES))
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("regression", [False, True])
@pytest.mark.parametrize(("s_h", "t_h", "s_l", "t_l"), [(48, 48, 4, 4), (32, 48, 2, 4), (64, 48, 6, 4)])
def test_scalar_finite_non_negative_and_differentiable(name: str, regression: bool, s_h: int, t_h: int, s_l: int,
                                                       t_l: int) -> None:
    loss = _make(name, LossContext(s_h, t_h, s_l, t_l, regression))
    student = _outputs(s_h, s_l, regression=regression, seed=1, grad=True)
    teacher = _outputs(t_h, t_l, regression=regression, seed=2)
    value = loss(student, teacher, _batch(regression))
    assert value.shape == () and torch.isfinite(value) and value.item() >= 0
    value.backward()
    grads = [x.grad for x in (student.logits, *student.hidden, *student.qkv) if x.grad is not None]  # type: ignore[misc]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)  # the loss moves the student
    assert teacher.logits.grad is None  # and never the teacher


@pytest.mark.parametrize("regression", [False, True])
def test_zero_when_the_student_reproduces_the_teacher(name: str, regression: bool) -> None:
    loss = _make(name, LossContext(48, 48, 4, 4, regression))
    if not loss.uses_teacher:
        pytest.skip(f"{name} reads the labels, not the teacher")
    same = _outputs(48, 4, regression=regression, seed=3)
    assert loss(same, same, _batch(regression)).item() == pytest.approx(0.0, abs=1e-5)
    other = _outputs(48, 4, regression=regression, seed=4)
    assert loss(other, same, _batch(regression)).item() > 1e-3  # and not zero otherwise


def test_padded_tokens_do_not_count(name: str) -> None:
    loss = _make(name, LossContext(32, 48, 2, 4))
    student, teacher, batch = _outputs(32, 2, seed=5), _outputs(48, 4, seed=6), _batch()
    before = loss(student, teacher, batch).item()
    pad = batch["attention_mask"] == 0
    for out in (student, teacher):
        for x in (*(out.hidden or ()), *(out.qkv or ())):
            with torch.no_grad():
                x[pad] = 1e3  # garbage where the mask is 0
    assert loss(student, teacher, batch).item() == pytest.approx(before, rel=1e-5, abs=1e-6)


def test_weight_is_carried_not_applied(name: str) -> None:
    ctx = LossContext(32, 48, 2, 4)
    torch.manual_seed(0)
    one = LOSSES[name](1.0, ctx)
    torch.manual_seed(0)
    half = LOSSES[name](0.5, ctx)
    student, teacher, batch = _outputs(32, 2, seed=7), _outputs(48, 4, seed=8), _batch()
    # the trainer multiplies by the weight; the registry passes it through unchanged
    assert half.weight == 0.5 and one(student, teacher, batch).item() == pytest.approx(half(student, teacher, batch).item())


def test_spec_strings_build_registered_losses_in_order() -> None:
    cfg_s = type("C", (), {"hidden_size": 32, "num_hidden_layers": 2})()
    cfg_t = type("C", (), {"hidden_size": 48, "num_hidden_layers": 4})()
    built = build_losses("attn,logits:0.5,ce", student_config=cfg_s, teacher_config=cfg_t, regression=False)
    assert [(b.name, b.weight) for b in built] == [("attn", 1.0), ("logits", 0.5), ("ce", 1.0)]
    assert needs_teacher(built) and not needs_teacher(built[2:])
    with pytest.raises(KdnasError, match="unknown loss"):
        build_losses("nosuchloss", student_config=cfg_s, teacher_config=cfg_t, regression=False)
