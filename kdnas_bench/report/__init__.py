"""Compare students across devices and tell the story of a search run: tables, Markdown/HTML, PNG plots.

Names are imported on first use (see :mod:`kdnas_bench.lazy`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:
    from .compare import CompareResult, CompareRow, compare
    from .run_report import RunStory, load_run
    from .students import NAMED, Student, resolve_students

__all__ = ["NAMED", "CompareResult", "CompareRow", "RunStory", "Student", "compare", "load_run", "resolve_students"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "CompareResult": "compare", "CompareRow": "compare", "compare": "compare",
    "RunStory": "run_report", "load_run": "run_report",
    "NAMED": "students", "Student": "students", "resolve_students": "students",
})
