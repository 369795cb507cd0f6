"""What ``profile``, ``devices`` and ``space show`` print: the profile's header and progress, its summary, memory rows
and adaptive curve, the devices table and the space table."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ..progress import LineProgress
from .common import console
from .tables import KEY, Col, fit_table


def memory_summary(df: Any) -> dict[str, Any] | None:
    """The memory columns of a dataset's ok rows (:func:`kdnas_bench.profiling.jobs.memory_summary`)."""
    from ..profiling.jobs import memory_summary as summary  # noqa: PLC0415  lazy: pandas

    return summary(df)


def dataset_summary(d: Any) -> dict[str, Any]:
    """One profile dataset as ``devices --json`` lists it (:func:`kdnas_bench.profiling.jobs.dataset_summary`)."""
    from ..profiling.jobs import dataset_summary as summary  # noqa: PLC0415  lazy: pandas

    return summary(d)


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


def space_table(space: Any, info: dict[str, Any]) -> Table:
    """``space show``: one row per dimension (a long list shortened to its ends), then the head and token rules."""
    table = Table(title=Text(f"search space '{space.name}' ({space.source})"))
    table.add_column("dimension")
    table.add_column("values")
    for key in ("layers", "hidden", "heads", "ffn", "seq", "batch"):
        vals = info[key]
        shown = ", ".join(map(str, vals)) if len(vals) <= 12 else f"{vals[0]} … {vals[-1]} ({len(vals)} values)"
        table.add_row(key, shown)
    table.add_row("min head dim", str(space.min_head_dim))
    if space.head_dim:
        table.add_row("head dim", f"{space.head_dim} (only archs of this head size)")
    table.add_row("max tokens", f"{space.max_tokens} per forward (batch × seq)")
    return table


def devices_table(entries: list[dict[str, Any]], width: int) -> Table:
    cols = [Col("device_id", KEY), Col("backend", KEY), Col("threads", KEY, "right"), Col("rows", 1, "right"),
            Col("failed", 4, "right"), Col("median CV", 2, "right"), Col("canary CV · flagged", 5),
            Col("first", 6), Col("last", 3), Col("cpu / gpu", 7)]
    rows = []
    for e in entries:
        env = e["environment"] or {}
        rows.append([e["device_id"], e["backend"], str(e["threads"]), str(e["rows"]), str(e["failed_rows"]),
                     f"{e['median_cv']:.2%}" if e["median_cv"] is not None else "-",
                     f"{e['drift']['canary_cv']:.1%} · {e['drift']['flagged_rows']}" if e["drift"] else "no canary",
                     str(e["first_timestamp"])[:10], str(e["last_timestamp"])[:10],
                     str(env.get("gpu_name") or env.get("cpu_model", ""))])
    return fit_table("profiled devices", cols, rows, width)


def _noise(res: Any, m: Any) -> str:
    """The progress bar's field: the last row's time, the run's median CV, the machine's speed and the CV curve."""
    last = ""
    if m is not None:
        last = (f"{m.arch} {m.shape.batch}x{m.shape.seq}: "
                + (f"{m.timing.median_ms:.2f} ms" if m.timing else "[red]failed[/]"))
    noise = f"CV {res.median_cv:.1%}" if res.cvs else ""
    drift = res.canary_drift
    if drift is not None:
        colour = "red" if abs(drift - 1) > 0.1 else ("yellow" if abs(drift - 1) > 0.05 else "green")
        noise += f" · speed [{colour}]{1 / drift:.2f}×[/] · flagged {res.flagged}"
    if res.curve and (res.curve[-1].get("cv_grouped_by_arch") or {}).get("within_10pct") is not None:
        noise += f" · CV ±10 % {res.curve[-1]['cv_grouped_by_arch']['within_10pct']:.0%}"
    return f"{noise} {last}"


class ProfileProgress:
    """The ``on_event`` of :func:`~kdnas_bench.predictors.profile_jobs.run_profile` on ``out``: the header lines on
    ``start``, then a bar (a line every ~15 s in a log) held open in ``stack`` until the run returns or fails."""

    def __init__(self, out: Console, stack: ExitStack) -> None:
        self.out = out
        self.stack = stack
        self.bar: Any = None
        self.task: Any = None

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "start":
            self._start(data)
        elif kind == "progress" and self.bar is not None:
            self.bar.update(self.task, completed=data["result"].rows_after,
                            noise=_noise(data["result"], data["measurement"]))

    def _start(self, d: dict[str, Any]) -> None:
        env, out = d["env"], self.out
        out.print(f"device [bold]{env['device_id']}[/] ({env['cpu_model']}, {env['cores']} cores"
                  f"{', ' + env['gpu_name'] if env['gpu_name'] else ''}) · backend {d['backend']} · "
                  f"{d['threads']} thread(s)")
        out.print(f"store {d['store']} · space '{d['space']}' ({d['space_size']:,} archs) · sampler {d['sampler']}, "
                  f"seed {d['seed']} · {d['mode']} · canary {d['canary']} · memory {'on' if d['memory'] else 'off'}",
                  markup=False)
        bar: Any = (Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                             MofNCompleteColumn(), TextColumn("{task.fields[noise]}"), TimeElapsedColumn(),
                             console=out, transient=False)
                    if out.is_terminal else LineProgress("profiling"))  # a log: a line every ~15 s
        self.bar = self.stack.enter_context(bar)
        self.task = self.bar.add_task("profiling", total=d["total"] or None, noise="")


def print_profile_summary(result: Any) -> None:
    """The summary table of ``profile``, then its drift, memory and (adaptive) curve lines."""
    summary, res = result.summary, result.campaign
    cols = [Col("device", KEY), Col("backend", KEY), Col("threads", KEY, "right"), Col("rows", 1, "right"),
            Col("measured now", 2, "right"), Col("failed", 4, "right"), Col("noisy", 5, "right"),
            Col("median CV", 3, "right"), Col("rows/min", 6, "right")]
    console.print(fit_table("profile summary", cols, [[
        summary["device_id"], summary["backend"], str(summary["threads"]), f"{res.rows_before} → {res.rows_after}",
        str(res.measured), str(res.failed), str(res.noisy), f"{res.median_cv:.2%}" if res.cvs else "-",
        f"{summary['rows_per_minute']:.1f}"]], console.width))
    drift = summary["drift"]
    if drift is not None:
        lo, hi = drift["canary_p5_p95"]
        console.print(f"drift: canary {drift['reference_canary_ms']:.2f} ms median over {drift['rows']} rows, "
                      f"CV {drift['canary_cv']:.1%}, 5-95 % range {lo:.2f}–{hi:.2f}× of it; "
                      f"{drift['flagged_rows']} row(s) flagged ({drift['flag_rule']}); predictors learn latency "
                      "relative to the canary")
    if summary["memory"]:
        m = summary["memory"]
        console.print(f"memory: {m['rows']} rows measured in fresh processes, peak {m['peak_mb_min']:.1f}–"
                      f"{m['peak_mb_max']:.1f} MiB over the bare runtime; {m['errors']} error(s); methods "
                      f"{m['methods']}")
    if result.adaptive and res.curve:
        console.print(curve_table(res.curve))
        console.print(f"stopped by: {res.stopped_by}")
    if res.exhausted:
        console.print("[yellow]the space has no unmeasured configs left; the store holds fewer rows than asked[/]")
