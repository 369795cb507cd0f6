"""Executors run evaluations: one after another (``local``), or in parallel on Ray (``ray``). Each is an
:class:`Executor`; :data:`EXECUTORS` is the registry ``--executor`` reads."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

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


class LocalExecutor:
    name = "local"

    def run(self, evaluator: Evaluates, archs: list[Arch]) -> Iterator[tuple[Arch, Evaluation]]:
        for arch in archs:
            yield arch, evaluator.evaluate(arch)

    def close(self) -> None:
        return None


class _Worker:
    """A Ray actor holding one evaluator: what the evaluator loads (teacher, data, teacher outputs) is loaded
    once per actor and reused by every candidate it scores."""

    def __init__(self, evaluator: Evaluates) -> None:
        self.evaluator = evaluator

    def evaluate(self, arch: Arch) -> tuple[Arch, Evaluation]:
        return arch, self.evaluator.evaluate(arch)


class RayExecutor:
    """Evaluations on Ray actors (one CPU each; as many as the cluster has CPUs, at most one per candidate),
    which live as long as the search. A local Ray by default; ``address`` joins a cluster."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        try:
            import ray  # lazy: an optional dependency
        except ImportError:
            raise SearchError("--executor ray needs Ray: pip install 'kdnas-bench[ray]'") from None
        self._ray = ray
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"address": address} if address else {"num_cpus": num_cpus}
            try:
                ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False, **kwargs)
            except Exception as exc:
                raise SearchError(f"cannot start or reach Ray ({address or 'local'}): {exc}") from None
        self._actor: Any = ray.remote(num_cpus=1)(_Worker)
        self._workers: list[Any] = []
        self._for: Evaluates | None = None

    def _pool(self, evaluator: Evaluates, wanted: int) -> list[Any]:
        if self._for is not evaluator:
            for w in self._workers:
                self._ray.kill(w)
            self._workers, self._for = [], evaluator
        cpus = max(1, int(self._ray.cluster_resources().get("CPU", 1)))
        while len(self._workers) < min(cpus, wanted):
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


EXECUTORS: dict[str, Callable[..., Executor]] = {"local": lambda address=None, num_cpus=None: LocalExecutor(),
                                                 "ray": RayExecutor}


def make_executor(name: str, address: str | None = None, num_cpus: int | None = None) -> Executor:
    if name not in EXECUTORS:
        raise SearchError(f"unknown executor '{name}' (choose from {', '.join(EXECUTORS)})")
    return EXECUTORS[name](address, num_cpus)
