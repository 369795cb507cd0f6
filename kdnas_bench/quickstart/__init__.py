"""The quickstart as a library: a :class:`~.request.QuickstartRequest` (defaults and rules, checked in one place),
its steps as values that derive the command line of each (:mod:`.steps`), and
:func:`~kdnas_bench.quickstart.pipeline.run_quickstart`, which runs them and reports through events. This package
and its request and steps load neither torch nor the training stack; :mod:`.pipeline` does. Names are imported
on first use (see :mod:`kdnas_bench.lazy`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:
    from .request import QuickstartRequest

__all__ = ["QuickstartRequest"]
__getattr__, __dir__ = lazy_exports(__name__, {"QuickstartRequest": "request"})
