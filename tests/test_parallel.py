"""Data-parallel supernet training on 2 CPU processes (gloo): the same tensors as one process on the same
global batch, one writer of the folder, a resume after a kill -9, and ``supernet train`` under torchrun.

Dropout masks are drawn per process (a shard's masks cannot be the whole batch's), so the weight comparisons
turn dropout off in both runs (sub-networks run in eval mode); everything else is the training as shipped:
the sandwich, the shards, the gradient sum, AdamW, clipping and the learning-rate schedule."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from kdnas_bench.space import SearchSpace
from kdnas_bench.supernet import SupernetConfig, load, train_supernet
from kdnas_bench.supernet.store import CKPT_META

from .helpers import GLUE, ROOT, TINY_SPACE

pytestmark = [pytest.mark.skipif(not (GLUE / "SST-2" / "dev.tsv").is_file(), reason="../shared/data/glue not present"),
              pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                 reason="this torch has no gloo process group")]
CFG = SupernetConfig(examples=96, epochs=1.0, batch_size=16, importance_examples=64, losses="logits,ce,hidden:0.5")
KILL_AT = 3


def _no_dropout() -> None:
    from kdnas_bench.supernet.model import Supernet

    forward = Supernet.forward

    def without(self: Supernet, arch: Any, batch: dict[str, Any], *, train: bool = False, hidden: bool = False) -> Any:
        return forward(self, arch, batch, train=False, hidden=hidden)

    Supernet.forward = without  # type: ignore[method-assign]


def _train(teacher_dir: Path, glue: Path, folder: Path, **kwargs: Any) -> Any:
    from kdnas_bench.distill import load_teacher, prepare_data

    torch.set_num_threads(1)
    _no_dropout()
    teacher = load_teacher(teacher_dir, task="sst2")
    data = prepare_data(teacher.tokenizer, "sst2", data_dir=glue, max_examples=96)
    return train_supernet(teacher, data.task, SearchSpace.load(TINY_SPACE), folder, train_data=data.train, cfg=CFG,
                          **kwargs)


def _rank(rank: int, port: int, teacher_dir: Path, glue: Path, folder: Path, kill_at: int | None) -> None:
    """One rank of a 2-process gloo training; ``kill_at``: rank 0 kills itself (SIGKILL) right after writing
    the checkpoint of that step, as a kill -9 would find it."""
    import kdnas_bench.supernet.store as store

    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    if kill_at is not None:
        save = store.save_checkpoint

        def save_then_die(*args: Any, **kwargs: Any) -> None:
            save(*args, **kwargs)
            if kwargs.get("step", args[4]) >= kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

        store.save_checkpoint = save_then_die  # type: ignore[assignment]
    _train(teacher_dir, glue, folder, checkpoint_steps=1 if kill_at else None)
    torch.distributed.destroy_process_group()


def _rank_refused(rank: int, port: int, teacher_dir: Path, glue: Path, folders: list[Path]) -> None:
    """A rank training into its own folder; exit code 3 when it stops with the one-line ParallelError."""
    from kdnas_bench.supernet.parallel import ParallelError

    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        _train(teacher_dir, glue, folders[rank])
    except ParallelError as exc:
        sys.exit(3 if "must be one folder every process reads" in str(exc) else 4)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cmd(out: Path, teacher: Path, glue: Path, batch_size: int) -> list[str]:
    return ["torchrun", "--nproc_per_node", "2", "--master_port", str(_free_port()), "-m", "kdnas_bench", "--",
            "supernet", "train", "--teacher", str(teacher), "--task", "sst2", "--data-dir", str(glue), "--space", str(TINY_SPACE),
            "--out", str(out), "--max-examples", "64", "--epochs", "1", "--batch-size", str(batch_size), "--json"]


def _two_ranks(teacher_dir: Path, glue: Path, folder: Path, kill_at: int | None = None) -> list[int | None]:
    """Run both ranks to their end (a killed rank 0: kill -9 the other as torchrun would); their exit codes."""
    ctx = torch.multiprocessing.get_context("spawn")
    port = _free_port()
    procs = [ctx.Process(target=_rank, args=(r, port, teacher_dir, glue, folder, kill_at)) for r in range(2)]
    for p in procs:
        p.start()
    procs[0].join(timeout=300)
    if kill_at is not None and procs[1].is_alive():
        os.kill(procs[1].pid, signal.SIGKILL)  # type: ignore[arg-type]
    procs[1].join(timeout=300)
    for p in procs:
        if p.is_alive():
            p.kill()
    return [p.exitcode for p in procs]


def _max_diff(a: Path, b: Path) -> float:
    (x, _), (y, _) = load(a), load(b)
    assert set(x.params) == set(y.params)
    return max(float((x.params[k] - y.params[k]).abs().max()) for k in x.params)


@pytest.fixture(scope="module")
def single(tiny_teacher: Path, tiny_glue: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one-process training of the same global batches, run in a fresh process like the ranks."""
    folder = tmp_path_factory.mktemp("single")
    ctx = torch.multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_train, args=(tiny_teacher, tiny_glue, folder))
    proc.start()
    proc.join(timeout=300)
    assert proc.exitcode == 0
    return folder


def test_two_gloo_processes_train_the_single_process_tensors(single: Path, tiny_teacher: Path, tiny_glue: Path,
                                                            tmp_path: Path) -> None:
    folder = tmp_path / "ddp"
    assert _two_ranks(tiny_teacher, tiny_glue, folder) == [0, 0]
    doc = json.loads((folder / "supernet.json").read_text())
    assert doc["processes"] == 2 and doc["steps"] == 6
    assert sorted(p.name for p in folder.iterdir()) == ["supernet.json", "supernet.safetensors"]
    diff = _max_diff(single, folder)
    print(f"max abs diff {diff:.3g}")
    assert diff <= 1e-5


def test_a_killed_two_process_training_resumes_to_the_same_tensors(single: Path, tiny_teacher: Path,
                                                                   tiny_glue: Path, tmp_path: Path) -> None:
    folder = tmp_path / "killed"
    codes = _two_ranks(tiny_teacher, tiny_glue, folder, kill_at=KILL_AT)
    assert codes[0] == -signal.SIGKILL and codes[1] != 0  # the other rank: killed, or failed on the lost peer
    assert json.loads((folder / CKPT_META).read_text())["step"] == KILL_AT
    assert not (folder / "supernet.json").exists()
    assert _two_ranks(tiny_teacher, tiny_glue, folder) == [0, 0]
    doc = json.loads((folder / "supernet.json").read_text())
    assert doc["resumed_from_step"] == KILL_AT and doc["processes"] == 2
    assert not (folder / CKPT_META).exists()
    diff = _max_diff(single, folder)
    print(f"max abs diff {diff:.3g}")
    assert diff <= 1e-5


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun is not on PATH")
def test_supernet_train_under_torchrun_writes_one_supernet(tiny_teacher: Path, tiny_glue: Path, tmp_path: Path) -> None:
    out = tmp_path / "sn"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(_cmd(out, tiny_teacher, tiny_glue, 16), env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)  # one JSON document: only process 0 prints
    assert doc["processes"] == 2 and doc["steps"] == 4 and doc["complete"]
    assert json.loads((out / "supernet.json").read_text())["processes"] == 2
    odd = subprocess.run(_cmd(tmp_path / "odd", tiny_teacher, tiny_glue, 1), env=env, capture_output=True, text=True,
                         timeout=600, check=False)
    assert odd.returncode != 0 and "--batch-size 1 is smaller than the 2 data-parallel processes" in odd.stderr
    assert not (tmp_path / "odd" / "supernet.json").exists()


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun is not on PATH")
def test_a_search_under_torchrun_trains_its_supernet_on_both_processes(preds: Path, tiny_teacher: Path,
                                                                       tiny_glue: Path, tmp_path: Path) -> None:
    from .helpers import search_args

    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    args = search_args(preds, tiny_teacher, tiny_glue, run, "--evaluator", "supernet", "--supernet-examples", "64",
                       "--supernet-epochs", "1", "--rerank-top", "0", "--episodes", "1", "--candidates", "2")
    # "--": torchrun would read the search's --run as its own --run-path
    cmd = ["torchrun", "--nproc_per_node", "2", "--master_port", str(_free_port()), "-m", "kdnas_bench", "--", *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)  # one document: process 0 alone searches and prints
    assert result["winners"] and (run / "result.json").is_file()
    doc = json.loads((run / "supernet" / "supernet.json").read_text())
    assert doc["processes"] == 2 and doc["complete"]


def test_processes_that_see_different_supernet_folders_stop_in_one_line(single: Path, tiny_teacher: Path,
                                                                         tiny_glue: Path, tmp_path: Path) -> None:
    """Rank 1 finds a finished supernet where rank 0 finds none (no shared file system): both stop, nothing written."""
    ctx = torch.multiprocessing.get_context("spawn")
    port, folders = _free_port(), [tmp_path / "empty", single]
    procs = [ctx.Process(target=_rank_refused, args=(r, port, tiny_teacher, tiny_glue, folders)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [3, 3]
    assert not (tmp_path / "empty").exists()
