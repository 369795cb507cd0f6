"""The KD-loss contract (:class:`~kdnas_bench.distill.losses.KDLoss`, built by a factory ``(weight, context)``):
a finite, non-negative, differentiable scalar for any student / teacher widths and depths and for regression;
zero when the student reproduces the teacher (for a loss that reads the teacher); blind to padded tokens;
the weight carried, not applied."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch  # this module is the loss contract: torch is what it checks

from ..distill.losses import KDLoss, LossContext, LossFactory, Outputs

B, S, CLASSES = 3, 7, 2


def _outputs(hidden: int, layers: int, *, regression: bool = False, seed: int = 0, grad: bool = False) -> Outputs:
    g = torch.Generator().manual_seed(seed)

    def t(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g).requires_grad_(grad)

    return Outputs(t(B, 1 if regression else CLASSES), tuple(t(B, S, hidden) for _ in range(layers + 1)),
                   (t(B, S, hidden), t(B, S, hidden), t(B, S, hidden)))


def _batch(regression: bool = False) -> dict[str, Any]:
    mask = torch.ones(B, S, dtype=torch.long)
    mask[0, 4:] = 0  # padding in the first example
    mask[2, 6:] = 0
    labels = torch.tensor([0.2, 3.1, 4.5]) if regression else torch.tensor([0, 1, 1])
    return {"attention_mask": mask, "labels": labels}


def _make(factory: LossFactory, ctx: LossContext, weight: float = 1.0) -> KDLoss:
    loss = factory(weight, ctx)
    assert isinstance(loss, KDLoss), f"the factory built a {type(loss).__name__}, not a KDLoss"
    assert loss.weight == weight, f"{loss.name}: weight {loss.weight}, asked for {weight}"
    return loss


def scalar_finite_non_negative_and_differentiable(factory: LossFactory) -> None:
    for regression in (False, True):
        for s_h, t_h, s_l, t_l in ((48, 48, 4, 4), (32, 48, 2, 4), (64, 48, 6, 4)):
            loss = _make(factory, LossContext(s_h, t_h, s_l, t_l, regression))
            student = _outputs(s_h, s_l, regression=regression, seed=1, grad=True)
            teacher = _outputs(t_h, t_l, regression=regression, seed=2)
            value = loss(student, teacher, _batch(regression))
            where = f"{loss.name} (student {s_l}L/{s_h}, teacher {t_l}L/{t_h}, regression={regression})"
            assert value.shape == () and torch.isfinite(value) and value.item() >= 0, f"{where}: {value}"
            value.backward()
            grads = [x.grad for x in (student.logits, *(student.hidden or ()), *(student.qkv or ())) if x.grad is not None]
            assert grads and all(torch.isfinite(g).all() for g in grads), f"{where}: no finite gradient"
            assert any(g.abs().sum() > 0 for g in grads), f"{where}: the loss does not move the student"
            assert teacher.logits.grad is None, f"{where}: the loss moves the teacher"


def zero_when_the_student_reproduces_the_teacher(factory: LossFactory) -> None:
    for regression in (False, True):
        loss = _make(factory, LossContext(48, 48, 4, 4, regression))
        if not loss.uses_teacher:
            return  # it reads the labels, not the teacher
        same = _outputs(48, 4, regression=regression, seed=3)
        assert abs(loss(same, same, _batch(regression)).item()) <= 1e-5, f"{loss.name}: not zero on the teacher itself"
        other = _outputs(48, 4, regression=regression, seed=4)
        assert loss(other, same, _batch(regression)).item() > 1e-3, f"{loss.name}: zero on another student"


def padded_tokens_do_not_count(factory: LossFactory) -> None:
    loss = _make(factory, LossContext(32, 48, 2, 4))
    student, teacher, batch = _outputs(32, 2, seed=5), _outputs(48, 4, seed=6), _batch()
    before = loss(student, teacher, batch).item()
    pad = batch["attention_mask"] == 0
    for out in (student, teacher):
        for x in (*(out.hidden or ()), *(out.qkv or ())):
            with torch.no_grad():
                x[pad] = 1e3  # garbage where the mask is 0
    after = loss(student, teacher, batch).item()
    assert math.isclose(after, before, rel_tol=1e-5, abs_tol=1e-6), f"{loss.name}: padded tokens moved it {before} -> {after}"


def weight_is_carried_not_applied(factory: LossFactory) -> None:
    ctx = LossContext(32, 48, 2, 4)
    torch.manual_seed(0)
    one = _make(factory, ctx, 1.0)
    torch.manual_seed(0)
    half = _make(factory, ctx, 0.5)
    student, teacher, batch = _outputs(32, 2, seed=7), _outputs(48, 4, seed=8), _batch()
    # the trainer multiplies by the weight; the loss itself must not
    a, b = one(student, teacher, batch).item(), half(student, teacher, batch).item()
    assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9), f"{one.name}: the weight changed its value ({a} vs {b})"


LOSS_CHECKS: dict[str, Callable[[LossFactory], None]] = {
    "scalar_finite_non_negative_and_differentiable": scalar_finite_non_negative_and_differentiable,
    "zero_when_the_student_reproduces_the_teacher": zero_when_the_student_reproduces_the_teacher,
    "padded_tokens_do_not_count": padded_tokens_do_not_count,
    "weight_is_carried_not_applied": weight_is_carried_not_applied}


def check_loss(factory: LossFactory) -> None:
    """Every KD-loss check on the losses ``factory(weight, context)`` builds."""
    for check in LOSS_CHECKS.values():
        check(factory)
