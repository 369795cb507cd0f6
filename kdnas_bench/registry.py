"""One registry for every pluggable part: backends, strategies, KD losses, evaluators, executors and predictor
transfer methods are each a :class:`Registry`, a read-only mapping from a name to the part (a spec, a class or a
factory). The name is the one written everywhere: the CLI's choice, ``run.json``, the reports.

A part comes from this package (``register``) or from another installed package, through a Python entry point
in the registry's group (``kdnas_bench.evaluators``, ``kdnas_bench.backends``, …; see :data:`GROUPS`)::

    [project.entry-points."kdnas_bench.evaluators"]
    toy = "kdnas_toy_plugin:ToyEvaluator"

Entry points are discovered when the registry is first listed or asked for a name it does not hold, and a
plugin's module is imported only when the plugin itself is asked for (listing the CLI's choices imports
nothing). A name of this package wins over a plugin's of the same name. An unknown name is one
:class:`UnknownNameError`, which lists the known names, whatever the registry."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from importlib import metadata
from typing import Any, Generic, TypeVar, overload

from .errors import KdnasError

T = TypeVar("T")

# entry-point group of each kind of part (the kind is the word the error messages use)
GROUPS = {"backend": "kdnas_bench.backends", "strategy": "kdnas_bench.strategies", "loss": "kdnas_bench.losses",
          "evaluator": "kdnas_bench.evaluators", "executor": "kdnas_bench.executors",
          "transfer method": "kdnas_bench.transfer_methods"}


class UnknownNameError(KdnasError, KeyError):
    """A name no registry of its kind holds: ``unknown evaluator 'x' (choose from a, b)``. A ``KeyError`` too, so a
    registry is an ordinary mapping (``registry.get(name)`` is None for an unknown name)."""

    def __init__(self, kind: str, name: str, known: tuple[str, ...]) -> None:
        super().__init__(f"unknown {kind} {name!r} (choose from {', '.join(known)})")
        self.kind, self.name, self.known = kind, name, known

    def __str__(self) -> str:  # one line, not KeyError's quoted repr
        return str(self.args[0])


class PluginError(KdnasError):
    """An installed plugin that cannot be loaded or is not what its registry holds."""


class Registry(Mapping[str, T], Generic[T]):
    """Name -> part, for one ``kind`` (``"evaluator"``). ``check(name, part)`` (optional) refuses a part that is
    not of the kind, as a one-line message, when it is registered or loaded from an entry point. ``aliases``
    map old spellings to a name: accepted wherever a name is (``registry[old]``, ``canonical(old)``), never
    listed."""

    def __init__(self, kind: str, check: Callable[[str, Any], str | None] | None = None,
                 group: str | None = None) -> None:
        self.kind = kind
        self.group = group if group is not None else GROUPS[kind]
        self._check = check
        self._parts: dict[str, T] = {}
        self._aliases: dict[str, str] = {}
        self._plugins: dict[str, metadata.EntryPoint] | None = None  # discovered, not yet loaded

    # -- registering ---------------------------------------------------------------------------------
    @overload
    def register(self, name: str, part: T, *, aliases: tuple[str, ...] = ()) -> T: ...

    @overload
    def register(self, name: str, part: None = None, *, aliases: tuple[str, ...] = ()) -> Callable[[T], T]: ...

    def register(self, name: str, part: T | None = None, *, aliases: tuple[str, ...] = ()) -> Any:
        """Add ``part`` under ``name`` (and its old spellings ``aliases``); without ``part``, a decorator."""
        if part is None:
            return lambda p: self.register(name, p, aliases=aliases)
        self._verify(name, part)
        self._parts[name] = part
        for old in aliases:
            self._aliases[old] = name
        return part

    def __setitem__(self, name: str, part: T) -> None:  # registry[name] = part: the same as register
        self.register(name, part)

    def alias(self, old: str, name: str) -> None:
        """Accept ``old`` for ``name`` (a name that changed)."""
        self._aliases[old] = name

    def _verify(self, name: str, part: Any) -> None:
        problem = self._check(name, part) if self._check is not None else None
        if problem:
            raise PluginError(f"{self.kind} {name!r}: {problem}")

    # -- plugins -------------------------------------------------------------------------------------
    def discover(self, *, refresh: bool = False) -> dict[str, metadata.EntryPoint]:
        """The entry points of this registry's group not shadowed by a name of its own (read once; ``refresh``:
        read again, e.g. after installing a plugin in this process)."""
        if self._plugins is None or refresh:
            found = {ep.name: ep for ep in metadata.entry_points(group=self.group)}
            self._plugins = {n: ep for n, ep in found.items() if n not in self._parts}
        return self._plugins

    def _load(self, name: str) -> T:
        ep = self.discover()[name]
        try:
            part = ep.load()
        except Exception as exc:  # any import error of someone else's package: one line, naming it
            raise PluginError(f"{self.kind} {name!r} (entry point {ep.value} in {self.group}) cannot be loaded: "
                              f"{type(exc).__name__}: {exc}") from None
        self._verify(name, part)
        self._parts[name] = part
        self.discover().pop(name, None)
        return part  # type: ignore[no-any-return]

    # -- reading -------------------------------------------------------------------------------------
    def canonical(self, name: str) -> str:
        """``name`` as listed (an alias resolved); an unknown name: :class:`UnknownNameError`."""
        name = self._aliases.get(name, name)
        if name in self._parts or name in self.discover():
            return name
        raise UnknownNameError(self.kind, name, self.names())

    def __getitem__(self, name: str) -> T:
        name = self.canonical(name)
        return self._parts[name] if name in self._parts else self._load(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._aliases.get(name, name) in (*self._parts, *self.discover())

    def names(self) -> tuple[str, ...]:
        """Every name, this package's first (in the order registered), then the installed plugins'."""
        return (*self._parts, *self.discover())

    def registered(self) -> tuple[str, ...]:
        """The names registered in this process (this package's), without looking for installed plugins."""
        return tuple(self._parts)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """``self[name](*args, **kwargs)``: the part built (a strategy, an executor, a backend, a loss)."""
        factory: Any = self[name]
        return factory(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"


__all__ = ["GROUPS", "PluginError", "Registry", "UnknownNameError"]
