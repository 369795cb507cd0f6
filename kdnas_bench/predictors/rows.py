"""The profile rows a predictor is fitted on: a dataset's ``ok`` rows, and the quiet ones among them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import PredictorError
from ..paths import default_store

# A row measured while other processes loaded the machine is slower than the same config on a quiet one
# (on the 2-core profiling VM: 5-8 % slower at load average 2-3.5 with one profiling thread). By default
# a predictor is fitted and evaluated on the rows whose load average before *and* after measuring was
# at most threads + LOAD_MARGIN, i.e. the profiler alone; the other rows are evaluated separately.
LOAD_MARGIN = 0.75
MIN_QUIET_ROWS = 100


def auto_load_limit(rows: pd.DataFrame, threads: int) -> float:
    """The default ``max_load``: threads + LOAD_MARGIN on CPU backends. A GPU backend computes on the GPU
    and needs about one host core to launch kernels (its own load average is 1-3 on a 16-core host), so
    its rows count as loaded only when the host's cores are all busy: cores - 1 (never below the CPU rule)."""
    limit = threads + LOAD_MARGIN
    if len(rows) and "env" in rows:
        try:
            env = json.loads(str(rows["env"].iloc[0]))
        except ValueError:
            return limit
        if env.get("gpu_name") and int(env.get("cores") or 0) > 1:
            limit = max(limit, float(env["cores"]) - 1.0)
    return limit


def load_rows(device_id: str, backend: str, threads: int, store: Path | None = None) -> pd.DataFrame:
    """The ``ok`` rows of one dataset (a PredictorError listing the datasets if there is none)."""
    from ..profiling.store import ProfileStore  # noqa: PLC0415  lazy: pyarrow (via profiling.store)

    ps = ProfileStore(store or default_store())
    found = ps.find(device_id, backend, threads)
    if not found:
        have = ", ".join(f"{d.key.device_id} {d.key.backend} t{d.key.threads}" for d in ps.datasets()) or "none"
        raise PredictorError(f"no profile dataset for {device_id} {backend} t{threads} in {ps.root} (have: {have})")
    df = found[0].read()
    df = df[(df["status"] == "ok") & np.isfinite(df["median_ms"]) & (df["median_ms"] > 0)]
    return df.reset_index(drop=True)


def quiet_mask(df: pd.DataFrame, max_load: float | None) -> np.ndarray:
    """Rows measured with a load average (before and after) of at most ``max_load`` (``None``: all rows)."""
    if max_load is None or "load_before" not in df:
        return np.ones(len(df), dtype=bool)
    load = np.fmax(df["load_before"].to_numpy(np.float64), df["load_after"].to_numpy(np.float64))
    return ~(load > max_load)  # a row without a load reading counts as quiet


def select_rows(all_rows: pd.DataFrame, threads: int, max_load: float | str | None = "auto"
                ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(rows to fit on, loaded rows left out, a summary for the metadata). ``max_load="auto"`` is
    :func:`auto_load_limit`; ``None`` keeps every row; with fewer than 100 quiet rows, every row is kept."""
    limit = auto_load_limit(all_rows, threads) if max_load == "auto" else (None if max_load is None else float(max_load))
    quiet = quiet_mask(all_rows, limit)
    found = int(quiet.sum())
    rule = "load average before and after the row <= max_load" if limit is not None else "all rows (as asked)"
    if limit is not None and found < min(MIN_QUIET_ROWS, len(all_rows)):
        rule = f"all rows: only {found} were measured at load average <= {limit:.2f}, fewer than {MIN_QUIET_ROWS}"
        limit, quiet = None, np.ones(len(all_rows), dtype=bool)
    selection = {"max_load": limit, "rows_total": len(all_rows), "rows_quiet": int(quiet.sum()),
                 "rows_loaded": int((~quiet).sum()), "quiet_rows_found": found, "rule": rule}
    return all_rows[quiet].reset_index(drop=True), all_rows[~quiet].reset_index(drop=True), selection
