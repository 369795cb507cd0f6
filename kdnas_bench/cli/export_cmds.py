"""``kdnas-bench export``: a saved model folder to ONNX (fp32, and int8 with --quantize), with the accuracy of
each file on a task's dev set when the task is given."""

from __future__ import annotations

from typing import Any

import click

from ..deploy import QUANTIZE
from ..distill.taskspec import TaskRef
from ..jobs.export import ExportRequest, run_export
from .common import console, print_json
from .options import json_option, threads_option
from .task_options import task_options


def _print_report(report: dict[str, Any]) -> None:
    sizes = " · ".join(f"{p} {report['files'][p]} {b / 2**20:.1f} MiB" for p, b in report["onnx_bytes"].items())
    console.print(f"exported {report['model']} ({report['output']}) to {report['out']}: {sizes}", markup=False,
                  highlight=False)
    console.print(f"fp32 ONNX vs torch: largest difference {report['fp32_max_abs_diff_vs_torch']:.2e}",
                  highlight=False)
    acc = report.get("accuracy")
    if acc:
        line = f"{acc['task']} dev {acc['primary_metric']}: fp32 {acc['fp32_metric']:.4f}"
        if "int8_metric" in acc:
            line += f", int8 {acc['int8_metric']:.4f} (drop {acc['drop_points']:+.2f} points)"
        console.print(line, highlight=False)


@click.command("export")
@click.option("--model", "model_dir", required=True, type=click.Path(),
              help="A saved model folder: config.json, model.safetensors and its tokenizer (a distilled student, "
                   "a fine-tuned teacher or any BERT-style backbone).")
@click.option("--out", required=True, type=click.Path(),
              help="Folder to write: model.onnx (and model.int8.onnx), the tokenizer, config.json, export.json.")
@click.option("--quantize", type=click.Choice(QUANTIZE),
              help="Also write the int8 model (ONNX Runtime dynamic quantization, model.int8.onnx).")
@task_options(required=False, task_help="Check the accuracy on this GLUE task's dev set (cola, sst2, mrpc, stsb, "
              "qqp, mnli-m, mnli-mm, qnli, rte): fp32 and int8 side by side.")
@threads_option("ONNX Runtime threads for the accuracy check.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out folder (only once the new one is whole).")
@json_option("Print the export report (export.json) as JSON.")
def export_cmd(model_dir: str, out: str, quantize: str | None, task: TaskRef | None, data_dir: str | None,
               threads: int, overwrite: bool, as_json: bool) -> None:
    """Export a saved model folder to ONNX, and quantize it to int8, on its own.

    A model with a classification head exports its logits, a backbone its last hidden state. With a task
    (--task and --data-dir, or your own --train-file and --validation-file, as the model was trained on:
    the labels' order comes from the training file), each exported file is scored on the dev set by ONNX
    Runtime, so the accuracy lost to int8 is stated. Every input is checked before the export starts;
    --out appears whole or not at all, and an existing one is kept unless --overwrite.

    \b
    Examples:
      kdnas-bench export --model runs/student --out runs/student-onnx --quantize int8
      kdnas-bench export --model runs/student --out runs/student-onnx --quantize int8 \\
          --task sst2 --data-dir glue --overwrite
    """
    report = run_export(ExportRequest(model_dir, out, quantize=quantize, task=task, data_dir=data_dir,
                                      threads=threads, overwrite=overwrite))
    if as_json:
        print_json(report)
        return
    _print_report(report)


def register(cli: click.Group) -> None:
    """Add ``export`` to the command group."""
    cli.add_command(export_cmd)
