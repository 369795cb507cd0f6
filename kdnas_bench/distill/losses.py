"""Knowledge-distillation losses: small composable pieces, each with a weight.

Every loss is a ``torch.nn.Module`` called as ``loss(student, teacher, batch) -> scalar tensor`` on
:class:`Outputs`; ``needs`` says which extra outputs it reads (``"hidden"`` states, last-layer
``"qkv"``), so the trainer computes (or caches) only those. A loss with trainable parameters (the
hidden-state projection) is trained with the student.

Spec strings (CLI ``--losses``): comma-separated names with optional weights, e.g.
``logits,hidden:0.5,attn`` — names: ``logits`` (KL with temperature; MSE for regression), ``hidden``
(uniform+last layer mapping), ``hidden-uniform``, ``attn`` (MiniLMv2 Q/K/V self-attention relations),
``ce`` (ground-truth labels).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..defaults import DEFAULTS
from ..errors import KdnasError
from ..registry import Registry


@dataclass
class Outputs:
    """What a model produced for one batch. ``hidden``: embeddings + one tensor per layer (B, S, H);
    ``qkv``: the last layer's query, key and value projections (B, S, H)."""

    logits: torch.Tensor
    hidden: tuple[torch.Tensor, ...] | None = None
    qkv: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` (B, S) over the tokens where ``mask`` (B, S) is 1."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


class KDLoss(nn.Module):
    """A weighted loss term ``(student, teacher, batch) -> scalar``. ``needs``: the extra outputs it reads;
    ``uses_teacher``: False for a loss on the labels alone (then no teacher forward is needed)."""

    name = "loss"
    needs: frozenset[str] = frozenset()
    uses_teacher = True

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = float(weight)


class GroundTruth(KDLoss):
    """Cross-entropy against the labels (MSE for regression)."""

    name = "ce"
    uses_teacher = False

    def __init__(self, weight: float = 1.0, regression: bool = False) -> None:
        super().__init__(weight)
        self.regression = regression

    def forward(self, student: Outputs, teacher: Outputs | None, batch: dict[str, Any]) -> torch.Tensor:
        if self.regression:
            return F.mse_loss(student.logits.squeeze(-1), batch["labels"].float())
        return F.cross_entropy(student.logits, batch["labels"])


class LogitsKD(KDLoss):
    """KL(teacher || student) on temperature-softened distributions, times T² (MSE for regression)."""

    name = "logits"

    def __init__(self, weight: float = 1.0, temperature: float = 1.0, regression: bool = False) -> None:
        super().__init__(weight)
        if temperature <= 0:
            raise KdnasError(f"temperature must be positive, got {temperature}")
        self.temperature = float(temperature)
        self.regression = regression

    def forward(self, student: Outputs, teacher: Outputs, batch: dict[str, Any]) -> torch.Tensor:
        if self.regression:
            return F.mse_loss(student.logits, teacher.logits)
        t = self.temperature
        return F.kl_div(
            F.log_softmax(student.logits / t, dim=-1), F.log_softmax(teacher.logits / t, dim=-1),
            reduction="batchmean", log_target=True,
        ) * (t * t)


def layer_map(student_layers: int, teacher_layers: int, mapping: str = "uniform+last") -> list[int]:
    """Teacher layer (1-based; 0 is the embeddings) for each student layer 1..Ls.

    ``uniform``: every k-th teacher layer, k = Lt // Ls (TinyBERT); ``uniform+last``: the same, but the
    last student layer always learns from the last teacher layer. More student than teacher layers:
    evenly spread (ceil)."""
    if mapping not in ("uniform", "uniform+last"):
        raise KdnasError(f"unknown layer mapping {mapping!r} (uniform, uniform+last)")
    ls, lt = student_layers, teacher_layers
    if ls > lt:
        return [math.ceil(m * lt / ls) for m in range(1, ls + 1)]
    k = lt // ls
    out = [m * k for m in range(1, ls + 1)]
    if mapping == "uniform+last":
        out[-1] = lt
    return out


class HiddenKD(KDLoss):
    """MSE between student layers and their mapped teacher layers, over real tokens; one shared
    learned linear projection (student width -> teacher width) when the widths differ."""

    name = "hidden"
    needs = frozenset({"hidden"})

    def __init__(self, weight: float, student_hidden: int, teacher_hidden: int, student_layers: int,
                 teacher_layers: int, mapping: str = "uniform+last") -> None:
        super().__init__(weight)
        self.mapping = mapping
        self.name = "hidden" if mapping == "uniform+last" else "hidden-uniform"
        self.pairs = list(enumerate(layer_map(student_layers, teacher_layers, mapping), start=1))
        self.proj = nn.Linear(student_hidden, teacher_hidden) if student_hidden != teacher_hidden else nn.Identity()

    def forward(self, student: Outputs, teacher: Outputs, batch: dict[str, Any]) -> torch.Tensor:
        assert student.hidden is not None and teacher.hidden is not None
        mask = batch["attention_mask"]
        total = student.logits.new_zeros(())
        for s, t in self.pairs:
            diff = self.proj(student.hidden[s]) - teacher.hidden[t].to(student.logits.dtype)
            total = total + _masked_mean(diff.pow(2).mean(-1), mask)
        return total / len(self.pairs)


def _relations(x: torch.Tensor, heads: int, mask: torch.Tensor) -> torch.Tensor:
    """Log of softmax(x_h x_h^T / sqrt(d)) per relation head h: (B, S, H) -> (B, heads, S, S)."""
    b, s, h = x.shape
    xh = x.view(b, s, heads, h // heads).transpose(1, 2)
    scores = xh @ xh.transpose(-1, -2) / math.sqrt(h // heads)
    scores = scores.masked_fill(mask[:, None, None, :] == 0, torch.finfo(scores.dtype).min)
    return F.log_softmax(scores, dim=-1)


def relation_heads(student_hidden: int, teacher_hidden: int, wanted: int = 12) -> int:
    """The largest head count <= ``wanted`` dividing both widths (MiniLMv2 splits Q/K/V into the same
    number of relation heads in teacher and student, whatever their attention head counts)."""
    g = math.gcd(student_hidden, teacher_hidden)
    return max(d for d in range(1, wanted + 1) if g % d == 0)


class AttentionRelationKD(KDLoss):
    """MiniLMv2: KL between the teacher's and the student's last-layer Q-Q, K-K and V-V scaled
    dot-product relations, split into a common number of relation heads."""

    name = "attn"
    needs = frozenset({"qkv"})

    def __init__(self, weight: float, student_hidden: int, teacher_hidden: int, heads: int = 12) -> None:
        super().__init__(weight)
        self.heads = relation_heads(student_hidden, teacher_hidden, heads)

    def forward(self, student: Outputs, teacher: Outputs, batch: dict[str, Any]) -> torch.Tensor:
        assert student.qkv is not None and teacher.qkv is not None
        mask = batch["attention_mask"]
        total = student.logits.new_zeros(())
        for xs, xt in zip(student.qkv, teacher.qkv, strict=True):
            log_s = _relations(xs, self.heads, mask)
            log_t = _relations(xt.to(xs.dtype), self.heads, mask)
            kl = (log_t.exp() * (log_t - log_s)).sum(-1)  # (B, heads, S)
            total = total + _masked_mean(kl.mean(1), mask)
        return total / 3


@dataclass(frozen=True)
class LossContext:
    """What a loss may be sized by: the student's and the teacher's widths and depths, the task kind."""

    student_hidden: int
    teacher_hidden: int
    student_layers: int
    teacher_layers: int
    regression: bool = False
    temperature: float = 1.0


LossFactory = Callable[[float, LossContext], KDLoss]

# The KD-loss registry: spec name -> factory(weight, context). A new loss is a KDLoss subclass plus one
# ``register`` here (or, from another package, a factory behind an entry point of ``kdnas_bench.losses``);
# tests/test_losses.py runs every registered loss through the shared conformance checks.
def _is_factory(name: str, part: object) -> str | None:
    return None if callable(part) else f"must be a factory (weight, LossContext) -> KDLoss, got {type(part).__name__}"


LOSSES: Registry[LossFactory] = Registry("loss", _is_factory)
LOSSES.register("logits", lambda w, c: LogitsKD(w, c.temperature, c.regression))
LOSSES.register("hidden", lambda w, c: HiddenKD(w, c.student_hidden, c.teacher_hidden, c.student_layers,
                                                c.teacher_layers))
LOSSES.register("hidden-uniform", lambda w, c: HiddenKD(w, c.student_hidden, c.teacher_hidden, c.student_layers,
                                                        c.teacher_layers, "uniform"))
LOSSES.register("attn", lambda w, c: AttentionRelationKD(w, c.student_hidden, c.teacher_hidden))
LOSSES.register("ce", lambda w, c: GroundTruth(w, c.regression))
LOSS_NAMES = LOSSES.registered()  # this package's losses (the registry also lists installed plugins')
DEFAULT_LOSSES = DEFAULTS.distill_losses


def parse_losses(spec: str | list[tuple[str, float]]) -> list[tuple[str, float]]:
    """``"logits,hidden:0.5"`` -> ``[("logits", 1.0), ("hidden", 0.5)]``."""
    if not isinstance(spec, str):
        return [(str(n), float(w)) for n, w in spec]
    out: list[tuple[str, float]] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, _, weight = part.partition(":") if ":" in part else part.partition("=")
        name = LOSSES.canonical(name.strip().lower())  # an unknown name: the registry's one-line error
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise KdnasError(f"loss weight must be a number, got {part!r}") from None
        if w < 0 or not math.isfinite(w):
            raise KdnasError(f"loss weight must be finite and >= 0, got {part!r}")
        if any(n == name for n, _ in out):
            raise KdnasError(f"loss {name!r} given twice")
        out.append((name, w))
    if not out:
        raise KdnasError("no losses given (e.g. --losses logits,hidden)")
    return out


def build_losses(spec: str | list[tuple[str, float]], *, student_config: Any, teacher_config: Any,
                 regression: bool, temperature: float = 1.0) -> list[KDLoss]:
    """The loss modules for a spec, sized for this student / teacher pair."""
    ctx = LossContext(int(student_config.hidden_size), int(teacher_config.hidden_size),
                      int(student_config.num_hidden_layers), int(teacher_config.num_hidden_layers), regression,
                      temperature)
    return [LOSSES[name](w, ctx) for name, w in parse_losses(spec)]


def needs_of(losses: list[KDLoss]) -> frozenset[str]:
    return frozenset().union(*(loss.needs for loss in losses)) if losses else frozenset()


def needs_teacher(losses: list[KDLoss]) -> bool:
    return any(loss.uses_teacher for loss in losses)
