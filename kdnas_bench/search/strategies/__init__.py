"""Strategy registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..domain import Domain, SearchError
from .base import Strategy
from .evolution import Evolution
from .kdnas import KDNAS
from .random_search import RandomSearch

STRATEGIES: dict[str, Callable[..., Strategy]] = {"kdnas": KDNAS, "random": RandomSearch, "evolution": Evolution}


def make_strategy(name: str, domain: Domain, seed: int = 0, **params: Any) -> Strategy:
    if name not in STRATEGIES:
        raise SearchError(f"unknown strategy '{name}' (choose from {', '.join(STRATEGIES)})")
    return STRATEGIES[name](domain, seed=seed, **params)


__all__ = ["KDNAS", "STRATEGIES", "Evolution", "RandomSearch", "Strategy", "make_strategy"]
