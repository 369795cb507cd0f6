"""Executors run evaluations: one after another (``local``), or in parallel on Ray (``ray``; each worker asks
for one CPU and, with ``gpus_per_candidate``, its share of a GPU, so N GPUs evaluate N candidates at once, or 4N
with shares of 0.25). Each is an :class:`Executor`; :data:`EXECUTORS` is the registry ``--executor`` reads. A
candidate's own failure (CUDA out of memory, a sub-network that cannot be built) comes back as a failed
evaluation with its message either way (:func:`evaluate_candidate`). Another package adds an executor through
an entry point of the group ``kdnas_bench.executors`` (:mod:`kdnas_bench.registry`): a factory
``(address, num_cpus, gpus_per_candidate) -> Executor``."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, Protocol

from ..registry import Registry
from ..space import Arch
from .domain import SearchError
from .result import Evaluation


class Evaluates(Protocol):
    """What an executor needs of an evaluator."""

    def evaluate(self, arch: Arch) -> Evaluation: ...


class Executor(Protocol):
    name: str

    def run(self, evaluator: Evaluates, archs: list[Arch]) -> Iterator[tuple[Arch, Evaluation]]:
        """Yield (arch, evaluation) as each finishes, in any order."""
        ...

    def close(self) -> None: ...


def evaluate_candidate(evaluator: Evaluates, arch: Arch) -> Evaluation:
    """``evaluator.evaluate(arch)``, with a failure that is the candidate's own (CUDA out of memory, a
    sub-network that cannot be built) returned as a failed :class:`Evaluation` carrying its message, so the
    search goes on; any other error propagates (it would hit every candidate)."""
    from ..distill.accelerator import (  # noqa: PLC0415  lazy: torch (via distill.accelerator)
        failure_message,
        free_memory,
    )

    t0 = time.perf_counter()
    try:
        return evaluator.evaluate(arch)
    except Exception as exc:
        message = failure_message(exc)
        if message is None:
            raise
    free_memory()  # the failed candidate's tensors are unreachable once the exception is gone
    return Evaluation(math.nan, "", {}, time.perf_counter() - t0, error=message)


def actor_options(gpus_per_candidate: float = 0.0) -> dict[str, Any]:
    """The resources one Ray worker asks for: one CPU, and its GPU share when given (fractions allowed: 0.25
    puts four workers on each GPU; Ray then sets the worker's CUDA_VISIBLE_DEVICES)."""
    if not (math.isfinite(gpus_per_candidate) and gpus_per_candidate >= 0):
        raise SearchError(f"--gpus-per-candidate must be 0 or more, got {gpus_per_candidate}")
    if gpus_per_candidate > 1 and not float(gpus_per_candidate).is_integer():
        raise SearchError(f"--gpus-per-candidate above 1 must be a whole number of GPUs, got {gpus_per_candidate:g}")
    return {"num_cpus": 1, **({"num_gpus": gpus_per_candidate} if gpus_per_candidate > 0 else {})}


class LocalExecutor:
    name = "local"

    def run(self, evaluator: Evaluates, archs: list[Arch]) -> Iterator[tuple[Arch, Evaluation]]:
        for arch in archs:
            yield arch, evaluate_candidate(evaluator, arch)

    def close(self) -> None:
        return None


class _Worker:
    """A Ray actor holding one evaluator: what the evaluator loads (teacher, data, teacher outputs) is loaded
    once per actor and reused by every candidate it scores."""

    def __init__(self, evaluator: Evaluates) -> None:
        self.evaluator = evaluator

    def evaluate(self, arch: Arch) -> tuple[Arch, Evaluation]:
        import ray  # noqa: PLC0415  lazy: ray

        evaluation = evaluate_candidate(self.evaluator, arch)
        return arch, replace(evaluation, node=ray.get_runtime_context().get_node_id())  # where it ran


def remote_worker(ray: Any, gpus_per_candidate: float = 0.0) -> Any:
    """The Ray actor class of one worker, with :func:`actor_options` as its resources."""
    return ray.remote(**actor_options(gpus_per_candidate))(_Worker)


class RayExecutor:
    """Evaluations on Ray actors (one CPU each, plus ``gpus_per_candidate`` of a GPU; as many as the cluster
    has CPUs, and GPU shares, at most one per candidate), which live as long as the search. A local Ray by
    default; ``address`` joins a cluster. Each evaluation records the id of the Ray node that ran it."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, gpus_per_candidate: float = 0.0) -> None:
        options = actor_options(gpus_per_candidate)  # bad input first, before Ray starts
        try:
            import ray  # noqa: PLC0415  lazy: ray, optional
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
        self._actor: Any = remote_worker(ray, gpus_per_candidate)
        self._workers: list[Any] = []
        self._for: Evaluates | None = None

    def _pool(self, evaluator: Evaluates, wanted: int) -> list[Any]:
        if self._for is not evaluator:
            for w in self._workers:
                self._ray.kill(w)
            self._workers, self._for = [], evaluator
        resources = self._ray.cluster_resources()
        slots = max(1, int(resources.get("CPU", 1)))
        if self.gpus_per_candidate > 0:
            slots = min(slots, max(1, int(resources.get("GPU", 0) / self.gpus_per_candidate + 1e-9)))
        while len(self._workers) < min(slots, wanted):
            self._workers.append(self._actor.remote(evaluator))
        return self._workers

    def run(self, evaluator: Evaluates, archs: list[Arch]) -> Iterator[tuple[Arch, Evaluation]]:
        if not archs:
            return
        todo = list(archs)
        busy: dict[Any, Any] = {}  # pending result -> the actor computing it
        for worker in self._pool(evaluator, len(todo)):
            if todo:
                busy[worker.evaluate.remote(todo.pop(0))] = worker
        while busy:
            done, _ = self._ray.wait(list(busy), num_returns=1)
            worker = busy.pop(done[0])
            if todo:
                busy[worker.evaluate.remote(todo.pop(0))] = worker
            yield self._ray.get(done[0])

    def close(self) -> None:
        self._workers, self._for = [], None
        self._ray.shutdown()


def local_executor(address: str | None = None, num_cpus: int | None = None,
                   gpus_per_candidate: float = 0.0) -> Executor:
    """``local``'s factory: the executor arguments mean nothing to it."""
    return LocalExecutor()


def _is_factory(name: str, part: object) -> str | None:
    return None if callable(part) else (f"must be a factory (address, num_cpus, gpus_per_candidate) -> Executor, "
                                        f"got {type(part).__name__}")


EXECUTORS: Registry[Callable[..., Executor]] = Registry("executor", _is_factory)
EXECUTORS.register("local", local_executor)
EXECUTORS.register("ray", RayExecutor)


def make_executor(name: str, address: str | None = None, num_cpus: int | None = None,
                  gpus_per_candidate: float = 0.0) -> Executor:
    executor: Executor = EXECUTORS.create(name, address, num_cpus, gpus_per_candidate)
    return executor
