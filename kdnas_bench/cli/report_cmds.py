"""Verbs that show results: ``compare`` (students across devices) and ``report`` (a search run's story).

Both render a rich table, and on request JSON, a self-contained HTML page, Markdown and PNG plots."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import click
from rich.table import Table as RichTable
from rich.text import Text

from ..errors import KdnasError
from . import options
from .common import console, err_console, positive, print_json
from .compare_view import add_matrix, compare_pngs, measuring, print_compare
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


def write_outputs(doc_fn: Any, png: str | None, html_path: str | None, md_path: str | None, make_pngs: Any) -> list[Path]:
    """Write the PNGs (to --png, or next to the Markdown, or a temporary folder for HTML only), then the reports."""
    from ..report.render import to_html, to_markdown, write_text_atomic

    if not (png or html_path or md_path):
        return []
    for name, p in (("--html", html_path), ("--md", md_path)):
        if p and Path(p).is_dir():
            raise KdnasError(f"{name} {p} is a folder; give a file name")
    if png:
        folder = Path(png)
        if folder.exists() and not folder.is_dir():
            raise KdnasError(f"--png {png} exists and is not a folder")
        images = make_pngs(folder)
    elif md_path:
        images = make_pngs(Path(md_path).with_suffix("").with_name(Path(md_path).stem + "_plots"))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            images = make_pngs(Path(tmp))
            write_text_atomic(Path(html_path), to_html(doc_fn(images)))  # type: ignore[arg-type]
            return []
    doc = doc_fn(images)
    if html_path:
        write_text_atomic(Path(html_path), to_html(doc))
    if md_path:
        write_text_atomic(Path(md_path), to_markdown(doc, base=Path(md_path).resolve().parent))
    return images


def _semicolons(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--students`` separated by ';' (the old separator) still works, with a deprecation note."""
    if value and ";" in value:
        options.deprecation_note(f"';' in --students {options.DEPRECATED}; separate students with ',' (an arch is four "
                                 "numbers L,H,A,FFN)")
    return value


def register(cli: click.Group) -> None:
    @cli.command("compare")
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
        from ..report.compare import compare
        from ..report.render import compare_document
        from ..report.students import resolve_students
        from ..space import Shape

        for name, value in (("--seq", seq), ("--batch", batch), ("--budget-mb", budget_mb)):
            positive(name, value)
        if budget_mb is not None and budget_ms is None:
            raise KdnasError("--budget-mb goes with --budget-ms (the deployment matrix)")
        studs = resolve_students(students)
        with measuring(measure) as on_measure:
            result = compare(studs, shape=Shape(batch, seq), devices=list_items(devices), reference=reference,
                             measure=measure, predictors_root=Path(predictors_dir) if predictors_dir else None,
                             on_measure=on_measure, speed=speed)
        for p in result.models.values() if speed == "now" else ():
            note = p.calibration.describe() if p.calibration else "at its reference speed (not calibrated: another " \
                "machine's predictor, or fitted on raw medians)"
            err_console.print(f"{p.key}: {note}", highlight=False, markup=False)
        if budget_ms is not None:
            add_matrix(result, tuple(budget_ms), budget_mb, measure, quiet=as_json)
        images = write_outputs(lambda imgs: compare_document(result, imgs), png, html_path, md_path,
                               lambda folder: compare_pngs(result, folder, Path(store) if store else None))
        if as_json:
            if result.matrix:
                print_json({"rows": [r.to_dict() for r in result.rows], "matrix": [c.to_dict() for c in result.matrix]})
            else:
                print_json([r.to_dict() for r in result.rows])
            return
        print_compare(result, images, detail)
        for written, name in ((html_path, "HTML"), (md_path, "Markdown")):
            if written:
                console.print(f"{name} report: {written}", highlight=False, markup=False)

    @cli.command("report")
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
        from ..report.run_plots import run_pngs
        from ..report.run_report import load_run, run_document

        story = load_run(run_dir)
        images = write_outputs(lambda imgs: run_document(story, imgs), png, html_path, md_path,
                          lambda folder: run_pngs(story, folder))
        if as_json:
            print_json(story.to_dict())
            return
        doc = run_document(story, images)
        for p in doc.sections[0].paragraphs:
            console.print(p, highlight=False, markup=False)
        for sec in doc.sections[1:]:
            for t in sec.tables:
                keys = {"episode", "budget ms", "arch", "rung"}
                cols = [Col(h, KEY if h in keys else (1 if "metric" in h else i + 1), "left" if h == "arch" else "right")
                        for i, h in enumerate(t.headers)]
                fit = table_or_stacked if "measured ms" in t.headers else fit_table  # budget checks: every column
                console.print(fit(sec.title.lower(), cols, t.rows, console.width))
        for path in images:
            console.print(f"plot: {path}", highlight=False, markup=False)
        for written, name in ((html_path, "HTML"), (md_path, "Markdown")):
            if written:
                console.print(f"{name} report: {written}", highlight=False, markup=False)


