"""``search --budget-mb``: peak resident memory as a second hard constraint, from the predictor's memory model."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..lazy import lazy_module
from ..space import ARCH_DIMS, Arch, Shape
from .domain import SearchError
from .result import SearchResult

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_module("pandas")


def within_memory(predictor: Any, archs: list[Arch], shape: Shape, budget_mb: float) -> tuple[list[Arch], dict[Arch, float]]:
    """The archs whose predicted peak memory (MiB) at ``shape`` is within ``budget_mb``, and every arch's
    prediction. A predictor without a memory model, or a budget below every arch, is a :class:`SearchError`."""
    k = predictor.key
    if not predictor.memory:
        raise SearchError(f"--budget-mb needs a memory model for {k.device_id}/{k.backend}/t{k.threads}: profile with "
                          "--memory (the default on CPU) and refit with `kdnas-bench fit`")
    frame = pd.DataFrame({**{d: np.array([getattr(a, d) for a in archs]) for d in ARCH_DIMS},
                          "seq": shape.seq, "batch": shape.batch})
    mb = predictor.predict_memory_mb(frame)
    predicted = {a: float(m) for a, m in zip(archs, mb, strict=True)}
    kept = [a for a in archs if predicted[a] <= budget_mb]
    if not kept:
        low = min(predicted, key=lambda a: predicted[a])
        raise SearchError(f"--budget-mb {budget_mb:g} is below every arch of the space (smallest predicted peak: "
                          f"{low}, {predicted[low]:.1f} MiB)")
    return kept, predicted


@dataclass(frozen=True)
class MemoryStep:
    """The post-step of ``--budget-mb``: each winner's predicted peak memory (MiB) goes into the result."""

    predicted_mb: dict[Arch, float]

    def __call__(self, result: SearchResult) -> SearchResult:
        return replace(result, winners=[replace(w, extra={**w.extra, "predicted_peak_mb": self.predicted_mb[w.arch]})
                                        for w in result.winners])
