"""Markdown and self-contained HTML (PNGs embedded as data URIs) for compare and report. A document is a
title plus sections; a section holds paragraphs, tables (headers + rows of strings) and images."""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import KdnasError
from ..space import arch_text
from .compare import CompareResult, CompareRow
from .deployment import matrix_table_rows


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)
    collapsed: bool = False  # HTML: behind a <details> the reader opens (long per-item detail)


@dataclass
class Document:
    title: str
    sections: list[Section]


def fmt_ms(v: float | None) -> str:
    """Milliseconds with a fixed number of decimals per magnitude, so a column of them lines up."""
    if v is None:
        return "-"
    return f"{v:.2f}" if v < 10 else (f"{v:.1f}" if v < 1000 else f"{v:.0f}")


def fmt_num(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.1f}{suffix}{unit}"
    return f"{v:g}{unit}"


def compare_tables(result: CompareResult) -> list[Table]:
    """One table per predictor (device / backend / threads), students as rows."""
    headers = ["student", "arch", "predicted ms [interval]", "measured ms", f"speedup vs {result.reference}",
               "params", "FLOPs", "metric"]
    tables = []
    for p in result.predictors:
        rows = []
        for r in result.rows:
            if (r.device_id, r.backend, r.threads) != (p.device_id, p.backend, p.threads):
                continue
            interval = f"{fmt_ms(r.latency_ms)} [{fmt_ms(r.latency_ms_low)}, {fmt_ms(r.latency_ms_high)}]"
            if r.out_of_range:
                interval += " (out of range)"
            speed = "-" if r.speedup is None else f"{r.speedup:.2f}x"
            if r.measured_speedup is not None:
                speed += f" ({r.measured_speedup:.2f}x measured)"
            metric = "-" if r.metric is None else f"{r.metric:.4f} {r.metric_name or ''}".strip()
            a = r.arch
            rows.append([r.student, arch_text(a), interval,
                         fmt_ms(r.measured_ms), speed, fmt_num(r.params), fmt_num(r.flops), metric])
        tables.append(Table(headers, rows, f"{p.label}, batch {result.shape.batch}, seq {result.shape.seq}"))
    return tables


def pivot_cell(r: CompareRow) -> str:
    """Predicted ms, the measured ms in brackets when measured, * when outside the predictor's training ranges."""
    text = fmt_ms(r.latency_ms) + ("*" if r.out_of_range else "")
    return text + (f" ({fmt_ms(r.measured_ms)})" if r.measured_ms is not None else "")


def pivot(result: CompareResult) -> tuple[list[str], list[tuple[str, str, int, list[str]]]]:
    """Students x (device, backend, threads): the latency of every student on every predictor, one row per
    predictor (the compare verb's leading view)."""
    students = [s.name for s in result.students]
    rows = []
    for p in result.predictors:
        cells = {r.student: pivot_cell(r) for r in result.rows
                 if (r.device_id, r.backend, r.threads) == (p.device_id, p.backend, p.threads)}
        rows.append((p.device_id, p.backend, p.threads, [cells.get(n, "-") for n in students]))
    return students, rows


def metric_cells(result: CompareResult) -> list[str] | None:
    """The students' task metric (device-independent), marked "< trivial" when below their task's trivial
    score (a constant answer), or None when no student has one."""
    if all(s.metric is None for s in result.students):
        return None
    out = []
    for s in result.students:
        trivial = s.extra.get("trivial")
        below = s.metric is not None and trivial is not None and s.source != "teacher" and s.metric < trivial
        out.append("-" if s.metric is None else f"{s.metric:.4f}" + (" < trivial" if below else ""))
    return out


def trivial_note(result: CompareResult) -> str:
    """The trivial score (constant answer) of each task the students carry one for, as a caption part."""
    seen: dict[str, float] = {}
    for s in result.students:
        if s.extra.get("trivial") is not None:
            seen.setdefault(f"{s.task or 'task'} {s.metric_name or 'metric'}", float(s.extra["trivial"]))
    if not seen:
        return ""
    said = ", ".join(f"{k} {v:.4f}" for k, v in seen.items())
    return f"; trivial score (a constant answer): {said}, '< trivial' marks a student below it"


def pivot_note(result: CompareResult) -> str:
    measured = any(r.measured_ms is not None for r in result.rows)
    return (f"predicted latency in ms at batch {result.shape.batch} x seq {result.shape.seq}"
            + ("; (measured on this machine)" if measured else "")
            + ("; * outside the predictor's training ranges" if any(r.out_of_range for r in result.rows) else "")
            + trivial_note(result))


def matrix_sections(result: CompareResult) -> list[Section]:
    if not result.matrix or result.matrix_budget is None:
        return []
    budgets, mb = result.matrix_budget
    out = []
    for ms in budgets:
        cells = [c for c in result.matrix if c.budget_ms == ms]
        headers, rows = matrix_table_rows(cells)
        budget = f"predicted upper latency <= {ms:g} ms" + ("" if mb is None else f" and predicted peak memory <= {mb:g} MiB")
        chosen = ("the student with the best task metric" if any(c.metric is not None for c in cells)
                  else "the fastest student (no task metric is known)")
        out.append(Section(f"Deployment matrix, {ms:g} ms" if len(budgets) > 1 else "Deployment matrix", [
            f"For each device x backend, {chosen} among those with {budget} (batch {result.shape.batch}, seq "
            f"{result.shape.seq}); measured latency and peak memory where the predictor is this machine's. The metric "
            "is in the backend's precision when it was measured (int8: the quantized model's dev metric), else fp32."],
            [Table(headers, rows, f"deployment matrix, {ms:g} ms")]))
    return out


def compare_document(result: CompareResult, images: list[Path]) -> Document:
    preds = ", ".join(f"{p.label}{' (transfer)' if p.transfer else ''}" for p in result.predictors)
    measured = [p.label for p in result.predictors if p.local]
    if measured:
        where = f"Measured here: {', '.join(measured)}."
    elif not result.measured:
        where = "Not measured (add --measure to time the students on this machine): latencies are predicted."
    else:
        where = "No predictor is for this machine's CPU backends: latencies are predicted only."
    intro = [f"Students: {', '.join(s.name for s in result.students)}. Predictors: {preds}.",
             f"This machine: {result.this_device}. {where}",
             "Predicted latency is the predictor's median with its conformal interval; measured latency is the "
             "median of >= 20 timed calls after 5 warm-up calls (kdnas_bench.profiling.timing)."]
    students, prows = pivot(result)
    rows = [[d, b, str(t), *cells] for d, b, t, cells in prows]
    metrics = metric_cells(result)
    if metrics is not None:
        names = sorted({s.metric_name for s in result.students if s.metric_name})
        rows.append([f"task metric ({', '.join(names) or 'metric'})", "", "", *metrics])
    pred_rows = [[p.label, "-" if p.within_10pct is None else f"{100 * p.within_10pct:.1f} %",
                  "transfer" if p.transfer else "scratch"] for p in result.predictors]
    return Document("kdnas-bench compare", [
        Section("Latency across devices", [intro[0], intro[1], pivot_note(result) + "."],
                [Table(["device", "backend", "threads", *students], rows, "students x (device, backend)")]),
        *matrix_sections(result),
        Section("Students per predictor", intro[2:], compare_tables(result), collapsed=True),
        Section("Predictors", [], [Table(["predictor", "held-out within +-10 %", "fit"], pred_rows)]),
        Section("Plots", [], [], images),
    ])


# -- writers --------------------------------------------------------------------------------------
def to_markdown(doc: Document, base: Path | None = None) -> str:
    out = [f"# {doc.title}", ""]
    for sec in doc.sections:
        out += [f"## {sec.title}", ""]
        for p in sec.paragraphs:
            out += [p, ""]
        for t in sec.tables:
            if t.caption:
                out += [f"*{t.caption}*", ""]
            out.append("| " + " | ".join(t.headers) + " |")
            out.append("|" + "---|" * len(t.headers))
            out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in t.rows]
            out.append("")
        for img in sec.images:
            ref = os.path.relpath(img, base) if base is not None else str(img)
            out += [f"![{img.stem}]({ref})", ""]
    return "\n".join(out)


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1320px;padding:0 1.5em;color:#222;
line-height:1.45}table{border-collapse:collapse;margin:1em 0;display:block;overflow-x:auto;max-width:100%}
th,td{border:1px solid #ccc;padding:4px 8px;font-size:13px;text-align:left}th{background:#f3f3f3}
td:first-child,th{white-space:nowrap}
td:first-child{font-family:ui-monospace,monospace;font-size:12px}caption{font-style:italic;text-align:left}
figure{display:inline-block;vertical-align:top;margin:0.5em 1em 0.5em 0;max-width:100%}
img{max-width:100%;height:auto;border:1px solid #eee}figcaption{color:#666;font-size:12px}
h2{border-bottom:1px solid #ddd;padding-bottom:0.2em;margin-top:1.6em}summary{cursor:pointer}
summary h2{display:inline-block;border:none}"""


def to_html(doc: Document) -> str:
    esc = html.escape
    out = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>", f"<title>{esc(doc.title)}</title>",
           f"<style>{CSS}</style></head><body>", f"<h1>{esc(doc.title)}</h1>"]
    for sec in doc.sections:
        if sec.collapsed:
            out.append(f"<details><summary><h2>{esc(sec.title)}</h2></summary>")
        else:
            out.append(f"<h2>{esc(sec.title)}</h2>")
        out += [f"<p>{esc(p)}</p>" for p in sec.paragraphs]
        for t in sec.tables:
            out.append("<table>")
            if t.caption:
                out.append(f"<caption>{esc(t.caption)}</caption>")
            out.append("<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in t.headers) + "</tr></thead><tbody>")
            out += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in t.rows]
            out.append("</tbody></table>")
        out += [f"<figure><img alt='{esc(img.stem)}' src='{_data_uri(img)}'><figcaption>{esc(img.name)}"
                "</figcaption></figure>" for img in sec.images]
        if sec.collapsed:
            out.append("</details>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_text_atomic(path: Path, text: str) -> None:
    path = Path(path)
    if path.is_dir():
        raise KdnasError(f"{path} is a folder; give a file name for the report")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
