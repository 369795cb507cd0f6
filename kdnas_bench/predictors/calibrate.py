"""Predictions at the machine's speed now (torch-free; the canary is timed by :mod:`kdnas_bench.profiling.speed`).

A predictor fitted on canary-normalised rows predicts latency at its *reference* speed: the median canary
time of its profile (``meta.json`` ``drift.reference_canary_ms``). A shared VM's speed moves by ±10-20 %
within minutes, by one common factor for everything that runs in the same seconds, so the latency on this
machine now is the prediction times ``factor = canary_now / reference``. The factor is uncertain (the canary
moves between bursts, and the check that follows runs a little later); its predictive standard deviation in
log space, ``log_sd``, widens the interval: ``[low, high] · factor · exp(∓ z · log_sd)`` with ``z`` the normal
quantile of the interval's level (1.645 for 90 %), i.e. the conformal half-width ``q`` becomes ``q + z·log_sd``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import PredictorError
from ..profiling import device as device_mod
from ..profiling.backends import is_gpu
from ..profiling.measure import this_machine_is
from ..profiling.speed import SPEED_BURSTS, SPEED_SECONDS, canary_now
from .identity import speed_warning, warn_once
from .latency import Prediction

Z_90 = 1.6448536269514722  # two-sided 90 %: the level of the predictors' conformal interval


@dataclass(frozen=True)
class Calibration:
    """``factor``: multiply a reference-speed prediction by it for the latency now (> 1: slower than the
    profile's reference). ``log_sd``: predictive standard deviation of ``log(factor)``."""

    factor: float
    log_sd: float
    canary_ms: float
    reference_ms: float
    bursts: int = 0
    seconds: float = 0.0
    measured_at: str | None = None
    z: float = Z_90
    note: str | None = None  # e.g. the predictor's rows were timed with an older canary protocol

    def __post_init__(self) -> None:
        for name in ("factor", "canary_ms", "reference_ms"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise PredictorError(f"calibration {name} must be positive and finite, got {v}")
        if not (math.isfinite(self.log_sd) and self.log_sd >= 0):
            raise PredictorError(f"calibration log_sd must be >= 0 and finite, got {self.log_sd}")

    @property
    def rel_sd(self) -> float:
        """The factor's uncertainty as a relative standard deviation (what is printed as ±)."""
        return math.expm1(self.log_sd)

    @property
    def widening(self) -> float:
        """How much the interval's log half-width grows: ``z · log_sd``."""
        return self.z * self.log_sd

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rel_sd": self.rel_sd}

    def describe(self) -> str:
        """One line: the factor, its uncertainty and how it was measured."""
        speed = "slower" if self.factor >= 1 else "faster"
        return (f"speed now: ×{self.factor:.3f} ± {self.rel_sd:.1%} (canary {self.canary_ms:.3f} ms now vs "
                f"{self.reference_ms:.3f} ms reference, {self.bursts} bursts over {self.seconds:.1f} s): this machine "
                f"runs {abs(self.factor - 1):.1%} {speed} than the profile's reference; intervals widened by "
                f"×{math.exp(self.widening):.3f}")


def calibration_from_canary(canary_ms: float, burst_ms: Any, reference_ms: float, *, seconds: float = 0.0,
                            measured_at: str | None = None, note: str | None = None, z: float = Z_90) -> Calibration:
    """The calibration from the canary timed now: ``canary_ms`` (the median of the ``burst_ms``, each burst's
    median). ``log_sd`` is the predictive spread of one more burst, ``s · sqrt(1 + 1/n)``, with ``s`` the
    robust standard deviation of the log burst medians (1.4826 × their median absolute deviation), so one
    burst disturbed by another process widens it no more than the median it leaves alone."""
    bursts = np.log(np.asarray(burst_ms, dtype=np.float64))
    n = len(bursts)
    mad = float(np.median(np.abs(bursts - np.median(bursts)))) if n else 0.0
    sd = 1.4826 * mad * math.sqrt(1 + 1 / n) if n >= 2 else 0.0
    return Calibration(canary_ms / reference_ms, sd, canary_ms, reference_ms, n, seconds, measured_at, z, note)


def apply(pred: Prediction, cal: Calibration | None) -> Prediction:
    """``pred`` (at the reference speed) at the calibrated speed, its interval widened by the factor's uncertainty."""
    if cal is None:
        return pred
    w = math.exp(cal.widening)
    f = cal.factor
    return Prediction(pred.low * f / w, pred.mid * f, pred.high * f * w, pred.out_of_range)


def reference_of(meta: dict[str, Any], where: str) -> float:
    """The reference canary time a predictor's predictions are at, or a one-line error when it has none."""
    drift = meta.get("drift") or {}
    ref = drift.get("reference_canary_ms")
    if drift.get("mode") != "canary" or not isinstance(ref, int | float) or not ref > 0:
        raise PredictorError(f"{where} was fitted on raw medians (no canary reference), so it cannot be calibrated "
                             "to the machine's speed now; refit it with --drift canary from a profile with the canary")
    return float(ref)


def speed_band(meta: dict[str, Any]) -> tuple[float, float] | None:
    """The range of canary speeds (relative to the reference) the predictor's profile was measured over."""
    band = (meta.get("machine") or {}).get("speed_band")
    if isinstance(band, list | tuple) and len(band) == 2 and all(isinstance(v, int | float) for v in band):
        return float(band[0]), float(band[1])
    return None


OLD_PROTOCOL_NOTE = ("its profile timed the canary call by call between the rows' calls (the older protocol, in which "
                     "the canary runs on caches the row evicted), so the factor is approximate; re-profile this device "
                     "with the current protocol for an exact one")


def measure_calibration(predictor: Any, *, seconds: float | None = None, bursts: int | None = None,
                        backend_obj: Any = None, check_device: bool = True) -> Calibration:
    """Time the canary on this machine now, with the predictor's backend and threads, and return the
    calibration of its predictions (warns once when the factor lies outside its profile's speed band).
    ``backend_obj``: an already built backend (a scripted one in tests); ``check_device``: refuse to calibrate a
    predictor of another device (its reference is another machine's canary)."""
    key = predictor.key
    where = f"the predictor of {key}"
    reference = reference_of(predictor.meta, where)
    if check_device and not this_machine_is(key.device_id, key.backend):
        here = device_mod.hardware(with_gpu=is_gpu(key.backend)).device_id
        raise PredictorError(f"--speed now times this machine's canary, but the predictor is for {key.device_id} "
                             f"and this machine is {here}; run it on that machine, or predict at the reference speed")
    now = canary_now(key.backend, key.threads, seconds=SPEED_SECONDS if seconds is None else seconds,
                     bursts=SPEED_BURSTS if bursts is None else bursts, backend_obj=backend_obj)
    modes = (predictor.meta.get("drift") or {}).get("interleave")
    note = OLD_PROTOCOL_NOTE if modes is None or "call" in modes else None  # None: fitted before modes were recorded
    cal = calibration_from_canary(now.canary_ms, now.burst_ms, reference, seconds=now.seconds,
                                  measured_at=now.measured_at, note=note)
    warn_once(key, "speed", speed_warning(key, predictor.meta, cal.factor))
    return cal
