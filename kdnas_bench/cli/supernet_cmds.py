"""``kdnas-bench supernet train|evaluate``: the one-shot supernet of a teacher's students."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table
from rich.text import Text

from ..defaults import DEFAULTS
from ..errors import KdnasError
from .common import (
    accelerator_option,
    check_accelerator,
    console,
    err_console,
    overwrite_option,
    positive,
    print_json,
    task_inputs,
)
from .options import (
    arch_option,
    data_dir_option,
    deprecated_alias,
    json_option,
    seed_option,
    space_option,
    threads_option,
    training_options,
    training_settings,
)
from .task_options import task_options, teacher_fit_option

SUPERNET_FILES = ("supernet.json", "supernet.safetensors", "checkpoint.json", "checkpoint.safetensors", "space.toml")


def _checked_out(teacher: str, task: Any, data_dir: str | None, space_path: str | None, out: str,
                 overwrite: bool, max_length: int | str = "auto") -> Any:
    """The space, with ``--out`` checked before anything is written: not the teacher or a data file, a supernet
    folder (trained for this teacher, task and space: reused; unfinished: resumed), new, empty, or ``--overwrite``."""
    from pathlib import Path

    from ..autospace import resolve_space
    from ..distill.data import get_task
    from ..distill.teacher import load_teacher
    from ..outdirs import check_not_an_input, folder_entries
    from ..supernet import load
    from ..supernet.train import check_recipe
    from ..validate import check_writable

    check_writable("--out", out)
    check_not_an_input("--out", out, [("--teacher", teacher), *task_inputs(task, data_dir)])
    folder = Path(out)
    names = folder_entries(folder)
    if names and not overwrite and not set(names) & set(SUPERNET_FILES):
        shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
        raise KdnasError(f"--out {out} exists and holds no supernet ({shown}): pass --overwrite to train one into it, "
                         "or another folder")
    space_path = space_path or "auto"  # --space left out: the teacher's students
    t = get_task(task)
    loaded = load_teacher(teacher, task=t)
    config = loaded.model.config if space_path.strip().lower() == "auto" else None
    space, _ = resolve_space(space_path, config, out, teacher=teacher, write=False)
    if (folder / "supernet.json").is_file():  # reused when it matches: refused here when it does not
        check_recipe(load(folder)[1], folder, teacher=loaded, task=t, space=space, max_length=max_length)
    return space


def register(cli: click.Group) -> None:
    @cli.group("supernet")
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
    def train_cmd(teacher: str, task: Any, data_dir: str | None, space_path: str | None, out: str, overwrite: bool,
                  max_examples: int,
                  epochs: float, batch_size: int, lr: float, random_subnets: int, losses: str, seed: int,
                  threads: int, accelerator: str, max_length: str, log_to: str | None, log_dir: str | None,
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
        import torch

        from ..autospace import write_space
        from ..distill.tracking import open_tracker
        from ..outdirs import FolderLock
        from ..supernet import SupernetConfig
        from ..supernet.train import ensure_supernet

        for name, value in (("--max-examples", max_examples), ("--epochs", epochs), ("--batch-size", batch_size),
                            ("--lr", lr), ("--threads", threads)):
            positive(name, value)
        cfg = SupernetConfig(examples=max_examples, epochs=epochs, batch_size=batch_size, lr=lr,
                             random_subnets=random_subnets, losses=losses, seed=seed)
        training = training_settings(max_length, log_to, log_dir, out)
        accelerator = check_accelerator(accelerator)
        from ..distill.accelerator import resolve
        from ..supernet import parallel

        ranks, _ = parallel.join(resolve(accelerator))  # several processes under torchrun
        parallel.check_batch(ranks, batch_size)
        if not ranks.writer:
            ranks.barrier()  # process 0 checks --out and writes OUT/space.toml first
        space = _checked_out(teacher, task, data_dir, space_path, out, overwrite, training["max_length"])
        torch.set_num_threads(threads)
        out_console = err_console if as_json else console

        def started(info: dict[str, Any]) -> None:
            out_console.print(f"{'resuming at step ' + str(info['start']) if info['start'] else 'training'}: "
                              f"{info['total']} steps, sandwich {info['largest']} + {info['smallest']} + "
                              f"{random_subnets} random", highlight=False)
            if info.get("lengths"):
                out_console.print(info["lengths"], highlight=False, markup=False)

        with FolderLock(out, "--out", note=lambda text: err_console.print(f"note: {text}", markup=False)):
            if ranks.writer and (space_path is None or space_path.strip().lower() == "auto"):
                write_space(space, out)
            if ranks.writer:
                ranks.barrier()
            tracker = open_tracker(training["log_to"], training.get("log_dir")) if ranks.writer else None
            try:
                _, doc = ensure_supernet(teacher, task, space, out, data_dir=data_dir, cfg=cfg,
                                         progress=not as_json, on_start=started, accelerator=accelerator,
                                         max_length=training["max_length"], tracker=tracker)
            finally:
                if tracker is not None:
                    tracker.close()  # a reused supernet trains nothing: nothing more to log
        if not ranks.writer:
            return
        if as_json:
            print_json(doc)
            return
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
        console.print(table)

    @supernet_group.command("evaluate")
    @click.option("--supernet", "folder", required=True, type=click.Path(), help="Trained supernet folder.")
    @arch_option("Sub-network: L,H,A,FFN, 4L-312H-12A-1200F or a name; repeat for several.", required=True,
                 multiple=True)
    @data_dir_option()
    @threads_option("torch CPU threads.")
    @json_option()
    def evaluate_cmd(folder: str, arch: tuple[Any, ...], data_dir: str | None, threads: int, as_json: bool) -> None:
        """Score sub-networks of a supernet on the task's dev set (the one-shot evaluator)."""
        import time

        import torch

        from ..distill.data import encode, get_task, load_split
        from ..distill.lengths import recorded_max_length
        from ..distill.teacher import load_teacher
        from ..distill.training import evaluate
        from ..supernet import load

        parsed = list(arch)
        positive("--threads", threads)
        torch.set_num_threads(threads)
        net, doc = load(folder)
        for a in parsed:
            net.check(a)
        task = get_task(doc["recipe"].get("data") or doc["recipe"]["task"])  # "data": a task of one's own
        tokenizer = load_teacher(doc["recipe"]["teacher"]).tokenizer
        dev = encode(load_split(task, "dev", data_dir), tokenizer, max_length=recorded_max_length(doc["recipe"]))
        rows = []
        for a in parsed:
            t0 = time.perf_counter()
            metrics = evaluate(net.extract(a), dev, task)
            rows.append({"arch": a.to_dict(), "name": str(a), "metrics": metrics, "metric": metrics[task.primary_metric],
                         "seconds": round(time.perf_counter() - t0, 3)})
        if as_json:
            print_json(rows)
            return
        table = Table(title=Text(f"{task.name} dev, sub-networks of {folder}"))
        for col in ("arch", task.primary_metric, "seconds"):
            table.add_column(col, justify="right")
        for r in rows:
            table.add_row(str(r["name"]), f"{r['metric']:.4f}",
                          f"{r['seconds']:.2f}")
        console.print(table)
