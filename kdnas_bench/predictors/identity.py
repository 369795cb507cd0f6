"""Is this the machine a predictor was profiled on? Its CPU fingerprint and canary speed band, stored in
``meta.json`` (``machine``) at fit time, against this machine's — one warning line when they differ.

Predictors fitted before fingerprints existed have no ``machine`` entry: they load and predict as before,
without the check. Torch-free.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import pandas as pd

from ..keys import DatasetKey
from ..profiling import device as device_mod
from ..profiling.backends import BACKENDS
from ..profiling.fingerprint import cpu_fingerprint, differences


class MachineWarning(UserWarning):
    """A predictor used on a machine that does not look like the one it was profiled on."""


_warned: set[tuple[str, str]] = set()


def _profile_hint(key: DatasetKey) -> str:
    return (f"profile this machine into its own store: kdnas-bench profile --backend {key.backend} --threads "
            f"{key.threads} --minutes 8 --store my-profiles && kdnas-bench fit --device {key.device_id} --backend "
            f"{key.backend} --threads {key.threads} --store my-profiles --out my-predictors")


def machine_meta(df: pd.DataFrame, reference_ms: float | None) -> dict[str, Any]:
    """The ``machine`` entry of a predictor's metadata: the CPU fingerprint of its rows (the newest row's;
    ``fingerprints`` counts the distinct ones) and the canary speed band — the 1st to 99th percentile of the
    rows' canary time over the reference."""
    out: dict[str, Any] = {"fingerprint": None, "fingerprints": 0, "speed_band": None}
    if "env" in df and len(df):
        rows = df.sort_values("timestamp") if "timestamp" in df else df
        fps = []
        for text in rows["env"].dropna():
            try:
                fp = json.loads(text).get("fingerprint")
            except (TypeError, ValueError, AttributeError):
                continue
            if isinstance(fp, dict):
                fps.append(fp)
        if fps:
            out["fingerprint"] = fps[-1]
            out["fingerprints"] = len({f.get("id") for f in fps})
    if reference_ms and "canary_ms" in df:
        c = pd.to_numeric(df["canary_ms"], errors="coerce").to_numpy(np.float64)
        c = c[np.isfinite(c) & (c > 0)]
        if len(c):
            out["speed_band"] = [float(np.percentile(c, 1) / reference_ms), float(np.percentile(c, 99) / reference_ms)]
    return out


def fingerprint_warning(key: DatasetKey, meta: dict[str, Any], now: dict[str, Any] | None = None,
                        this_device_id: str | None = None) -> str | None:
    """One line when this machine carries the predictor's device id but another CPU fingerprint (``None``: the
    same CPU, another device — predicting for another machine is fine — or a predictor without one)."""
    stored = (meta.get("machine") or {}).get("fingerprint")
    if not isinstance(stored, dict):
        return None
    if now is None or this_device_id is None:
        spec = BACKENDS.get(key.backend)
        if spec is not None and spec.device != "cpu":
            return None  # a GPU's name and driver are in its id already
        now = cpu_fingerprint() if now is None else now
        this_device_id = device_mod.hardware(with_gpu=False).device_id if this_device_id is None else this_device_id
    if this_device_id != key.device_id:
        return None

    diff = differences(stored, now)
    if not diff:
        return None
    return (f"this machine has device id {key.device_id} but not the CPU its predictor was profiled on "
            f"({'; '.join(diff)}): its predictions may not hold here; {_profile_hint(key)}")


def speed_warning(key: DatasetKey, meta: dict[str, Any], factor: float, margin: float = 0.1) -> str | None:
    """One line when the canary now runs outside the speed band of the predictor's profile (± ``margin``)."""
    band = (meta.get("machine") or {}).get("speed_band")
    if not (isinstance(band, list) and len(band) == 2):
        return None
    lo, hi = float(band[0]) * (1 - margin), float(band[1]) * (1 + margin)
    if lo <= factor <= hi:
        return None
    return (f"the canary runs ×{factor:.2f} the reference of {key.device_id} · {key.backend} · t{key.threads}, outside "
            f"the ×{lo:.2f}–×{hi:.2f} its profile saw: another CPU or a loaded machine; if this is not the "
            f"profiled machine, {_profile_hint(key)}")


def warn_once(key: DatasetKey, kind: str, message: str | None) -> str | None:
    """Emit ``message`` as a :class:`MachineWarning`, once per process for each predictor and kind; returns it
    when emitted."""
    if message is None or (str(key), kind) in _warned:
        return None
    _warned.add((str(key), kind))
    warnings.warn(message, MachineWarning, stacklevel=3)
    return message
