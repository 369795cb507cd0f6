"""Random search: uniform over the feasible domain, without repeats."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...space import Arch
from ..domain import Domain


class RandomSearch:
    name = "random"

    def __init__(self, domain: Domain, seed: int = 0) -> None:
        self.domain = domain
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._seen: set[Arch] = set()

    def ask(self, n: int) -> list[Arch]:
        out = self.domain.sample(self._rng, n, exclude=self._seen)
        self._seen.update(out)
        return out

    def tell(self, arch: Arch, reward: float, info: dict[str, Any] | None = None) -> None:
        self._seen.add(arch)
