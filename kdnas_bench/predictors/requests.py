"""What the predictor verbs are asked to do, typed and frozen: :class:`FitRequest` (``kdnas-bench fit``),
:class:`PredictRequest` (``predict``) and :class:`PredictorsRequest` (``predictors``). Each holds its defaults (the
command line's) and checks its values and cross-field rules in ``__post_init__``, one line each
(:class:`~kdnas_bench.errors.KdnasError`, worded with the option names the command line takes); what needs files
(the output folder, the predictor) is checked by the call that runs it (:mod:`.jobs`). Importing this module loads
neither torch nor pandas."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..defaults import DEFAULTS
from ..errors import KdnasError
from ..profiling.backends import BACKENDS
from ..profiling.requests import check_choice, positive
from ..space import Arch
from .transfer_methods import AUTO, TRANSFER_METHODS

SPEEDS = ("reference", "now")  # :data:`kdnas_bench.predictors.lookup.SPEEDS`, without importing pandas
DRIFTS = ("canary", "none")


@dataclass(frozen=True)
class FitRequest:
    """``kdnas-bench fit``: fit, evaluate and save the latency predictor of one profile dataset.

    ``from_device`` (with ``from_backend``/``from_threads``, default the target's): few-shot transfer from that
    predictor (in ``source_root``, default ``out``) with ``samples`` rows; otherwise ``samples`` is a random
    subset. Rows measured above ``max_load`` are left out of fitting (None: threads + 0.75; ``all_rows``: none
    left out). ``drift="canary"``: latency relative to the canary, at ``reference_ms`` (None: the rows' median
    canary). ``memory_only``: only the memory model of an existing predictor."""

    device_id: str
    backend: str = "torch"
    threads: int = 1
    store: str | None = None
    out: str | None = None
    from_device: str | None = None
    from_backend: str | None = None
    from_threads: int | None = None
    samples: int | None = None
    source_root: str | None = None
    transfer_method: str = "rebase"
    max_load: float | None = None
    all_rows: bool = False
    drift: str = "canary"
    reference_ms: float | None = None
    seed: int = 0
    memory_only: bool = False

    def __post_init__(self) -> None:
        check_choice("--backend", self.backend, list(BACKENDS))
        check_choice("--from-backend", self.from_backend, list(BACKENDS))
        check_choice("--transfer-method", self.transfer_method, [*TRANSFER_METHODS, AUTO])
        check_choice("--drift", self.drift, DRIFTS)
        positive("--threads", self.threads)
        positive("--samples", self.samples)
        positive("--from-threads", self.from_threads)
        positive("--max-load", self.max_load)
        positive("--reference-ms", self.reference_ms)
        if self.reference_ms is not None and self.drift == "none":
            raise KdnasError("--reference-ms goes with --drift canary")
        if self.all_rows and self.max_load is not None:
            raise KdnasError("--all-rows and --max-load exclude each other")
        if self.from_device is None and (self.from_backend or self.from_threads):
            raise KdnasError("--from-backend and --from-threads need --from-device")

    @property
    def load_limit(self) -> float | str | None:
        """The ``max_load`` of :func:`~kdnas_bench.predictors.fitting.fit_and_save`: None (every row), the given
        limit, or "auto"."""
        return None if self.all_rows else (self.max_load if self.max_load is not None else "auto")

    @property
    def source(self) -> tuple[str, str, int] | None:
        """The source predictor's (device, backend, threads) of a transfer, None when fitting from scratch."""
        if self.from_device is None:
            return None
        return self.from_device, self.from_backend or self.backend, self.from_threads or self.threads


@dataclass(frozen=True)
class PredictRequest:
    """``kdnas-bench predict``: latency of configs on a device, without measuring. Either ``archs`` (at ``seq`` and
    ``batch``, default the library's) or ``configs`` (a JSON file of objects with layers, hidden, heads, ffn, seq,
    batch; ``seq``/``batch`` then must be left unset). ``speed="now"``: scaled to this machine's speed now (the canary
    timed for ~3 s; only on the predictor's device)."""

    device_id: str
    backend: str = "torch"
    threads: int = 1
    archs: tuple[Arch, ...] = ()
    seq: int | None = None
    batch: int | None = None
    configs: str | None = None
    predictors: str | None = None
    speed: str = "reference"

    def __post_init__(self) -> None:
        check_choice("--backend", self.backend, list(BACKENDS))
        check_choice("--speed", self.speed, SPEEDS)
        positive("--threads", self.threads)
        positive("--seq", self.seq)
        positive("--batch", self.batch)
        if bool(self.archs) == (self.configs is not None):
            raise KdnasError("give either --arch L,H,A,FFN (with --seq and --batch), or --configs FILE.json")
        if self.configs is not None and (self.seq is not None or self.batch is not None):
            raise KdnasError("--seq and --batch go with --arch; put them in the configs file instead")

    def arch_configs(self) -> list[dict[str, Any]]:
        """The configs of ``archs``: each at ``seq`` and ``batch`` (default the library's)."""
        seq = DEFAULTS.seq if self.seq is None else self.seq
        batch = DEFAULTS.batch if self.batch is None else self.batch
        return [{**a.to_dict(), "seq": seq, "batch": batch} for a in self.archs]


@dataclass(frozen=True)
class PredictorsRequest:
    """``kdnas-bench predictors``: the fitted predictors in ``predictors`` (None: the default folder), with the
    noise floors of their devices from ``store`` (None: the default profile store)."""

    predictors: str | None = None
    store: str | None = None
