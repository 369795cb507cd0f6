"""Strategy registry: name -> the strategy's class (or any factory ``(domain, seed=..., **params) -> Strategy``).
``--strategy`` and the conformance suite read :data:`STRATEGIES`; a new strategy is one module and one
``register`` here, or, from another package, an entry point of the group ``kdnas_bench.strategies``
(:mod:`kdnas_bench.registry`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...registry import Registry
from ..domain import Domain
from .base import Strategy
from .evolution import Evolution
from .kdnas import KDNAS
from .random_search import RandomSearch


def _is_factory(name: str, part: object) -> str | None:
    if not callable(part):
        return f"must be a class or factory (domain, seed=...) -> Strategy, got {type(part).__name__}"
    own = getattr(part, "name", name)
    return None if own == name else f"its class is named {own!r}"


STRATEGIES: Registry[Callable[..., Strategy]] = Registry("strategy", _is_factory)
for _cls in (KDNAS, RandomSearch, Evolution):
    STRATEGIES.register(_cls.name, _cls)


def make_strategy(name: str, domain: Domain, seed: int = 0, **params: Any) -> Strategy:
    strategy: Strategy = STRATEGIES.create(name, domain, seed=seed, **params)
    return strategy


__all__ = ["KDNAS", "STRATEGIES", "Evolution", "RandomSearch", "Strategy", "make_strategy"]
