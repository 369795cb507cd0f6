"""Regularized (aging) evolution with HAT-style mutation and crossover."""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from ...errors import SpaceError
from ...space import ARCH_DIMS, Arch
from ..domain import Domain


class Evolution:
    name = "evolution"

    def __init__(self, domain: Domain, seed: int = 0, population: int = 16, tournament: int = 4,
                 mutation_prob: float = 0.3, crossover_share: float = 0.5, retries: int = 50) -> None:
        self.domain = domain
        self.seed = seed
        self.population = population
        self.tournament = tournament
        self.mutation_prob = mutation_prob
        self.crossover_share = crossover_share
        self.retries = retries
        self._rng = np.random.default_rng(seed)
        self._pop: deque[tuple[Arch, float]] = deque()
        self._seen: set[Arch] = set()

    def _select(self) -> Arch:
        pop = list(self._pop)
        idx = self._rng.choice(len(pop), size=min(self.tournament, len(pop)), replace=False)
        return max((pop[i] for i in idx), key=lambda p: p[1])[0]

    def _mutate(self, parent: Arch) -> Arch | None:
        values = parent.to_dict()
        for d in ARCH_DIMS:
            if self._rng.random() < self.mutation_prob:
                choices = self.domain.choices[d]
                values[d] = int(choices[int(self._rng.integers(len(choices)))])
        return self._valid(values)

    def _crossover(self, a: Arch, b: Arch) -> Arch | None:
        values = {d: getattr(a if self._rng.random() < 0.5 else b, d) for d in ARCH_DIMS}
        return self._valid(values)

    def _valid(self, values: dict[str, int]) -> Arch | None:
        try:
            child = Arch.from_dict(values)
        except SpaceError:
            return None
        return child if child in self.domain and child not in self._seen else None

    def ask(self, n: int) -> list[Arch]:
        out: list[Arch] = []
        if len(self._pop) < self.population:
            out = self.domain.sample(self._rng, n, exclude=self._seen)
            self._seen.update(out)
            return out
        for _ in range(n):
            child = None
            for _ in range(self.retries):  # bounded: an infeasible or repeated child is redrawn
                if self._rng.random() < self.crossover_share:
                    child = self._crossover(self._select(), self._select())
                else:
                    child = self._mutate(self._select())
                if child is not None and child not in out:
                    break
                child = None
            if child is None:  # the neighbourhood is exhausted: fall back to a random unseen arch
                extra = self.domain.sample(self._rng, 1, exclude=self._seen | set(out))
                child = extra[0] if extra else None
            if child is None:
                break
            out.append(child)
            self._seen.add(child)
        return out

    def tell(self, arch: Arch, reward: float, info: dict[str, Any] | None = None) -> None:
        self._seen.add(arch)
        self._pop.append((arch, reward))
        while len(self._pop) > self.population:
            self._pop.popleft()  # aging: the oldest goes, however good
