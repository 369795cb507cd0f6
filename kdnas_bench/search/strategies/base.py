"""The Strategy protocol: ``ask(n)`` proposes unseen archs of its domain, ``tell`` reports a reward."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ...space import Arch
from ..domain import Domain


@runtime_checkable
class Strategy(Protocol):
    name: str
    domain: Domain
    seed: int

    def ask(self, n: int) -> list[Arch]:
        """Up to ``n`` distinct archs from the domain that were neither asked nor told before."""
        ...

    def tell(self, arch: Arch, reward: float, info: dict[str, Any] | None = None) -> None:
        """The observed reward of an evaluated arch."""
        ...
