"""KD-NAS search: reward, strategies, evaluators, executors and the study that coordinates them.

A whole search is one call: ``run_search(SearchRequest(...)) -> SearchOutcome`` (see :mod:`.api`)."""

from __future__ import annotations

from .api import FinalOptions, SearchOutcome, SearchRequest, SupernetOptions, run_search

__all__ = ["FinalOptions", "SearchOutcome", "SearchRequest", "SupernetOptions", "run_search"]
