"""The set of archs a strategy may propose, with their predicted latency at the search shape."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import KdnasError
from ..space import ARCH_DIMS, Arch


class SearchError(KdnasError):
    """A search that cannot run as asked (empty space, impossible budget, changed run dir)."""


@dataclass
class Domain:
    """Candidate archs (feasible under one budget) and per-dimension ordinal choices for encoding."""

    archs: list[Arch]
    choices: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # the known latency part of each arch's reward, (lat / T)^w; lets a surrogate learn only the accuracy
    latency_factor: dict[Arch, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.archs:
            raise SearchError("no candidate arch is feasible: the space is empty or the budget too tight")
        self.archs = sorted(set(self.archs))
        if not self.choices:
            self.choices = {d: tuple(sorted({getattr(a, d) for a in self.archs})) for d in ARCH_DIMS}
        self._set = set(self.archs)
        self._index = {d: {v: i for i, v in enumerate(vals)} for d, vals in self.choices.items()}

    def __len__(self) -> int:
        return len(self.archs)

    def __contains__(self, arch: object) -> bool:
        return arch in self._set

    def encode(self, arch: Arch) -> list[int]:
        """Ordinal index of each dimension's value (nearest choice for an off-grid value)."""
        out = []
        for d in ARCH_DIMS:
            v = getattr(arch, d)
            idx = self._index[d].get(v)
            if idx is None:
                vals = np.asarray(self.choices[d])
                idx = int(np.abs(vals - v).argmin())
            out.append(idx)
        return out

    def sample(self, rng: np.random.Generator, n: int, exclude: set[Arch] | Sequence[Arch] = ()) -> list[Arch]:
        """Up to ``n`` distinct archs not in ``exclude``: bounded rejection sampling, then an exhaustive
        pass when the unseen part of the domain is small. Returns fewer when the domain runs out."""
        excluded = set(exclude)
        out: list[Arch] = []
        chosen: set[Arch] = set()
        for _ in range(20 * n + 20):
            if len(out) >= n:
                return out
            a = self.archs[int(rng.integers(len(self.archs)))]
            if a not in excluded and a not in chosen:
                out.append(a)
                chosen.add(a)
        rest = [a for a in self.archs if a not in excluded and a not in chosen]
        if rest:
            picks = rng.permutation(len(rest))[: n - len(out)]
            out.extend(rest[i] for i in picks)
        return out
