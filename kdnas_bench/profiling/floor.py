"""The noise floor of a device (GUIDE §2 rule 10): re-measure stored rows in a new time window.

``kdnas-bench remeasure`` times a random sample of a dataset's ok rows again, now, with the canary
interleaved as the profiler does, and reports how many agree with their stored median within ±5 % /
±10 % — raw, and drift-normalised (config/canary ratio now vs stored). No predictor can be checked
more finely than its own device repeats itself. Optionally it also measures ``fresh`` configs the
dataset does not hold: held-out rows from a *different* time window than the training rows.

The result goes into the dataset's ``_floor.json`` (a side file that ``pd.read_parquet`` skips), which
``kdnas-bench predictors`` shows beside each predictor's held-out accuracy.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from ..errors import KdnasError
from ..space import Arch, SearchSpace, Shape, iter_configs
from .backends import Backend
from .canary import newest_protocol
from .runner import Canary, ProgressFn, Session
from .store import Dataset
from .timing import TimingConfig

FLOOR_FILE = "_floor.json"


def agreement(new: np.ndarray, old: np.ndarray) -> dict[str, float] | None:
    """Share of re-measured values within ±5 % / ±10 % of the stored ones (relative to the stored)."""
    ok = np.isfinite(new) & np.isfinite(old) & (old > 0)
    if not ok.any():
        return None
    rel = new[ok] / old[ok] - 1
    return {"rows": int(ok.sum()), "within_5pct": float(np.mean(np.abs(rel) <= 0.05)),
            "within_10pct": float(np.mean(np.abs(rel) <= 0.10)), "median_abs": float(np.median(np.abs(rel))),
            "median_ratio": float(np.median(new[ok] / old[ok]))}


def _config(r: Any) -> tuple[Arch, Shape]:
    return Arch(int(r.layers), int(r.hidden), int(r.heads), int(r.ffn)), Shape(int(r.batch), int(r.seq))


def remeasure(dataset: Dataset, backend: Backend, *, samples: int, fresh: int = 0, space: SearchSpace | None = None,
              canary: Canary | None = None, seed: int = 0, timing: TimingConfig | None = None,
              progress: ProgressFn | None = None) -> dict[str, Any]:
    """Re-measure ``samples`` random stored ok rows of the newest canary protocol (and measure ``fresh``
    unstored configs of ``space``);
    write and return the ``_floor.json`` document. The stored rows are not touched."""
    if samples < 0 or fresh < 0 or samples + fresh == 0:
        raise KdnasError("remeasure needs --samples N > 0 (and/or --fresh N > 0)")
    stored = dataset.read()
    # the rows a predictor learns from: those of the dataset's newest canary protocol (older ones are superseded)
    stored = newest_protocol(stored[stored["status"] == "ok"].reset_index(drop=True))[0]
    if samples and stored.empty:
        raise KdnasError(f"{dataset.path} holds no ok rows to re-measure; run `kdnas-bench profile` first")
    if fresh and space is None:
        raise KdnasError("measuring fresh configs needs the search space")
    sample = stored.sample(n=min(samples, len(stored)), random_state=seed) if samples else stored.iloc[:0]
    if timing is None and len(stored):
        first = stored.iloc[0]
        timing = TimingConfig(warmup=int(first["warmup"]), min_calls=int(first["min_calls"]),
                              min_seconds=float(first["min_seconds"]), max_seconds=2.0)
    timing = timing or TimingConfig()
    started = datetime.now(UTC)
    with dataset.writer():  # no profiler may write meanwhile; this only reads and writes the side file
        session = Session(_ReadOnly(dataset), backend, timing, canary=canary, progress=progress)
        again = []
        try:
            for r in sample.sort_values(["layers", "hidden", "heads", "ffn"]).itertuples():
                arch, shape = _config(r)
                m = session.measure(arch, shape)
                again.append({"row_id": r.row_id, "stored_ms": r.median_ms, "stored_ratio": r.ratio,
                              "stored_at": str(r.timestamp), "new_ms": m.timing.median_ms if m.timing else None,
                              "new_canary_ms": m.canary_ms, "new_ratio": m.paired.ratio if m.paired else None})
            new_rows: list[dict[str, Any]] = []
            if fresh and space is not None:
                have = set(stored["row_id"])
                tries = 0
                for _, arch, shape in iter_configs(space, sampler="uniform", seed=10_007 + seed, shapes_per_arch=2):
                    tries += 1
                    if len(new_rows) >= fresh or tries > 20 * space.size * len(space.shapes) + 10 * fresh:
                        break
                    if session.row_id(arch, shape) in have:
                        continue
                    have.add(session.row_id(arch, shape))
                    m = session.measure(arch, shape)
                    if m.timing is not None:
                        new_rows.append({**arch.to_dict(), "seq": shape.seq, "batch": shape.batch,
                                         "row_id": session.row_id(arch, shape), "median_ms": m.timing.median_ms,
                                         "canary_ms": m.canary_ms, "ratio": m.paired.ratio if m.paired else None,
                                         "cv": m.timing.cv})
        finally:
            session.close()
        a = pd.DataFrame(again, columns=["row_id", "stored_ms", "stored_ratio", "stored_at", "new_ms", "new_canary_ms",
                                         "new_ratio"])

        def f(col: str) -> np.ndarray:
            return np.asarray(a[col].astype("float64").to_numpy(), dtype=np.float64)

        doc = {
            "kind": "kdnas-bench-noise-floor",
            "device_id": dataset.key.device_id, "backend": dataset.key.backend, "threads": dataset.key.threads,
            "measured_at": started.isoformat(timespec="seconds"),
            "canary": canary.mode if canary else None,
            "seed": seed,
            "raw": agreement(f("new_ms"), f("stored_ms")),
            "normalised": agreement(f("new_ratio"), f("stored_ratio")),
            "stored_rows_from": str(sample["timestamp"].min()) if len(sample) else None,
            "stored_rows_to": str(sample["timestamp"].max()) if len(sample) else None,
            "remeasured": again,
            "fresh": new_rows,
        }
        dataset.write_json(FLOOR_FILE, doc)
    return doc


class _ReadOnly:
    """The dataset as a :class:`Session` sees it, with appends dropped: re-measured rows are results,
    not profile rows (the stored medians stay as they were)."""

    def __init__(self, dataset: Dataset) -> None:
        self._dataset = dataset

    def read(self) -> pd.DataFrame:
        return self._dataset.read()

    def append(self, rows: list[dict[str, Any]]) -> None:
        pass
