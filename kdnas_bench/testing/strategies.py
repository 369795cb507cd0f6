"""The Strategy contract (:class:`~kdnas_bench.search.strategies.base.Strategy`): distinct proposals from its
domain, seeded (the same seed proposes the same, another seed not), and bounded when the domain runs out."""

from __future__ import annotations

import math
from collections.abc import Callable

from ..paths import default_space
from ..search.domain import Domain
from ..search.strategies.base import Strategy
from ..space import Arch, SearchSpace, sample_archs

StrategyFactory = Callable[[Domain, int], Strategy]  # (domain, seed) -> a strategy


def smooth_reward(a: Arch) -> float:
    """A reward that grows smoothly with the arch's size: something to learn."""
    return round(0.6 + 0.3 * (1 - math.exp(-a.layers * a.hidden / 1500)) + 0.02 * math.log(a.ffn / 256), 4)


def domain(n: int = 60) -> Domain:
    """``n`` archs sampled (seeded) from the default space."""
    return Domain(sorted(set(sample_archs(SearchSpace.load(default_space()), n, seed=2))))


def _drive(strategy: Strategy, episodes: int, k: int) -> list[Arch]:
    seen = []
    for _ in range(episodes):
        batch = strategy.ask(k)
        for a in batch:
            strategy.tell(a, smooth_reward(a), {})
        seen += batch
    return seen


def distinct_proposals(make: StrategyFactory) -> None:
    d = domain()
    s = make(d, 3)
    assert isinstance(s, Strategy), f"{type(s).__name__} lacks part of the Strategy protocol (name, domain, seed, ask, tell)"
    seen = _drive(s, 5, 6)
    assert len(seen) == len(set(seen)) == 30, f"{s.name}: {len(seen)} proposals, {len(set(seen))} distinct (want 30)"
    assert all(a in d for a in seen), f"{s.name}: proposed an arch outside its domain"


def seeded(make: StrategyFactory) -> None:
    a, b, c = (_drive(make(domain(), seed), 4, 5) for seed in (11, 11, 12))
    assert a == b, "the same seed must propose the same archs"
    assert a != c, "another seed must propose other archs"


def stops_when_the_domain_runs_out(make: StrategyFactory) -> None:
    d = domain(12)
    s = make(d, 0)
    seen = _drive(s, 6, 5)  # asks for 30 from a domain of <= 12: bounded, no repeats, then nothing
    assert len(seen) == len(set(seen)) == len(d), f"{s.name}: {len(seen)} proposals from a domain of {len(d)}"
    assert s.ask(3) == [], f"{s.name}: proposes more once its domain is used up"


STRATEGY_CHECKS: dict[str, Callable[[StrategyFactory], None]] = {
    "distinct_proposals": distinct_proposals, "seeded": seeded, "stops_when_the_domain_runs_out": stops_when_the_domain_runs_out}


def check_strategy(make: StrategyFactory) -> None:
    """Every strategy check on the strategies ``make(domain, seed)`` builds."""
    for check in STRATEGY_CHECKS.values():
        check(make)
