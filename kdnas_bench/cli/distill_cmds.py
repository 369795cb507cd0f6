"""Verbs about distilling: ``distill`` (a student from a teacher) and ``teacher finetune``."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table
from rich.text import Text

from ..defaults import DEFAULTS, LAYER_CHOICES
from ..deploy import QUANTIZE
from ..distill.data import BATCHING, TaskRef
from ..jobs.distill import DistillOutcome, DistillRequest, FinetuneRequest, run_distill, run_finetune
from ..space import Arch
from .common import accelerator_option, console, err_console, overwrite_option, print_json
from .options import (
    INIT_CHOICES,
    allow_weak_teacher_option,
    arch_option,
    json_option,
    seed_option,
    threads_option,
    training_options,
)
from .task_options import task_options, teacher_fit_option


def _metrics_table(title: str, result: dict[str, Any]) -> Table:
    table = Table(title=Text(title))
    table.add_column("field")
    table.add_column("value")
    trivial = trivial_scores(result)
    for name, value in result["metrics"].items():
        mark = " (primary)" if name == result.get("primary_metric") else ""
        below = name in trivial and value < trivial[name][0]
        table.add_row(f"dev {name}{mark}", f"{value:.4f}" + (" (below trivial)" if below else ""))
    for name, (value, answer) in trivial.items():
        table.add_row(Text(f"trivial {name} ({answer})"), f"{value:.4f}")
    if "teacher_score" in (result.get("baseline") or {}):  # a student: its teacher's recorded score
        teacher = result["baseline"]["teacher_score"]
        said = "not recorded (not judged)" if teacher is None else f"{teacher:.4f}"
        table.add_row(f"teacher {result['primary_metric']}", said + (" (weak)" if result["baseline"].get("weak") else ""))
    table.add_row("params", f"{result['params']:,}")
    table.add_row("train examples", f"{result['train_examples']:,}")
    for label, text in training_rows(result):
        table.add_row(label, Text(text))
    table.add_row("train seconds", f"{result['train_seconds']:.1f}")
    if result.get("out"):
        table.add_row("saved to", Text(str(result["out"])))
    return table


def training_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """Table rows of a result's training: the max length (how chosen, what it cut) and the per-epoch evaluation."""
    config = result.get("config") or {}
    rows = []
    if "max_length" in config:
        how = " (auto)" if config.get("max_length_auto") else ""
        cut = config.get("cut_examples") or {}
        said = f"; cut: {cut.get('train', 0):,} train, {cut.get('dev', 0):,} dev" if any(cut.values()) else ""
        rows.append(("max length", f"{config['max_length']} tokens{how}{said}"))
    sel = result.get("selection")
    if sel and sel.get("best_metrics"):
        metric = result["primary_metric"]
        kept = "restored" if sel["restored_best"] else "the last"
        stop = ", stopped early" if sel["stopped_early"] else ""
        rows.append(("best epoch", f"{sel['best_epoch']:g} of {len(sel['history'])} evaluated ({kept}{stop}; "
                                   f"{metric} {sel['best_metrics'][metric]:.4f})"))
    return rows


def cut_note(result: dict[str, Any]) -> str | None:
    """A line for stderr when some examples were longer than the max length and were cut."""
    config = result.get("config") or {}
    cut = config.get("cut_examples") or {}
    if not any(cut.values()):
        return None
    return (f"note: {cut.get('train', 0):,} train and {cut.get('dev', 0):,} dev examples are longer than "
            f"--max-length {config['max_length']} and were cut")


def trivial_scores(result: dict[str, Any]) -> dict[str, tuple[float, str]]:
    """metric -> (trivial score, its constant answer) from a teacher's or student's result, if it has a baseline."""
    base = result.get("baseline") or {}
    base = base.get("baseline", base)  # a student's: the teacher check around the baseline
    answers = base.get("answers") or {}
    return {m: (float(v), str(answers.get(m, "a constant"))) for m, v in (base.get("metrics") or {}).items()}


def _event(kind: str, data: dict[str, Any]) -> None:
    """A job's events on stderr: its messages as they are, a stale lock taken over as a note."""
    if kind == "message":
        click.echo(data["text"], err=True)
    elif kind == "note":
        err_console.print(f"note: {data['text']}", markup=False, highlight=False)


@click.command("distill")
@click.option("--teacher", required=True, help="Fine-tuned teacher: local folder or hub name.")
@task_options()
@teacher_fit_option()
@arch_option(required=True)
@click.option("--max-examples", type=int, help="Proxy mode: a stratified seeded subset of N train examples.")
@click.option("--epochs", type=float, default=3.0, show_default=True, help="Training epochs (may be fractional).")
@click.option("--losses", default=DEFAULTS.distill_losses, show_default=True,
              help="Comma-separated KD losses with optional weights: logits, hidden, hidden-uniform, attn, ce "
                   "(e.g. logits,hidden:0.5,attn).")
@click.option("--out", type=click.Path(), help="Save the student here (HF layout, safetensors, ONNX, metrics.json).")
@overwrite_option("a student or teacher saved there")
@seed_option("Seed (init, dropout, data order, subset).")
@click.option("--lr", type=float, default=DEFAULTS.distill_lr, show_default=True, help="Peak learning rate.")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Training batch size.")
@click.option("--temperature", type=float, default=1.0, show_default=True, help="Logits KD temperature.")
@click.option("--init", type=click.Choice(INIT_CHOICES), default="inherit",
              show_default=True, help="inherit: every weight from the teacher, rewired by importance on task data "
              "and sliced; embeddings (old 'auto'): teacher embeddings, layers only when widths match; random.")
@click.option("--layer-choice", type=click.Choice(LAYER_CHOICES), default="spread", show_default=True,
              help="With --init inherit, which teacher layers a shallower student keeps: spread (evenly, ending with "
              "the last) or importance (greedy removal of the layer that changes the teacher's output least on "
              "task examples).")
@click.option("--supernet", "supernet_dir", type=click.Path(),
              help="Start from the student's sub-network of this trained supernet folder instead of --init.")
@click.option("--batching", type=click.Choice(BATCHING), default="random", show_default=True,
              help="Training batches: plain random, or length-grouped (2.9x less padding on SST-2; for "
                   "large sets: on 2,000 examples it cost 3.7 pts for a 2L/256 student).")
@threads_option("torch CPU threads for training.")
@accelerator_option("distillation")
@click.option("--quantize", type=click.Choice(QUANTIZE), help="Also export the student quantized (int8: ONNX "
              "Runtime dynamic quantization, model.int8.onnx) and report its dev metric beside fp32. Needs --out.")
@allow_weak_teacher_option()
@training_options()
@json_option("Print the result as JSON.")
def distill_cmd(teacher: str, task: TaskRef, arch: Arch, data_dir: str | None, max_examples: int | None,
                epochs: float, losses: str, out: str | None, overwrite: bool, seed: int, lr: float, batch_size: int,
                temperature: float, init: str, layer_choice: str, supernet_dir: str | None, batching: str,
                threads: int,
                accelerator: str, quantize: str | None, allow_weak_teacher: bool, max_length: str,
                log_to: str | None, log_dir: str | None, eval_every: str, early_stopping: int | None,
                as_json: bool) -> None:
    """Distil a student from a fine-tuned teacher and evaluate it on dev.

    Proxy mode with --max-examples (what KD-NAS scores candidates with), full mode without.

    \b
    Example:
      kdnas-bench distill --teacher runs/teacher-sst2 --task sst2 --arch 4,256,4,1024 \\
          --data-dir glue --max-examples 2000 --epochs 3 --json

    glue/ is the GLUE benchmark's TSV download (one folder per task: glue/SST-2/train.tsv, dev.tsv); without
    --data-dir the task comes from the Hugging Face hub. Your own data: --train-file and --validation-file.
    """
    req = DistillRequest(teacher, task, arch, data_dir=data_dir, max_examples=max_examples, epochs=epochs,
                         losses=losses, out=out, overwrite=overwrite, seed=seed, lr=lr, batch_size=batch_size,
                         temperature=temperature, init=init, layer_choice=layer_choice, supernet=supernet_dir,
                         batching=batching, threads=threads,
                         accelerator=accelerator, quantize=quantize, allow_weak_teacher=allow_weak_teacher,
                         max_length=max_length, log_to=log_to, log_dir=log_dir, eval_every=eval_every,
                         early_stopping=early_stopping)
    _show_student(run_distill(req, _event, progress=not as_json), str(arch), as_json)


def _show_student(outcome: DistillOutcome, student: str, as_json: bool) -> None:
    """A distilled student's result: a table (and the int8 line), or JSON; a cut note on stderr."""
    result = outcome.to_dict()
    note = cut_note(result)
    if note:
        click.echo(note, err=True)
    if as_json:
        print_json(result)
        return
    console.print(_metrics_table(f"{result['task']} student {student} ({result['mode']} mode)", result))
    q = outcome.quantized
    if q:
        console.print(f"{q['precision']}: {q['primary_metric']} {q['metric']:.4f} vs fp32 {q['fp32_metric']:.4f} "
                      f"(drop {q['drop_points']:+.2f} points); ONNX {q['onnx_bytes']['fp32'] / 2**20:.1f} → "
                      f"{q['onnx_bytes']['int8'] / 2**20:.1f} MiB · {q['onnx']}", markup=False)


@click.group("teacher")
def teacher_group() -> None:
    """Make teachers."""


@teacher_group.command("finetune")
@click.option("--backbone", help="Hub name or local folder (default: the packaged all-MiniLM-L6-v2).")
@task_options()
@click.option("--max-examples", type=int, help="Fine-tune on a stratified seeded subset of N train examples.")
@click.option("--epochs", type=float, default=1.0, show_default=True, help="Training epochs (may be fractional).")
@seed_option("Seed (head init, dropout, data order).")
@click.option("--lr", type=float, default=2e-4, show_default=True, help="Peak learning rate.")
@click.option("--batch-size", type=int, default=16, show_default=True, help="Training batch size.")
@click.option("--out", required=True, type=click.Path(), help="Save the teacher here (HF layout, safetensors).")
@overwrite_option("a teacher saved there")
@click.option("--batching", type=click.Choice(BATCHING), default="random", show_default=True,
              help="Training batches: plain random, or length-grouped (2.9x less padding on SST-2; use it "
                   "on large sets: 79.5 % vs 80.05 % dev accuracy at 2,000 SST-2 examples).")
@threads_option("torch CPU threads for training.")
@accelerator_option("fine-tuning")
@training_options()
@json_option("Print the result as JSON.")
def teacher_finetune(backbone: str | None, task: TaskRef, data_dir: str | None, max_examples: int | None,
                     epochs: float, seed: int, lr: float, batch_size: int, out: str, overwrite: bool, batching: str,
                     threads: int, accelerator: str, max_length: str, log_to: str | None, log_dir: str | None,
                     eval_every: str, early_stopping: int | None, as_json: bool) -> None:
    """Fine-tune a backbone into a task teacher, save it with its dev metrics.

    \b
    Example:
      kdnas-bench teacher finetune --task sst2 --data-dir glue \\
          --max-examples 2000 --epochs 1 --out runs/teacher-sst2
      kdnas-bench teacher finetune --train-file train.csv --validation-file dev.csv \\
          --text-columns review --label-column sentiment --out runs/teacher-reviews

    glue/ is the GLUE benchmark's TSV download (one folder per task: glue/SST-2/train.tsv, dev.tsv); without
    --data-dir the task comes from the Hugging Face hub.
    """
    req = FinetuneRequest(task, out, backbone=backbone, data_dir=data_dir, max_examples=max_examples, epochs=epochs,
                          seed=seed, lr=lr, batch_size=batch_size, overwrite=overwrite, batching=batching,
                          threads=threads, accelerator=accelerator, max_length=max_length, log_to=log_to,
                          log_dir=log_dir, eval_every=eval_every, early_stopping=early_stopping)
    result = run_finetune(req, _event, progress=not as_json)
    warning = result.weak_warning()
    if warning:
        click.echo(warning, err=True)
    note = cut_note(result.to_dict())
    if note:
        click.echo(note, err=True)
    if as_json:
        print_json(result.to_dict())
        return
    console.print(_metrics_table(f"{result.task} teacher from {result.backbone}", result.to_dict()))


def register(cli: click.Group) -> None:
    """Add ``distill`` and ``teacher finetune`` to the command group."""
    cli.add_command(distill_cmd)
    cli.add_command(teacher_group)
