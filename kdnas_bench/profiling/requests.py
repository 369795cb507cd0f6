"""What the measuring verbs are asked to do, typed and frozen: :class:`ProfileRequest` (``kdnas-bench profile``),
:class:`MeasureRequest` (``measure``), :class:`DevicesRequest` (``devices``), :class:`SpaceShowRequest`
(``space show``) and :class:`RemeasureRequest` (``remeasure``). Each holds its defaults (the command line's) and
checks its own values and cross-field rules in ``__post_init__``, one line each
(:class:`~kdnas_bench.errors.KdnasError`, worded with the option names the command line takes). The checks that need
more than the request (the space file, the store, the backend) run in the library call that takes it, in the order
the command line has always given them.

The building blocks shared by those calls live here too: the space (:func:`load_space`), the timing protocol
(:func:`make_timing`), a backend built for a space's models (:func:`build_backend`) and the ``--memory`` probe
(:func:`memory_probe`). Importing this module loads neither torch nor pandas.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..defaults import DEFAULTS
from ..errors import KdnasError
from ..paths import default_space
from ..space import SAMPLERS, Arch, SearchSpace, Shape
from .backends import BACKENDS, make_backend
from .memory import MemoryProbe, unsupported
from .timing import INTERLEAVE_MODES, TimingConfig

EventFn = Callable[[str, dict[str, Any]], None]  # on_event(kind, data), as :func:`kdnas_bench.search.run_search`
CANARY_MODES = (*INTERLEAVE_MODES, "none")
MAX_SEQ = 512  # BERT's positions


def no_events(kind: str, data: dict[str, Any]) -> None:
    """The ``on_event`` of a call given none."""


def positive(name: str, value: int | float | None) -> None:
    """``value`` (None: not given) is positive, else ``<name> must be positive, got <value>``."""
    if value is not None and value <= 0:
        raise KdnasError(f"{name} must be positive, got {value}")


def check_choice(name: str, value: str | None, allowed: tuple[str, ...] | list[str]) -> None:
    if value is not None and value not in allowed:
        raise KdnasError(f"unknown {name} '{value}' (choose from {', '.join(allowed)})")


def load_space(path: str | Path | None) -> SearchSpace:
    """The search space of ``path`` (None: the default, search/spaces/bert.toml)."""
    return SearchSpace.load(path or default_space())


@dataclass(frozen=True)
class TimingOptions:
    """The timing protocol of a measurement (``--warmup``, ``--min-calls``, ``--min-seconds``, ``--max-seconds``)."""

    warmup: int = 5
    min_calls: int = 10
    min_seconds: float = 0.3
    max_seconds: float = 2.0

    def config(self) -> TimingConfig:
        return make_timing(self.warmup, self.min_calls, self.min_seconds, self.max_seconds)


def make_timing(warmup: int, min_calls: int, min_seconds: float, max_seconds: float) -> TimingConfig:
    """The :class:`TimingConfig` of the timing options (at most ``max(1000, min_calls)`` calls), or one line."""
    try:
        return TimingConfig(warmup=warmup, min_calls=min_calls, min_seconds=min_seconds, max_seconds=max_seconds,
                            max_calls=max(1000, min_calls))
    except ValueError as exc:
        raise KdnasError(f"invalid timing options: {exc}") from None


def build_backend(name: str, threads: int, onnx_cache: str | Path | None = None, space: SearchSpace | None = None) -> Any:
    """A backend; with ``space``, its models get the space's ``[model]`` vocabulary size and label count."""
    opts: dict[str, Any] = {}
    if onnx_cache and BACKENDS[name].onnx:
        opts["cache_dir"] = Path(onnx_cache)
    if space is not None:
        opts |= {"vocab_size": space.vocab_size, "num_labels": space.num_labels}
    return make_backend(name, threads, **opts)


def memory_probe(name: str, threads: int, onnx_cache: str | Path | None, wanted: bool | None,
                 space: SearchSpace | None = None) -> Any:
    """A :class:`~kdnas_bench.profiling.memory.MemoryProbe` for ``--memory`` (``wanted`` None: on for CPU backends
    where Linux's VmHWM can be reset; True: on, or one line saying why it cannot be; False: none)."""
    if wanted is False:
        return None
    reason = unsupported() if BACKENDS[name].device == "cpu" else f"--memory measures host memory; {name} runs on a GPU"
    if reason:
        if wanted:
            raise KdnasError(f"--memory: {reason}")
        return None
    opts: dict[str, Any] = {"cache_dir": onnx_cache} if onnx_cache and BACKENDS[name].onnx else {}
    if space is not None:  # the same model the profiler times (the space's vocabulary and labels)
        opts |= {"vocab_size": space.vocab_size, "num_labels": space.num_labels}
    return MemoryProbe(name, threads, opts)


def _check_backend(backend: str, threads: int) -> None:
    check_choice("--backend", backend, list(BACKENDS))
    positive("--threads", threads)


@dataclass(frozen=True)
class SpaceShowRequest:
    """``kdnas-bench space show``: a search space and its size (``space`` None: the default space)."""

    space: str | None = None


@dataclass(frozen=True)
class DevicesRequest:
    """``kdnas-bench devices``: the profiled devices and backends of a store (None: the default store)."""

    store: str | None = None


@dataclass(frozen=True)
class ProfileRequest:
    """``kdnas-bench profile``: measure sampled students of ``space`` into the profile store.

    Without ``minutes`` and ``target`` the campaign runs until the store holds ``samples`` ok rows (default 100);
    with either, profiling is adaptive (rounds of refit, grouped CV and the configs the predictor is least sure
    of), ``samples`` then a cap. ``seqs``/``batches`` restrict the space's shapes; ``canary`` is how the canary is
    interleaved ("none": not at all); ``memory`` None: on for CPU backends on Linux."""

    space: str | None = None
    backend: str = "torch"
    threads: int = 1
    samples: int | None = None
    minutes: float | None = None
    target: float | None = None
    canary: str = "burst"
    seqs: tuple[int, ...] | None = None
    batches: tuple[int, ...] | None = None
    store: str | None = None
    seed: int = 0
    sampler: str = "sobol"
    shapes_per_arch: int = 4
    onnx_cache: str | None = None
    memory: bool | None = None
    timing: TimingOptions = TimingOptions()

    def __post_init__(self) -> None:
        check_choice("--backend", self.backend, list(BACKENDS))
        positive("--threads", self.threads)
        positive("--samples", self.samples)
        positive("--minutes", self.minutes)
        positive("--target", self.target)
        check_choice("--canary", self.canary, CANARY_MODES)
        check_choice("--sampler", self.sampler, SAMPLERS)

    @property
    def adaptive(self) -> bool:
        return self.minutes is not None or self.target is not None

    @property
    def rows_wanted(self) -> int:
        """The rows a plain campaign runs until (``samples``, default 100); adaptive: ``samples`` or 0 (no cap)."""
        return (self.samples or 0) if self.adaptive else (self.samples or 100)

    def mode_text(self) -> str:
        """How the run stops, as the profile's header line says it."""
        if not self.adaptive:
            return f"until {self.rows_wanted} rows"
        minutes, target = self.minutes, self.target
        return (f"adaptive ({'≤ ' + format(minutes, 'g') + ' min' if minutes else ''}"
                f"{', ' if minutes and target else ''}{'target ' + format(target, '.0%') if target else ''})")


@dataclass(frozen=True)
class MeasureRequest:
    """``kdnas-bench measure``: one student at one shape on this device, now. ``speed_factor``: time the canary in
    bursts with it, for the speed factor against this device's predictor in ``predictors`` (None: the default
    folder); ``memory``: also its peak resident memory (a fresh child process)."""

    arch: Arch
    seq: int = DEFAULTS.seq
    batch: int = DEFAULTS.batch
    backend: str = "torch"
    threads: int = 1
    onnx_cache: str | None = None
    memory: bool = False
    speed_factor: bool = True
    predictors: str | None = None
    timing: TimingOptions = TimingOptions()

    def __post_init__(self) -> None:
        if not isinstance(self.arch, Arch):
            raise KdnasError(f"--arch must be an Arch, got {self.arch!r}")
        positive("--seq", self.seq)
        positive("--batch", self.batch)
        _check_backend(self.backend, self.threads)
        if self.seq > MAX_SEQ:
            raise KdnasError(f"--seq {self.seq} exceeds BERT's {MAX_SEQ} positions")

    @property
    def shape(self) -> Shape:
        return Shape(self.batch, self.seq)


@dataclass(frozen=True)
class RemeasureRequest:
    """``kdnas-bench remeasure``: stored rows of this device measured again, now (the device's noise floor).

    ``samples`` stored rows (default 50) and ``fresh`` configs the profile does not hold (None: 0), the canary as
    ``canary`` (None: as the stored rows were), rows picked with ``seed`` (None: 0). With ``memory_only``, no
    timing: the memory of ok rows measured with an older method (with ``include_unmeasured`` also those without
    memory) is measured again; ``fresh``, ``canary`` and ``seed`` are latency settings and must be left unset."""

    backend: str = "torch"
    threads: int = 1
    samples: int | None = None
    fresh: int | None = None
    canary: str | None = None
    space: str | None = None
    store: str | None = None
    seed: int | None = None
    onnx_cache: str | None = None
    memory_only: bool = False
    include_unmeasured: bool = False

    def __post_init__(self) -> None:
        _check_backend(self.backend, self.threads)
        check_choice("--canary", self.canary, CANARY_MODES)
        if self.memory_only:
            for name in ("fresh", "canary", "seed"):
                if getattr(self, name) is not None:
                    raise KdnasError(f"--{name} measures latency; it does not go with --memory-only")
            positive("--samples", self.samples)
            return
        if self.include_unmeasured:
            raise KdnasError("--include-unmeasured goes with --memory-only")
        if self.stored_rows < 0 or self.fresh_rows < 0 or self.stored_rows + self.fresh_rows == 0:
            raise KdnasError("--samples and --fresh must be >= 0, and one of them positive")

    @property
    def stored_rows(self) -> int:
        return 50 if self.samples is None else self.samples

    @property
    def fresh_rows(self) -> int:
        return self.fresh or 0

    @property
    def pick_seed(self) -> int:
        return self.seed or 0
