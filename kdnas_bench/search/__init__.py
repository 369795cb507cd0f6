"""KD-NAS search: reward, strategies, evaluators, executors and the study that coordinates them.

A whole search is one call: ``run_search(SearchRequest(...)) -> SearchOutcome`` (see :mod:`.api`). Names are
imported on first use (see :mod:`kdnas_bench.lazy`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:
    from .api import FinalOptions, SearchOutcome, SearchRequest, SupernetOptions, run_search

__all__ = ["FinalOptions", "SearchOutcome", "SearchRequest", "SupernetOptions", "run_search"]
__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(__all__, "api"))
