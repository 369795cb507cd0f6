"""The quickstart as a library: a :class:`~.request.QuickstartRequest` (defaults and rules, checked in one place),
its steps as values that derive the command line of each (:mod:`.steps`), and
:func:`~kdnas_bench.quickstart.pipeline.run_quickstart`, which runs them and reports through events. This package
and its request and steps load neither torch nor the training stack; :mod:`.pipeline` does."""

from .request import QuickstartRequest

__all__ = ["QuickstartRequest"]
