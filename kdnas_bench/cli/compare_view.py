"""What ``kdnas-bench compare`` prints and writes: the students × (device, backend) view first, the deployment
matrix per budget, the per-predictor detail behind ``--detail``; measuring with progress and an ETA."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..progress import LineProgress
from ..report import plots
from ..report.deployment import matrix_png
from ..report.render import compare_tables, matrix_sections, metric_cells, pivot, pivot_note
from .common import console, err_console
from .tables import KEY, Col, fit_table, pivot_tables


@contextmanager
def measuring(enabled: bool) -> Iterator[Callable[[int, int, str, str], None] | None]:
    """``on_measure`` for :func:`~kdnas_bench.report.compare.compare`: a bar with an ETA in a terminal, a line
    every ~15 s in a log (stderr, so ``--json`` stays clean)."""
    if not enabled:
        yield None
        return
    bar: Any = (Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                         TextColumn("ETA"), TimeRemainingColumn(), console=err_console, transient=True)
                if err_console.is_terminal else LineProgress("measuring"))
    with bar:
        task = bar.add_task("measuring", total=None)

        def on_measure(done: int, total: int, name: str, label: str) -> None:
            bar.update(task, completed=done, total=total, description=f"measuring {name} on {label}")

        yield on_measure


def compare_pngs(result: Any, folder: Path, store: Path | None) -> list[Path]:
    extra = []
    if result.matrix and result.matrix_budget is not None:
        budgets, mb = result.matrix_budget
        for b in budgets:
            name = "deployment-matrix.png" if len(budgets) == 1 else f"deployment-matrix-{b:g}ms.png"
            extra.append(matrix_png([c for c in result.matrix if c.budget_ms == b], folder, budget_ms=b,
                                    budget_mb=mb, shape=result.shape, name=name))
    return [*extra, *plots.pareto_pngs(result, folder), *plots.pred_vs_measured_pngs(result, folder, store),
            *plots.seq_pngs(result, folder)]


MATRIX_PRIORITY = {"device": KEY, "backend": KEY, "threads": KEY, "budget ms": KEY, "student": 1, "chosen by": 5,
                   "predicted ms (upper)": 2, "measured ms": 3, "metric": 4, "arch": 6, "peak MiB predicted": 7,
                   "peak MiB measured": 8, "feasible": 9}
DETAIL_PRIORITY = {"student": KEY, "arch": 5, "predicted ms [interval]": 1, "measured ms": 2, "params": 4,
                   "FLOPs": 6, "metric": 3}


def _fitted(table: Any, priorities: dict[str, int], title: str) -> Any:
    cols = [Col(h, priorities.get(h, 4)) for h in table.headers]
    return fit_table(title, cols, table.rows, console.width)


def print_compare(result: Any, images: list[Path], detail: bool) -> None:
    students, rows = pivot(result)
    metrics = metric_cells(result)
    names = sorted({s.metric_name for s in result.students if s.metric_name})
    footer = (f"task metric ({', '.join(names) or 'metric'})", metrics) if metrics is not None else None
    measured = any(p.local for p in result.predictors)
    hint = "" if measured else "; --measure also times them on this machine"
    for table in pivot_tables("latency across devices", students, rows, console.width, footer=footer,
                              caption=f"{pivot_note(result)}{hint}"):
        console.print(table)
    for sec in matrix_sections(result):
        console.print(_fitted(sec.tables[0], MATRIX_PRIORITY, sec.title.lower()))
    if detail:
        for t, p in zip(compare_tables(result), result.predictors, strict=True):
            console.print(p.label, style="bold", highlight=False, markup=False, soft_wrap=True)
            console.print(_fitted(t, {**DETAIL_PRIORITY, t.headers[4]: 2}, ""))
        pcols = [Col("predictor", KEY), Col("held-out ±10 %", 1, "right"), Col("fit", 2)]
        console.print(fit_table("predictors", pcols, [[p.label, "-" if p.within_10pct is None else
                                                       f"{100 * p.within_10pct:.1f} %", "transfer" if p.transfer
                                                       else "scratch"] for p in result.predictors], console.width))
    else:
        console.print("per-predictor detail (interval, speedup, params, FLOPs): --detail", highlight=False,
                      markup=False)
    for path in images:
        console.print(f"plot: {path}", highlight=False, markup=False, soft_wrap=True)
