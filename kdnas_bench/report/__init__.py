"""Compare students across devices and tell the story of a search run: tables, Markdown/HTML, PNG plots."""

from .compare import CompareResult, CompareRow, compare
from .run_report import RunStory, load_run
from .students import NAMED, Student, resolve_students

__all__ = ["NAMED", "CompareResult", "CompareRow", "RunStory", "Student", "compare", "load_run", "resolve_students"]
