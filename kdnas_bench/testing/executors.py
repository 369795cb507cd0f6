"""The executor contract (:class:`~kdnas_bench.search.executor.Executor`, built by a factory ``(address,
num_cpus, gpus_per_candidate)``): every arch it is given comes back once, with the evaluator's own evaluation;
nothing for no archs; a candidate's own failure comes back as a failed evaluation and the others are still
scored; the same executor serves a second evaluator. The evaluators used here are plain module-level objects,
so an executor that pickles them (Ray) is checked as it runs a search."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from ..distill.accelerator import CandidateFailure
from ..search.executor import Executor
from ..search.result import Evaluation
from ..space import Arch

ExecutorFactory = Callable[..., Executor]  # (address, num_cpus, gpus_per_candidate) -> Executor

ARCHS = (Arch(1, 64, 2, 128), Arch(2, 64, 2, 128), Arch(2, 128, 4, 256), Arch(3, 128, 2, 256))


class SizeScore:
    """Scores an arch by a smooth function of its size, times ``scale``; fails the archs of ``fail_layers``
    layers as a candidate's own failure (:class:`~kdnas_bench.distill.accelerator.CandidateFailure`)."""

    def __init__(self, scale: float = 1.0, fail_layers: int | None = None) -> None:
        self.scale, self.fail_layers = scale, fail_layers

    def evaluate(self, arch: Arch) -> Evaluation:
        if arch.layers == self.fail_layers:
            raise CandidateFailure(f"cannot build {arch}: made to fail")
        return Evaluation(self.score(arch), "size", {"size": self.score(arch)})

    def score(self, arch: Arch) -> float:
        return self.scale * arch.layers * arch.hidden / (1.0 + arch.layers * arch.hidden)


def _results(executor: Executor, evaluator: SizeScore, archs: Sequence[Arch]) -> dict[Arch, Evaluation]:
    got = list(executor.run(evaluator, list(archs)))
    seen = [arch for arch, _ in got]
    assert sorted(seen) == sorted(archs), f"{executor.name}: ran {seen} for {list(archs)} (each arch exactly once)"
    return dict(got)


def every_arch_once_with_its_evaluation(executor: Executor) -> None:
    ev = SizeScore()
    for arch, e in _results(executor, ev, ARCHS).items():
        assert e.error is None and math.isclose(e.metric, ev.score(arch)), f"{executor.name}: {arch} scored {e}"


def nothing_for_no_archs(executor: Executor) -> None:
    assert list(executor.run(SizeScore(), [])) == [], f"{executor.name}: results for no archs"


def a_candidate_failure_is_a_failed_evaluation(executor: Executor) -> None:
    ev = SizeScore(fail_layers=2)
    for arch, e in _results(executor, ev, ARCHS).items():
        if arch.layers == 2:
            assert e.error is not None and "made to fail" in e.error, f"{executor.name}: {arch} failed as {e}"
        else:
            assert e.error is None and math.isclose(e.metric, ev.score(arch)), f"{executor.name}: {arch} scored {e}"


def serves_a_second_evaluator(executor: Executor) -> None:
    """A search runs re-ranking rungs with new evaluators on the same executor: each run uses its own."""
    for scale in (2.0, 3.0):
        ev = SizeScore(scale)
        for arch, e in _results(executor, ev, ARCHS[:2]).items():
            assert math.isclose(e.metric, ev.score(arch)), f"{executor.name}: scale {scale}: {arch} scored {e.metric}"


EXECUTOR_CHECKS: dict[str, Callable[[Executor], None]] = {
    "every_arch_once_with_its_evaluation": every_arch_once_with_its_evaluation,
    "nothing_for_no_archs": nothing_for_no_archs,
    "a_candidate_failure_is_a_failed_evaluation": a_candidate_failure_is_a_failed_evaluation,
    "serves_a_second_evaluator": serves_a_second_evaluator}


def check_executor(factory: ExecutorFactory, name: str | None = None, *, num_cpus: int = 2) -> None:
    """Every executor check on one executor ``factory(None, num_cpus, 0.0)`` builds (closed at the end);
    ``name``: the name it is registered under, which its ``name`` must be."""
    executor = factory(None, num_cpus, 0.0)
    try:
        assert name is None or executor.name == name, f"executor registered as {name!r} is named {executor.name!r}"
        for check in EXECUTOR_CHECKS.values():
            check(executor)
    finally:
        executor.close()
