"""Exporting a saved model folder to ONNX (:func:`run_export` on an :class:`ExportRequest`): what ``kdnas-bench
export`` runs. The values are checked by :func:`~kdnas_bench.deploy.export_folder`, every one before the export
starts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..deploy import export_folder
from ..distill.taskspec import TaskRef


@dataclass(frozen=True)
class ExportRequest:
    """``model`` (a saved model folder) exported to ONNX into ``out``; ``quantize="int8"``: also the dynamically
    quantized file; ``task`` (and ``data_dir``): each file scored on its dev set by ONNX Runtime with ``threads``
    threads; ``overwrite``: replace an existing ``out`` once the new one is whole."""

    model: str
    out: str
    quantize: str | None = None
    task: TaskRef | None = None
    data_dir: str | None = None
    threads: int = 1
    overwrite: bool = False


def run_export(req: ExportRequest) -> dict[str, Any]:
    """The export report (``export.json``, with ``out``): files, sizes, the fp32 file's largest difference from
    the torch model and, with a task, the accuracy of each file."""
    return export_folder(req.model, req.out, quantize=req.quantize, task=req.task, data_dir=req.data_dir,
                         threads=req.threads, overwrite=req.overwrite)
