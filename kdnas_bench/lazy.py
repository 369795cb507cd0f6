"""The one lazy-import helper: a package's public names, imported from their submodules on first use.

Every package ``__init__`` of kdnas_bench has the same light shape, so that importing a package (or any module in
it: Python runs the package's ``__init__`` first) costs nothing and loads neither torch nor pandas::

    from typing import TYPE_CHECKING

    from ..lazy import lazy_exports

    if TYPE_CHECKING:  # the names' types, for mypy and readers
        from .api import SearchRequest, run_search

    __all__ = ["SearchRequest", "run_search"]
    __getattr__, __dir__ = lazy_exports(__name__, {"SearchRequest": "api", "run_search": "api"})

A module that uses a heavy library in many functions binds it once at the top with :func:`lazy_module` (the
library is imported on the first attribute read) instead of importing it inside each function::

    if TYPE_CHECKING:
        import torch
    else:
        torch = lazy_module("torch")

A plugin registry that lives in a package ``__init__`` (backends, strategies, evaluators) imports its members at
the top instead; those members' modules are light themselves (their heavy libraries are imported inside the
functions that use them, each such import marked ``# noqa: PLC0415  lazy: <why>``).
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, where: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for the package ``package`` (PEP 562): ``where`` maps each public name to the
    submodule that defines it (relative to the package, e.g. ``"api"``). The submodule is imported the first time
    the name is read. A name that is also its submodule's name (``report.compare``, the function of
    ``report/compare.py``) stays the name: importing the submodule does not put the module in its place."""
    table = dict(where)
    shadowed = frozenset(n for n, sub in table.items() if n == sub)
    if shadowed:
        module = sys.modules[package]
        module.__class__ = _KeepsNames
        module.__dict__["_lazy_names"] = shadowed

    def __getattr__(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        # not cached in the package: a read always gives the submodule's current value (a test that replaces
        # ``kdnas_bench.distill.trainer.distill`` is seen through ``kdnas_bench.distill.distill`` too)
        return getattr(importlib.import_module(f".{table[name]}", package), name)

    def __dir__() -> list[str]:
        return sorted({*table, *vars(importlib.import_module(package))})

    return __getattr__, __dir__


class _KeepsNames(types.ModuleType):
    """A package whose exported names include one equal to a submodule's: Python's import sets the package's
    attribute of that name to the submodule once the submodule is imported; here that assignment is ignored, so the
    name keeps resolving through ``__getattr__`` to what the package exports (the submodule stays importable as
    ``package.name`` through ``sys.modules``)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in self.__dict__.get("_lazy_names", ()):
            return
        super().__setattr__(name, value)


class LazyModule(types.ModuleType):
    """A stand-in for the module ``name`` that imports it on the first attribute read (as Optuna's ``_LazyImport``)
    and then reads every attribute from it: ``torch = lazy_module("torch")`` at a module's top costs nothing until a
    function reads ``torch.tensor``. Nothing is copied, so a test that replaces an attribute of the real module is
    seen through the stand-in."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._lazy_name = name

    def __getattr__(self, item: str) -> Any:
        return getattr(importlib.import_module(self._lazy_name), item)


def lazy_module(name: str) -> Any:
    """The module ``name``, imported on first use (see :class:`LazyModule`). Bind it under ``if not TYPE_CHECKING``
    (with a real import for type checkers), so that mypy still sees the module's types."""
    return LazyModule(name)
