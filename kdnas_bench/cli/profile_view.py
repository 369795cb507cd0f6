"""What ``profile`` and ``devices`` print about a profile dataset: its summary, memory rows and adaptive curve."""

from __future__ import annotations

import json
from typing import Any

from rich.table import Table


def memory_summary(df: Any) -> dict[str, Any] | None:
    ok = df[(df["status"] == "ok") & df["peak_rss_bytes"].notna()]
    if not len(ok):
        return None
    return {"rows": len(ok), "peak_mb_min": float(ok["peak_rss_bytes"].min()) / 2**20,
            "peak_mb_max": float(ok["peak_rss_bytes"].max()) / 2**20, "errors": int(df["memory_error"].notna().sum()),
            "methods": {int(k): int(v) for k, v in ok["memory_method"].value_counts().items()}}



def curve_table(curve: list[dict[str, Any]]) -> Table:
    table = Table(title="adaptive profiling: rows vs accuracy (CV grouped by arch, drift-normalised)")
    for col in ("round", "rows", "archs", "profiling min", "±5 %", "±10 %", "MAPE"):
        table.add_column(col, justify="right")
    for p in curve:
        m = p.get("cv_grouped_by_arch") or {}
        secs = p.get("profiling_seconds")
        table.add_row(str(p["round"]), str(p["rows"]), str(p["archs"]), f"{secs / 60:.1f}" if secs else "-",
                      *(f"{m[k]:.1%}" if m.get(k) is not None else "-" for k in ("within_5pct", "within_10pct", "mape")))
    return table


def dataset_summary(d: Any) -> dict[str, Any]:
    from ..profiling.canary import drift_summary
    df = d.read()
    ok = df[df["status"] == "ok"] if len(df) else df
    env = json.loads(df["env"].iloc[-1]) if len(df) else None
    return {
        "device_id": d.key.device_id,
        "backend": d.key.backend,
        "threads": d.key.threads,
        "rows": len(ok),
        "failed_rows": len(df) - len(ok),
        "noisy_rows": int(ok["noisy"].sum()) if len(ok) else 0,
        "median_cv": float(ok["cv"].median()) if len(ok) else None,
        "first_timestamp": df["timestamp"].min().isoformat() if len(df) else None,
        "last_timestamp": df["timestamp"].max().isoformat() if len(df) else None,
        "environment": env,
        "path": str(d.path),
        "drift": drift_summary(ok) if len(ok) else None,
    }
