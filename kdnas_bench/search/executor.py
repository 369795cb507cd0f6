"""Executors run evaluations: one after another here, or in parallel on Ray."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..space import Arch
from .domain import SearchError
from .evaluators import Evaluation, Evaluator


class LocalExecutor:
    name = "local"

    def run(self, evaluator: Evaluator, archs: list[Arch]) -> Iterator[tuple[Arch, Evaluation]]:
        """Yield (arch, evaluation) as each finishes."""
        for arch in archs:
            yield arch, evaluator.evaluate(arch)

    def close(self) -> None:
        return None


def _ray_evaluate(evaluator: Evaluator, arch: Arch) -> tuple[Arch, Evaluation]:
    return arch, evaluator.evaluate(arch)


class RayExecutor:
    """Proxy distillations as Ray tasks (one CPU each). A local Ray by default; ``address`` joins a cluster."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
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
        self._remote: Any = ray.remote(num_cpus=1)(_ray_evaluate)

    def run(self, evaluator: Evaluator, archs: list[Arch]) -> Iterator[tuple[Arch, Evaluation]]:
        ref = self._ray.put(evaluator)
        pending = [self._remote.remote(ref, a) for a in archs]
        while pending:
            done, pending = self._ray.wait(pending, num_returns=1)
            yield self._ray.get(done[0])

    def close(self) -> None:
        self._ray.shutdown()


def make_executor(name: str, address: str | None = None, num_cpus: int | None = None) -> LocalExecutor | RayExecutor:
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address, num_cpus)
    raise SearchError(f"unknown executor '{name}' (choose local or ray)")
