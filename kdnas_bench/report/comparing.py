"""What ``kdnas-bench compare`` asks and how the library answers it: a :class:`CompareRequest` (its defaults and
rules checked in one place) and :func:`run_compare` (students resolved, predicted and measured by
:func:`~.compare.compare`, the deployment matrix of :mod:`.deployment` added), with progress through callbacks; the
CLI only renders the :class:`~.compare.CompareResult`. It sits above both modules (the matrix is built on a
comparison's result)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import KdnasError
from ..profiling.measure import measure_memory
from ..search.recipe import check_choice, check_positive
from ..search.reward import check_budget_mb, check_budgets
from ..space import Arch, Shape
from .compare import DEFAULT_SHAPE, CompareResult, compare
from .deployment import deployment_matrix
from .students import resolve_students


@dataclass(frozen=True)
class CompareRequest:
    """What ``kdnas-bench compare`` asks: ``students`` as typed (names, archs, search run folders, model folders;
    None: the six well-known students), the devices (None: every device with a fitted predictor), the shape
    (``batch`` x ``seq``), the reference of the speedups, whether to measure here, the predictors folder, the
    speed the predictions are at (``"reference"`` or ``"now"``), and the deployment matrix's budgets (None: no
    matrix; ``budget_mb`` only with ``budgets_ms``)."""

    students: str | None = None
    devices: tuple[str, ...] | None = None
    seq: int = DEFAULT_SHAPE.seq
    batch: int = DEFAULT_SHAPE.batch
    reference: str | None = None
    measure: bool = True
    predictors: str | None = None
    speed: str = "reference"
    budgets_ms: tuple[float, ...] | None = None
    budget_mb: float | None = None

    def __post_init__(self) -> None:
        check_positive(**{"--seq": self.seq, "--batch": self.batch})
        check_choice("speed", self.speed, ("reference", "now"))
        check_budget_mb(self.budget_mb)
        if self.budget_mb is not None and self.budgets_ms is None:
            raise KdnasError("--budget-mb goes with --budget-ms (the deployment matrix)")
        if self.budgets_ms is not None:
            check_budgets(self.budgets_ms, self.budget_mb)

    @property
    def shape(self) -> Shape:
        return Shape(self.batch, self.seq)


def run_compare(req: CompareRequest, *, on_measure: Callable[[int, int, str, str], None] | None = None,
                on_memory: Callable[[Arch, str], None] | None = None) -> CompareResult:
    """:func:`compare` on the request's students, then the deployment matrix for each budget (peak memory
    measured here only with ``measure``; ``on_memory(arch, backend)`` is told before each measurement)."""
    result = compare(resolve_students(req.students), shape=req.shape, devices=list(req.devices or []) or None,
                     reference=req.reference, measure=req.measure,
                     predictors_root=Path(req.predictors) if req.predictors else None, on_measure=on_measure,
                     speed=req.speed)
    if req.budgets_ms is not None:
        add_matrix(result, req.budgets_ms, req.budget_mb, measure=req.measure, on_memory=on_memory)
    return result


def add_matrix(result: CompareResult, budgets: tuple[float, ...], budget_mb: float | None, *, measure: bool,
               on_memory: Callable[[Arch, str], None] | None = None) -> None:
    """The deployment matrix of ``result`` for each budget (peak memory measured here only with ``measure``)."""
    def mem(arch: Arch, backend: str, threads: int) -> float | None:
        if on_memory is not None:
            on_memory(arch, backend)
        return measure_memory(arch, result.shape, backend, threads).get("measured_peak_mb")

    result.matrix = [c for b in budgets for c in deployment_matrix(result, b, budget_mb, mem if measure else None)]
    result.matrix_budget = (budgets, budget_mb)
