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
from .common import console, err_console, positive, print_json
from .predict_cmds import speed_option


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


def register(cli: click.Group) -> None:
    @cli.command("compare")
    @click.option("--students", help="Names (bert-base, distilbert, minilm-l6, minilm-l12, tinybert-4l, tinybert-6l, "
                                     "bert-medium/small/mini/tiny), L,H,A,FFN;... archs, a search run folder or a saved "
                                     "model folder; mix with ';'. Default: the six well-known students.")
    @click.option("--devices", help="Comma-separated device ids (default: every device with a fitted predictor).")
    @click.option("--seq", type=int, default=128, show_default=True, help="Sequence length.")
    @click.option("--batch", type=int, default=1, show_default=True, help="Batch size.")
    @click.option("--reference", help="Student the speedups are against (default: the run's teacher, else the first).")
    @click.option("--measure/--no-measure", default=True, show_default=True,
                  help="Measure the students on this machine where a predictor is for it (CPU backends).")
    @click.option("--predictors", "predictors_dir", type=click.Path(), help="Predictors folder (default: predictors/).")
    @click.option("--store", type=click.Path(), help="Profile store for the predicted-vs-measured plots.")
    @click.option("--budget-ms", type=float, help="Deployment matrix: for each device x backend, the best student "
                  "whose predicted upper latency is within this budget (with measured latency, memory and metric).")
    @click.option("--budget-mb", type=float, help="Deployment matrix: also a peak-memory budget (MiB, predicted).")
    @speed_option
    @click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
    @click.option("--html", "html_path", type=click.Path(), help="Write a self-contained HTML report here.")
    @click.option("--md", "md_path", type=click.Path(), help="Write a Markdown report here.")
    @click.option("--png", type=click.Path(), help="Write the PNG plots into this folder.")
    def compare_cmd(students: str | None, devices: str | None, seq: int, batch: int, reference: str | None,
                    measure: bool, predictors_dir: str | None, store: str | None, budget_ms: float | None,
                    budget_mb: float | None, speed: str, as_json: bool, html_path: str | None, md_path: str | None,
                    png: str | None) -> None:
        """Compare students side by side across devices: predicted latency and interval, measured latency on this
        machine, speedup, params, FLOPs and the task metric when known.

        \b
        Example:
          kdnas-bench compare --students bert-base,minilm-l6,tinybert-4l --json --html r.html --png out/
        """
        from ..report import plots
        from ..report.compare import compare
        from ..report.render import compare_document
        from ..report.students import resolve_students
        from ..space import Shape

        positive("--seq", seq)
        positive("--batch", batch)
        positive("--budget-ms", budget_ms)
        positive("--budget-mb", budget_mb)
        if budget_mb is not None and budget_ms is None:
            raise KdnasError("--budget-mb goes with --budget-ms (the deployment matrix)")
        studs = resolve_students(students)
        dev_list = [d.strip() for d in devices.split(",") if d.strip()] if devices else None

        def on_measure(name: str, label: str) -> None:
            if not as_json:
                err_console.print(f"measuring {name} on {label} ...", highlight=False, markup=False)

        result = compare(studs, shape=Shape(batch, seq), devices=dev_list, reference=reference, measure=measure,
                         predictors_root=Path(predictors_dir) if predictors_dir else None, on_measure=on_measure,
                         speed=speed)
        for p in result.models.values() if speed == "now" else ():
            note = p.calibration.describe() if p.calibration else "at its reference speed (not calibrated: another " \
                "machine's predictor, or fitted on raw medians)"
            err_console.print(f"{p.key}: {note}", highlight=False, markup=False)

        if budget_ms is not None:
            from ..profiling.measure import measure_memory
            from ..report.deployment import deployment_matrix

            def mem(arch: Any, backend: str, threads: int) -> float | None:
                if not as_json:
                    err_console.print(f"measuring peak memory of {arch} on {backend} ...", highlight=False, markup=False)
                return measure_memory(arch, Shape(batch, seq), backend, threads).get("measured_peak_mb")

            result.matrix = deployment_matrix(result, budget_ms, budget_mb, mem if measure else None)
            result.matrix_budget = (budget_ms, budget_mb)

        def make(folder: Path) -> list[Path]:
            store_path = Path(store) if store else None
            extra = []
            if result.matrix and budget_ms is not None:
                from ..report.deployment import matrix_png

                extra = [matrix_png(result.matrix, folder, budget_ms=budget_ms, budget_mb=budget_mb)]
            return [*extra, *plots.pareto_pngs(result, folder), *plots.pred_vs_measured_pngs(result, folder, store_path),
                    *plots.seq_pngs(result, folder)]

        images = write_outputs(lambda imgs: compare_document(result, imgs), png, html_path, md_path, make)
        if as_json:
            if result.matrix:
                print_json({"rows": [r.to_dict() for r in result.rows], "matrix": [c.to_dict() for c in result.matrix]})
            else:
                print_json([r.to_dict() for r in result.rows])
            return
        doc = compare_document(result, images)
        students_section = doc.sections[1] if result.matrix else doc.sections[0]
        if result.matrix:
            console.print(rich_table(doc.sections[0].tables[0], "deployment matrix"))
        for table in students_section.tables:
            console.print(rich_table(table, "students"))
        for p in students_section.paragraphs[:2]:
            console.print(p, highlight=False, markup=False)
        for path in images:
            console.print(f"plot: {path}", highlight=False, markup=False)
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
        from ..report.run_report import load_run, run_document, run_pngs

        story = load_run(run_dir)
        images = write_outputs(lambda imgs: run_document(story, imgs), png, html_path, md_path,
                          lambda folder: run_pngs(story, folder))
        if as_json:
            print_json(story.to_dict())
            return
        doc = run_document(story, images)
        for p in doc.sections[0].paragraphs:
            console.print(p, highlight=False, markup=False)
        console.print(rich_table(doc.sections[1].tables[0], "episodes"))
        console.print(rich_table(doc.sections[2].tables[0], "chosen students per budget"))
        for path in images:
            console.print(f"plot: {path}", highlight=False, markup=False)
        for written, name in ((html_path, "HTML"), (md_path, "Markdown")):
            if written:
                console.print(f"{name} report: {written}", highlight=False, markup=False)


