"""Verbs that show results: ``compare`` (students across devices) and ``report`` (a search run's story).

Each parses its options into a request, calls the library (:func:`~kdnas_bench.report.comparing.run_compare`,
:func:`~kdnas_bench.report.outputs.run_report`), which also writes the HTML, Markdown and PNG files asked for, and
renders the result as rich tables, or JSON on request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table as RichTable
from rich.text import Text

from ..report.compare import CompareResult, speed_notes
from ..report.comparing import CompareRequest, run_compare
from ..report.outputs import Outputs, ReportRequest, RunReport, run_report, write_outputs
from ..report.render import compare_document
from . import options
from .common import console, err_console, print_json
from .compare_view import compare_pngs, measuring, print_compare
from .options import (
    batch_option,
    budget_mb_option,
    budget_ms_option,
    deprecated_alias,
    json_option,
    list_items,
    predictors_option,
    seq_option,
    store_option,
)
from .predict_cmds import speed_option
from .tables import KEY, Col, fit_table, table_or_stacked


def rich_table(table: Any, title: str) -> RichTable:
    out = RichTable(title=Text(table.caption or title))  # Text: names and paths in cells print verbatim
    for h in table.headers:
        out.add_column(Text(h), overflow="fold")
    for row in table.rows:
        out.add_row(*(Text(str(c)) for c in row))
    return out


def _semicolons(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--students`` separated by ';' (the old separator) still works, with a deprecation note."""
    if value and ";" in value:
        options.deprecation_note(f"';' in --students {options.DEPRECATED}; separate students with ',' (an arch is four "
                                 "numbers L,H,A,FFN)")
    return value


@click.command("compare")
@click.option("--students", callback=_semicolons,
              help="Comma-separated students: names (bert-base, distilbert, minilm-l6, minilm-l12, "
              "tinybert-4l, tinybert-6l, bert-medium/small/mini/tiny), archs as L,H,A,FFN or 4L-312H-12A-1200F, "
              "search run folders or saved model folders. Default: the six well-known students.")
@click.option("--device", "devices", help="Device id(s), comma-separated (default: every device with a fitted "
              "predictor).")
@deprecated_alias("--devices", "--device", "devices")
@seq_option()
@batch_option()
@click.option("--reference", help="Student the speedups are against (default: the run's teacher, else the first).")
@click.option("--measure/--no-measure", default=False, show_default=True,
              help="Also time the students on this machine where a predictor is for it (CPU backends; minutes, "
              "with progress).")
@click.option("--detail", is_flag=True, help="Also print one table per predictor: interval, speedup, params, "
              "FLOPs, metric; and the predictors' accuracy.")
@predictors_option()
@store_option("Profile store for the predicted-vs-measured plots (default: the checkout's profiles/).")
@budget_ms_option("Deployment matrix: for each device × backend and each budget (ms, comma-separated), the best "
                  "student whose predicted upper latency is within it.")
@budget_mb_option("Deployment matrix: also a peak-memory budget (MiB, predicted).")
@speed_option
@json_option("Print the rows (and the deployment matrix) as JSON.")
@click.option("--html", "html_path", type=click.Path(), help="Write a self-contained HTML report here.")
@click.option("--md", "md_path", type=click.Path(), help="Write a Markdown report here.")
@click.option("--png", type=click.Path(), help="Write the PNG plots into this folder.")
def compare_cmd(students: str | None, devices: str | None, seq: int, batch: int, reference: str | None,
                measure: bool, detail: bool, predictors_dir: str | None, store: str | None,
                budget_ms: tuple[float, ...] | None, budget_mb: float | None, speed: str, as_json: bool,
                html_path: str | None, md_path: str | None, png: str | None) -> None:
    """Compare students across devices: one view of students × (device, backend) with predicted latency
    (and, with --measure, latency measured on this machine); --budget-ms adds the deployment matrix,
    --detail the per-predictor tables (interval, speedup, params, FLOPs, task metric).

    \b
    Examples:
      kdnas-bench compare --students bert-base,minilm-l6,tinybert-4l
      kdnas-bench compare --students tinybert-4l,4,256,4,1024 --budget-ms 5,10 --html r.html --png out/
    """
    req = CompareRequest(students, tuple(list_items(devices) or ()) or None, seq, batch, reference, measure,
                         predictors_dir, speed, None if budget_ms is None else tuple(budget_ms), budget_mb)
    outputs = Outputs(html_path, md_path, png)
    with measuring(measure) as on_measure:
        result = run_compare(req, on_measure=on_measure, on_memory=None if as_json else _measuring_memory)
    for line in speed_notes(result) if speed == "now" else ():
        err_console.print(line, highlight=False, markup=False)
    images = outputs.write(lambda imgs: compare_document(result, imgs),
                           lambda folder: compare_pngs(result, folder, Path(store) if store else None))
    if as_json:
        print_json(_compare_json(result))
        return
    print_compare(result, images, detail)
    _written(outputs)


def _measuring_memory(arch: Any, backend: str) -> None:
    err_console.print(f"measuring peak memory of {arch} on {backend} ...", highlight=False, markup=False)


def _compare_json(result: CompareResult) -> Any:
    rows = [r.to_dict() for r in result.rows]
    return {"rows": rows, "matrix": [c.to_dict() for c in result.matrix]} if result.matrix else rows


def _written(outputs: Outputs) -> None:
    for written, name in ((outputs.html, "HTML"), (outputs.md, "Markdown")):
        if written:
            console.print(f"{name} report: {written}", highlight=False, markup=False)


@click.command("report")
@click.argument("run_dir", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the story as JSON.")
@click.option("--html", "html_path", type=click.Path(), help="Write a self-contained HTML report here.")
@click.option("--md", "md_path", type=click.Path(), help="Write a Markdown report here.")
@click.option("--png", type=click.Path(), help="Write the PNG plots into this folder.")
def report_cmd(run_dir: str, as_json: bool, html_path: str | None, md_path: str | None, png: str | None) -> None:
    """The story of a search run: setup, episodes and reward curve, chosen students per budget, budgets held
    (predicted and measured).

    \b
    Example:
      kdnas-bench report runs/search-sst2 --html runs/search-sst2/report.html --png runs/search-sst2/plots
    """
    outputs = Outputs(html_path, md_path, png)
    report = run_report(ReportRequest(run_dir, outputs))
    if as_json:
        print_json(report.story.to_dict())
        return
    print_report(report)
    _written(outputs)


def print_report(report: RunReport) -> None:
    """The story's paragraphs, then each section's tables fitted to the terminal, then the plots written."""
    doc = report.document
    for p in doc.sections[0].paragraphs:
        console.print(p, highlight=False, markup=False)
    for sec in doc.sections[1:]:
        for t in sec.tables:
            keys = {"episode", "budget ms", "arch", "rung"}
            cols = [Col(h, KEY if h in keys else (1 if "metric" in h else i + 1), "left" if h == "arch" else "right")
                    for i, h in enumerate(t.headers)]
            fit = table_or_stacked if "measured ms" in t.headers else fit_table  # budget checks: every column
            console.print(fit(sec.title.lower(), cols, t.rows, console.width))
    for path in report.images:
        console.print(f"plot: {path}", highlight=False, markup=False)


def register(cli: click.Group) -> None:
    cli.add_command(compare_cmd)
    cli.add_command(report_cmd)


__all__ = ["compare_cmd", "register", "report_cmd", "rich_table", "write_outputs"]
