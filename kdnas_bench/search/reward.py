"""The KD-NAS reward: MnasNet-style ``A · (lat / T)^w``, with an optional hard budget."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import KdnasError

MODES = ("hard", "soft")


@dataclass(frozen=True)
class RewardSpec:
    """``budgets_ms``: one or more latency targets T; ``w``: the latency exponent (negative);
    ``mode``: ``hard`` rejects a candidate whose predicted *upper bound* exceeds T (so a budget holds
    despite predictor error), ``soft`` only penalises through ``(lat / T)^w``."""

    budgets_ms: tuple[float, ...]
    w: float = -0.07
    mode: str = "hard"

    def __post_init__(self) -> None:
        if not self.budgets_ms:
            raise KdnasError("give at least one latency budget (--budget-ms)")
        if any(not (math.isfinite(b) and b > 0) for b in self.budgets_ms):
            raise KdnasError(f"latency budgets (--budget-ms) must be positive finite numbers, got {list(self.budgets_ms)}")
        if len(set(self.budgets_ms)) != len(self.budgets_ms):
            raise KdnasError(f"latency budgets repeat: {list(self.budgets_ms)}")
        if not math.isfinite(self.w) or self.w > 0:
            raise KdnasError(f"the latency exponent w must be <= 0 (a slower student must not earn more), got {self.w}")
        if self.mode not in MODES:
            raise KdnasError(f"unknown reward mode '{self.mode}' (choose from {', '.join(MODES)})")

    def feasible(self, budget_ms: float, latency_high_ms: float) -> bool:
        return self.mode == "soft" or latency_high_ms <= budget_ms

    def reward(self, metric: float, latency_ms: float, budget_ms: float, latency_high_ms: float) -> float | None:
        """The reward under ``budget_ms``, or None when the candidate is infeasible for it."""
        if not self.feasible(budget_ms, latency_high_ms):
            return None
        return float(metric * (latency_ms / budget_ms) ** self.w)


def budget_key(budget_ms: float) -> str:
    return f"{budget_ms:g}"
