"""The written forms of a report (a self-contained HTML page, Markdown, PNG plots), and ``kdnas-bench report``
as a request and a library call: :class:`ReportRequest` -> :func:`run_report` -> :class:`RunReport` (the run's
story, its document and the files written), which the CLI renders."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import KdnasError
from .render import Document, to_html, to_markdown, write_text_atomic
from .run_report import RunStory, load_run, run_document

DocFn = Callable[[list[Path]], Document]
PngFn = Callable[[Path], list[Path]]


@dataclass(frozen=True)
class Outputs:
    """Where a report is written: ``html`` and ``md`` files, ``png`` a folder (None: not written). Checked where
    made: a report file may not be a folder, nor the PNG folder a file."""

    html: str | None = None
    md: str | None = None
    png: str | None = None

    def __post_init__(self) -> None:
        for name, p in (("--html", self.html), ("--md", self.md)):
            if p and Path(p).is_dir():
                raise KdnasError(f"{name} {p} is a folder; give a file name")
        if self.png and Path(self.png).exists() and not Path(self.png).is_dir():
            raise KdnasError(f"--png {self.png} exists and is not a folder")

    def write(self, doc_fn: DocFn, make_pngs: PngFn) -> list[Path]:
        """Write the PNGs (to ``png``, or next to the Markdown, or a temporary folder for HTML only), then the
        reports. Returns the PNGs that stay."""
        if not (self.png or self.html or self.md):
            return []
        if self.png:
            images = make_pngs(Path(self.png))
        elif self.md:
            images = make_pngs(Path(self.md).with_suffix("").with_name(Path(self.md).stem + "_plots"))
        else:
            assert self.html is not None
            with tempfile.TemporaryDirectory() as tmp:
                images = make_pngs(Path(tmp))
                write_text_atomic(Path(self.html), to_html(doc_fn(images)))
                return []
        doc = doc_fn(images)
        if self.html:
            write_text_atomic(Path(self.html), to_html(doc))
        if self.md:
            write_text_atomic(Path(self.md), to_markdown(doc, base=Path(self.md).resolve().parent))
        return images


def write_outputs(doc_fn: DocFn, png: str | None, html_path: str | None, md_path: str | None,
                  make_pngs: PngFn) -> list[Path]:
    """:meth:`Outputs.write` from the three paths."""
    return Outputs(html_path, md_path, png).write(doc_fn, make_pngs)


@dataclass(frozen=True)
class ReportRequest:
    """``kdnas-bench report``: the search run folder and where to write its report (nothing written by default)."""

    run_dir: str
    outputs: Outputs = Outputs()


@dataclass(frozen=True)
class RunReport:
    """A run's report: its story, the document (setup, episodes, winners, budget checks) and the PNGs written."""

    story: RunStory
    document: Document
    images: list[Path]


def run_report(req: ReportRequest) -> RunReport:
    """Read the run, write the report's files, and return what the CLI shows."""
    from .run_plots import run_pngs  # noqa: PLC0415  lazy: matplotlib, only when plots are written

    story = load_run(req.run_dir)
    images = req.outputs.write(lambda imgs: run_document(story, imgs), lambda folder: run_pngs(story, folder))
    return RunReport(story, run_document(story, images), images)


__all__ = ["Outputs", "ReportRequest", "RunReport", "run_report", "write_outputs"]
