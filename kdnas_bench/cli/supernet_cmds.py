"""``kdnas-bench supernet train|evaluate``: the one-shot supernet of a teacher's students."""

from __future__ import annotations

import functools
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..defaults import DEFAULTS
from ..distill.data import TaskRef
from ..jobs.supernet import (
    SubnetScores,
    SupernetEvaluateRequest,
    SupernetTrainRequest,
    run_supernet_evaluate,
    run_supernet_train,
)
from ..space import Arch
from .common import accelerator_option, console, err_console, overwrite_option, print_json
from .options import (
    arch_option,
    data_dir_option,
    deprecated_alias,
    json_option,
    seed_option,
    space_option,
    threads_option,
    training_options,
)
from .task_options import task_options, teacher_fit_option


@click.group("supernet")
def supernet_group() -> None:
    """Weight-sharing supernets (one per teacher, task and space)."""


@supernet_group.command("train")
@click.option("--teacher", required=True, help="Fine-tuned teacher folder (its shape is the largest sub-network).")
@task_options(task_help="GLUE task the teacher was fine-tuned on.")
@teacher_fit_option()
@space_option("Space TOML of the teacher's students, or 'auto' (the default): derived from the teacher's shape "
              "and written to OUT/space.toml.")
@click.option("--out", required=True, type=click.Path(), help="Supernet folder (resumes an unfinished training).")
@overwrite_option("files of something other than a supernet")
@click.option("--max-examples", type=int, default=4000, show_default=True,
              help="Train on a stratified seeded subset of N train examples.")
@deprecated_alias("--examples", "--max-examples", "max_examples", int)
@click.option("--epochs", type=float, default=2.0, show_default=True, help="Training epochs (may be fractional).")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Training batch size.")
@click.option("--lr", type=float, default=1e-4, show_default=True, help="Peak learning rate.")
@click.option("--random-subnets", type=int, default=2, show_default=True,
              help="Random sub-networks per step besides the largest and the smallest.")
@click.option("--losses", default=DEFAULTS.search_losses, show_default=True,
              help="Distillation losses with optional weights: logits and/or ce, plus hidden (each sub-network "
                   "layer against the teacher layer it inherits, in the teacher's channels), e.g. "
                   "logits,ce,hidden:0.5.")
@seed_option("Seed (sub-network draws, data order).")
@threads_option("torch CPU threads for training.")
@accelerator_option("supernet training")
@training_options(selection=False)
@json_option("Print the supernet's document as JSON.")
def train_cmd(teacher: str, task: TaskRef, data_dir: str | None, space_path: str | None, out: str, overwrite: bool,
              max_examples: int, epochs: float, batch_size: int, lr: float, random_subnets: int, losses: str,
              seed: int, threads: int, accelerator: str, max_length: str, log_to: str | None, log_dir: str | None,
              as_json: bool) -> None:
    """Train (or resume, or reuse) a supernet with the sandwich rule and in-place distillation.

    \b
    Example:
      kdnas-bench supernet train --teacher runs/teacher-sst2 --task sst2 --data-dir glue \\
          --out runs/supernet-sst2 --max-examples 2000 --epochs 1

    glue/ is the GLUE benchmark's TSV download (one folder per task: glue/SST-2/train.tsv, dev.tsv); without
    --data-dir the task comes from the Hugging Face hub. Your own data: --train-file and --validation-file.

    Under torchrun (torchrun --nproc_per_node N -m kdnas_bench -- supernet train ...) it trains data-parallel:
    each process takes its share of every --batch-size batch; process 0 writes --out and prints.
    """
    req = SupernetTrainRequest(teacher, task, out, data_dir=data_dir, space=space_path, overwrite=overwrite,
                               max_examples=max_examples, epochs=epochs, batch_size=batch_size, lr=lr,
                               random_subnets=random_subnets, losses=losses, seed=seed, threads=threads,
                               accelerator=accelerator, max_length=max_length, log_to=log_to, log_dir=log_dir)
    on_event = functools.partial(_train_event, err_console if as_json else console, random_subnets)
    outcome = run_supernet_train(req, on_event, progress=not as_json)
    if not outcome.writer:
        return
    if as_json:
        print_json(outcome.doc)
        return
    console.print(_supernet_table(out, outcome.doc))


def _train_event(out_console: Console, random_subnets: int, kind: str, info: dict[str, Any]) -> None:
    """The line a supernet training starts (or resumes) with and the max length's; a stale lock taken over."""
    if kind == "note":
        err_console.print(f"note: {info['text']}", markup=False)
    if kind != "start":
        return
    out_console.print(f"{'resuming at step ' + str(info['start']) if info['start'] else 'training'}: "
                      f"{info['total']} steps, sandwich {info['largest']} + {info['smallest']} + "
                      f"{random_subnets} random", highlight=False)
    if info.get("lengths"):
        out_console.print(info["lengths"], highlight=False, markup=False)


def _supernet_table(out: str, doc: dict[str, Any]) -> Table:
    table = Table(title=Text(f"supernet {out}"))
    table.add_column("field")
    table.add_column("value")
    rec = doc["recipe"]
    rows = [("teacher", f"{rec['teacher']} ({rec['teacher_hash']})"), ("task", str(rec["task"])),
            ("space", f"{rec['space']['name']} ({rec['space_hash']})"),
            ("train examples", f"{rec['train_examples']:,} ({rec['data_hash']})"),
            ("max length", f"{rec['max_length']} tokens"),
            ("steps", str(doc.get("steps"))), ("train seconds", f"{doc.get('train_seconds', 0):.1f}"),
            ("largest / smallest", f"{doc.get('largest')} / {doc.get('smallest')}")]
    for label, text in rows:
        table.add_row(label, Text(text))
    return table


@supernet_group.command("evaluate")
@click.option("--supernet", "folder", required=True, type=click.Path(), help="Trained supernet folder.")
@arch_option("Sub-network: L,H,A,FFN, 4L-312H-12A-1200F or a name; repeat for several.", required=True,
             multiple=True)
@data_dir_option()
@threads_option("torch CPU threads.")
@json_option()
def evaluate_cmd(folder: str, arch: tuple[Arch, ...], data_dir: str | None, threads: int, as_json: bool) -> None:
    """Score sub-networks of a supernet on the task's dev set (the one-shot evaluator)."""
    scores = run_supernet_evaluate(SupernetEvaluateRequest(folder, tuple(arch), data_dir=data_dir, threads=threads))
    if as_json:
        print_json(scores.rows)
        return
    console.print(_scores_table(folder, scores))


def _scores_table(folder: str, scores: SubnetScores) -> Table:
    task = scores.task
    table = Table(title=Text(f"{task.name} dev, sub-networks of {folder}"))
    for col in ("arch", task.primary_metric, "seconds"):
        table.add_column(col, justify="right")
    for r in scores.rows:
        table.add_row(str(r["name"]), f"{r['metric']:.4f}", f"{r['seconds']:.2f}")
    return table


def register(cli: click.Group) -> None:
    """Add ``supernet train`` and ``supernet evaluate`` to the command group."""
    cli.add_command(supernet_group)
