"""The search's reward. By default the hard constraint (MnasNet's form): ``R = A`` when the predicted latency
fits the budget, infeasible above it, so latency below the budget earns nothing and the most accurate student
that fits wins. ``form="soft"`` is the KD-NAS reward ``A · (lat / T)^w``, whose budget (``mode``) is judged on
the predictor's upper bound (``hard``) or not at all (``soft``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import KdnasError

MODES = ("hard", "soft")
FORMS = ("hard", "soft")  # --reward: the hard constraint (default) or the soft KD-NAS reward
# the hard reward's budget check: a measured latency passes at <= (1 - margin) x the budget (two interleaved
# measurements of one student on a shared VM differ by 1-3 %)
BUDGET_MARGIN = 0.03


def check_budgets(budgets_ms: tuple[float, ...] | list[float], budget_mb: float | None = None) -> None:
    """The one check of the budgets a search or a deployment matrix is given, in one wording: one or more
    latency budgets (ms), each a positive finite number, none repeated; the peak-memory budget (MiB), when given,
    a positive finite number. (Whether a budget can be met is the search's question: :func:`~.study.check_budgets`
    against the space, :func:`~.memory_budget.within_memory` against the memory model.)"""
    if not budgets_ms:
        raise KdnasError("--budget-ms needs at least one value")
    if any(not (math.isfinite(b) and b > 0) for b in budgets_ms):
        raise KdnasError(f"--budget-ms values must be positive finite numbers, got {list(budgets_ms)}")
    if len(set(budgets_ms)) != len(budgets_ms):
        raise KdnasError(f"--budget-ms values repeat: {list(budgets_ms)}")
    check_budget_mb(budget_mb)


def check_budget_mb(budget_mb: float | None) -> None:
    """The peak-memory budget (MiB), when given: a positive finite number (:func:`check_budgets`' wording)."""
    if budget_mb is not None and not (math.isfinite(budget_mb) and budget_mb > 0):
        raise KdnasError(f"--budget-mb must be positive, got {budget_mb}")


@dataclass(frozen=True)
class RewardSpec:
    """``budgets_ms``: one or more latency targets T; ``form``: ``hard`` (``R = A`` for a predicted latency
    within T; a candidate whose predicted interval straddles T is measured before the final pick) or ``soft``
    (``A · (lat / T)^w``); ``w``: the latency exponent of the soft form (negative); ``mode``: the soft form's
    budget: ``hard`` rejects a candidate whose predicted *upper bound* exceeds T, ``soft`` only penalises
    through ``(lat / T)^w``."""

    budgets_ms: tuple[float, ...]
    w: float = -0.07
    mode: str = "hard"
    form: str = "hard"

    def __post_init__(self) -> None:
        check_budgets(self.budgets_ms)
        if not math.isfinite(self.w) or self.w > 0:
            raise KdnasError(f"the latency exponent w must be <= 0 (a slower student must not earn more), got {self.w}")
        if self.mode not in MODES:
            raise KdnasError(f"unknown reward mode '{self.mode}' (choose from {', '.join(MODES)})")
        if self.form not in FORMS:
            raise KdnasError(f"unknown reward '{self.form}' (choose from {', '.join(FORMS)})")
        if self.form == "hard" and self.mode == "soft":
            raise KdnasError("--mode soft (no budget) contradicts the hard reward: pass --reward soft with it")

    @property
    def hard(self) -> bool:
        """The hard constraint: latency below the budget earns nothing."""
        return self.form == "hard"

    def feasible(self, budget_ms: float, latency_ms: float, latency_high_ms: float) -> bool:
        if self.hard:
            return latency_ms <= budget_ms
        return self.mode == "soft" or latency_high_ms <= budget_ms

    def straddles(self, budget_ms: float, latency_ms: float, latency_high_ms: float) -> bool:
        """A feasible candidate of the hard reward whose predicted interval reaches over the budget: it is
        measured on the device before it may be picked."""
        return self.hard and latency_ms <= budget_ms < latency_high_ms

    def factor(self, latency_ms: float, budget_ms: float) -> float:
        """What latency multiplies the metric by: 1 under the hard reward, ``(lat / T)^w`` under the soft one."""
        return 1.0 if self.hard else float((latency_ms / budget_ms) ** self.w)

    def reward(self, metric: float, latency_ms: float, budget_ms: float, latency_high_ms: float) -> float | None:
        """The reward under ``budget_ms``, or None when the candidate is infeasible for it."""
        if not self.feasible(budget_ms, latency_ms, latency_high_ms):
            return None
        return float(metric * self.factor(latency_ms, budget_ms))

    def to_dict(self) -> dict[str, object]:
        """``run.json``'s reward (a run folder from before the hard form has no ``form``: it was soft)."""
        return {"budgets_ms": list(self.budgets_ms), "w": self.w, "mode": self.mode, "form": self.form}


def budget_key(budget_ms: float) -> str:
    return f"{budget_ms:g}"
