"""Executors run evaluations: one after another here, or in parallel on Ray (each candidate a Ray task that
asks for one CPU and, with ``gpus_per_candidate``, its share of a GPU, so N GPUs evaluate N candidates at
once, or 4N with shares of 0.25). A candidate's own failure (CUDA out of memory, a sub-network that cannot
be built) comes back as a failed evaluation with its message either way (:func:`evaluate_candidate`)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from ..space import Arch
from .domain import SearchError
from .evaluators import Evaluation, Evaluator, evaluate_candidate


class LocalExecutor:
    name = "local"

    def run(self, evaluator: Evaluator, archs: list[Arch]) -> Iterator[tuple[Arch, Evaluation]]:
        """Yield (arch, evaluation) as each finishes."""
        for arch in archs:
            yield arch, evaluate_candidate(evaluator, arch)

    def close(self) -> None:
        return None


def _ray_evaluate(evaluator: Evaluator, arch: Arch) -> tuple[Arch, Evaluation]:
    return arch, evaluate_candidate(evaluator, arch)


def task_options(gpus_per_candidate: float = 0.0) -> dict[str, Any]:
    """The resources one candidate's Ray task asks for: one CPU, and its GPU share when given (fractions
    allowed: 0.25 puts four candidates on each GPU; Ray then sets the task's CUDA_VISIBLE_DEVICES)."""
    if not (math.isfinite(gpus_per_candidate) and gpus_per_candidate >= 0):
        raise SearchError(f"--gpus-per-candidate must be 0 or more, got {gpus_per_candidate}")
    if gpus_per_candidate > 1 and not float(gpus_per_candidate).is_integer():
        raise SearchError(f"--gpus-per-candidate above 1 must be a whole number of GPUs, got {gpus_per_candidate:g}")
    options: dict[str, Any] = {"num_cpus": 1}
    if gpus_per_candidate > 0:
        # Ray's default for GPU tasks is a fresh worker per task (max_calls 1); a worker that stays keeps its
        # loaded teacher, data and teacher cache on its GPU for the next candidate
        options.update(num_gpus=gpus_per_candidate, max_calls=0)
    return options


def remote_evaluate(ray: Any, gpus_per_candidate: float = 0.0) -> Any:
    """The Ray remote function that evaluates one candidate, with :func:`task_options` as its resources."""
    return ray.remote(**task_options(gpus_per_candidate))(_ray_evaluate)


class RayExecutor:
    """Candidate evaluations as Ray tasks (one CPU each, plus ``gpus_per_candidate`` of a GPU). A local Ray by
    default; ``address`` joins a cluster."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, gpus_per_candidate: float = 0.0) -> None:
        options = task_options(gpus_per_candidate)  # bad input first, before Ray starts
        try:
            import ray
        except ImportError:
            raise SearchError("--executor ray needs Ray: pip install 'kdnas-bench[ray]'") from None
        self._ray = ray
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"address": address} if address else {"num_cpus": num_cpus}
            try:
                ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False, **kwargs)
            except Exception as exc:
                raise SearchError(f"cannot start or reach Ray ({address or 'local'}): {exc}") from None
        if "num_gpus" in options:
            gpus = float(ray.cluster_resources().get("GPU", 0))
            if gpus < options["num_gpus"]:
                ray.shutdown()
                raise SearchError(f"--gpus-per-candidate {gpus_per_candidate:g}: the Ray cluster has {gpus:g} GPU(s)")
        self.gpus_per_candidate = gpus_per_candidate
        self._remote: Any = remote_evaluate(ray, gpus_per_candidate)

    def run(self, evaluator: Evaluator, archs: list[Arch]) -> Iterator[tuple[Arch, Evaluation]]:
        ref = self._ray.put(evaluator)
        pending = [self._remote.remote(ref, a) for a in archs]
        while pending:
            done, pending = self._ray.wait(pending, num_returns=1)
            yield self._ray.get(done[0])

    def close(self) -> None:
        self._ray.shutdown()


def make_executor(name: str, address: str | None = None, num_cpus: int | None = None,
                  gpus_per_candidate: float = 0.0) -> LocalExecutor | RayExecutor:
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address, num_cpus, gpus_per_candidate)
    raise SearchError(f"unknown executor '{name}' (choose local or ray)")
