"""Runs that never destroy or half-write: output folders (``--out`` not empty or an input), one writer per folder
(a lock with the owner's pid), nothing written by a refused run, a finished search re-run as a no-op that prints
its stored result (``--redo final`` re-does only the final step), and "a different search" naming what differs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kdnas_bench.errors import KdnasError
from kdnas_bench.outdirs import LOCK_FILE, FolderLock, check_out_folder

from .conftest import ROOT
from .helpers import TINY_SPACE, search_args


def _files(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root`` with its bytes and modification time (ns)."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))
            if p.is_file()}


def _lock(folder: Path, pid: int, host: str | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK_FILE).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname()}))


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(proc.stdout)


# -- the lock ---------------------------------------------------------------------------------------------
def test_a_live_writer_is_refused_naming_its_pid(tmp_path: Path) -> None:
    _lock(tmp_path / "run", os.getppid())
    with pytest.raises(KdnasError, match=rf"in use by another kdnas-bench process \(pid {os.getppid()}\)"):
        FolderLock(tmp_path / "run", "--out").acquire()
    assert (tmp_path / "run" / LOCK_FILE).is_file()  # the owner's lock is left alone


def test_a_stale_lock_is_taken_over_with_a_note(tmp_path: Path) -> None:
    dead = _dead_pid()
    _lock(tmp_path / "run", dead)
    notes: list[str] = []
    with FolderLock(tmp_path / "run", "--out", note=notes.append):
        owner = json.loads((tmp_path / "run" / LOCK_FILE).read_text())
        assert owner == {"pid": os.getpid(), "host": socket.gethostname()}
    assert len(notes) == 1 and f"took over a stale lock (pid {dead} is gone)" in notes[0]
    assert not (tmp_path / "run" / LOCK_FILE).exists()


def test_a_lock_of_another_host_is_refused(tmp_path: Path) -> None:
    _lock(tmp_path / "run", 1234, "some-other-machine")
    with pytest.raises(KdnasError, match="in use by pid 1234 on host some-other-machine"):
        FolderLock(tmp_path / "run").acquire()


def test_a_real_second_process_is_refused_until_the_first_ends(tmp_path: Path) -> None:
    run = tmp_path / "run"
    code = ("import sys, time; from kdnas_bench.outdirs import FolderLock\n"
            f"with FolderLock({str(run)!r}):\n    print('held', flush=True); time.sleep(60)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(KdnasError, match=f"pid {holder.pid}"):
            FolderLock(run).acquire()
    finally:
        holder.kill()
        holder.wait()
    with FolderLock(run):  # killed: its lock is stale now, taken over
        pass
    assert list(run.iterdir()) == []  # the stale lock gone with the new owner's


def test_a_lock_that_created_the_folder_removes_it_when_empty(tmp_path: Path) -> None:
    with FolderLock(tmp_path / "a" / "b"):
        assert (tmp_path / "a" / "b" / LOCK_FILE).is_file()
    assert not (tmp_path / "a").exists()
    with FolderLock(tmp_path / "c"):
        (tmp_path / "c" / "kept.txt").write_text("x")
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["kept.txt"]


# -- --out ------------------------------------------------------------------------------------------------
def test_out_folder_rules(tmp_path: Path) -> None:
    check_out_folder("--out", tmp_path / "new", overwrite=False)
    (tmp_path / "empty").mkdir()
    check_out_folder("--out", tmp_path / "empty", overwrite=False)
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / "config.json").write_text("{}")
    with pytest.raises(KdnasError, match=r"exists and is not empty \(config.json\): pass --overwrite"):
        check_out_folder("--out", teacher, overwrite=False)
    check_out_folder("--out", teacher, overwrite=True)
    with pytest.raises(KdnasError, match="is the --teacher folder"):
        check_out_folder("--out", teacher, overwrite=True, inputs=[("--teacher", str(teacher))])
    with pytest.raises(KdnasError, match="is the --teacher folder"):  # the same folder, spelt another way
        check_out_folder("--out", tmp_path / "x" / ".." / "teacher", overwrite=True, inputs=[("--teacher", str(teacher))])
    with pytest.raises(KdnasError, match="holds the --train-file"):
        check_out_folder("--out", tmp_path, overwrite=True, inputs=[("--train-file", str(teacher / "config.json"))])
    check_out_folder("--out", teacher / "student", overwrite=False, inputs=[("--teacher", str(teacher)),
                                                                           ("--backbone", "hub/name")])


def test_teacher_finetune_never_overwrites_a_teacher_silently(tiny_teacher: Path, tiny_glue: Path, tmp_path: Path,
                                                              run_cli) -> None:
    import shutil

    teacher = tmp_path / "teacher"
    shutil.copytree(tiny_teacher, teacher)
    before = _files(teacher)
    code, _, err = run_cli("teacher", "finetune", "--backbone", str(tiny_teacher), "--task", "sst2", "--data-dir",
                           str(tiny_glue), "--max-examples", "16", "--epochs", "0.01", "--out", str(teacher))
    assert code == 2 and "exists and is not empty" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert _files(teacher) == before


def test_two_distills_into_one_out_the_second_is_refused(tiny_glue: Path, tmp_path: Path, run_cli) -> None:
    out = tmp_path / "student"
    _lock(out, os.getppid())  # a first distill still writing there
    code, _, err = run_cli("distill", "--teacher", str(tmp_path / "noteacher"), "--task", "sst2", "--arch", "1,64,2,128",
                           "--data-dir", str(tiny_glue), "--max-examples", "8", "--out", str(out))
    assert code == 2 and f"--out {out} is in use by another kdnas-bench process (pid {os.getppid()})" in err


def test_supernet_train_refuses_a_folder_before_writing_its_space(tiny_teacher: Path, tiny_glue: Path, tmp_path: Path,
                                                                  run_cli) -> None:
    out = tmp_path / "notes"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    code, _, err = run_cli("supernet", "train", "--teacher", str(tiny_teacher), "--task", "sst2", "--data-dir",
                           str(tiny_glue), "--out", str(out), "--max-examples", "16", "--epochs", "0.01")
    assert code == 2 and "exists and holds no supernet (notes.txt)" in err, err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # no space.toml, no lock left


def test_accelerator_names_a_gpu_by_index() -> None:
    import torch

    from kdnas_bench.distill.accelerator import Accelerator, AcceleratorError, resolve

    assert Accelerator(torch.device("cuda:1")).name == "cuda:1" and Accelerator(torch.device("cuda")).name == "cuda"
    if not torch.cuda.is_available():
        with pytest.raises(AcceleratorError, match="no CUDA GPU here"):
            resolve("cuda:0")


# -- search run folders -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    root = tmp_path_factory.mktemp("table")
    shutil.copy(ROOT / "search" / "tables" / "sst2-minilm-students.json", root / "table.json")
    return root / "table.json"


def _table_search(table: Path, run: Path, *extra: str) -> list[str]:
    return ["search", "--device", "intel-xeon-processor-2c-cfff2f", "--backend", "torch", "--task", "sst2", "--table",
            str(table), "--space", str(ROOT / "search" / "spaces" / "minilm-students.toml"), "--predictors",
            str(ROOT / "predictors"), "--episodes", "2", "--candidates", "3", "--budget-ms", "5,10", "--out", str(run),
            *extra]


def test_a_finished_search_rerun_prints_its_stored_result_and_writes_nothing(table: Path, tmp_path: Path,
                                                                             run_cli) -> None:
    run = tmp_path / "run"
    code, out, err = run_cli(*_table_search(table, run, "--json"))
    assert code == 0, err
    first = json.loads(out)
    before = _files(run)
    time.sleep(0.01)
    code, out, err = run_cli(*_table_search(table, run, "--json"))
    assert code == 0, err
    again = json.loads(out)
    assert "finished: its stored result" in err and "nothing redone" in err
    assert again["winners"] == first["winners"] and again["evaluations"] == first["evaluations"]
    assert again["evaluated_now"] == 0
    assert _files(run) == before  # result.json, summary.json, the log: not one byte or timestamp changed
    code, out, err = run_cli(*_table_search(table, run))  # the table, as a user sees it
    assert code == 0 and "winners" in out and _files(run) == before


def test_a_different_search_names_the_options_that_differ(table: Path, tmp_path: Path, run_cli) -> None:
    run = tmp_path / "run"
    assert run_cli(*_table_search(table, run))[0] == 0
    args = _table_search(table, run, "--seed", "2", "--reward", "soft")
    code, _, err = run_cli(*args)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "holds a different search (--reward hard (stored) vs soft (now); --seed 0 (stored) vs 2 (now))" in err


def test_a_refused_search_writes_nothing(preds: Path, tiny_teacher: Path, tiny_glue: Path, tmp_path: Path,
                                         run_cli) -> None:
    """The space of the teacher's students (--space auto) is derived, checked and only then written."""
    run = tmp_path / "fresh"
    args = [a for a in search_args(preds, tiny_teacher, tiny_glue, run) if a != str(TINY_SPACE)]
    args.remove("--space")
    args[args.index("--budget-ms") + 1] = "0.001"
    code, _, err = run_cli(*args)
    assert code == 2 and "below the fastest arch" in err, err
    assert not run.exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    code, _, err = run_cli(*[str(existing) if a == str(run) else a for a in args])
    assert code == 2 and list(existing.iterdir()) == []


def test_redo_final_redoes_only_the_final_step(preds: Path, tiny_teacher: Path, tiny_glue: Path, tmp_path: Path,
                                               run_cli) -> None:
    run = tmp_path / "run"
    final = ["--final", "--final-examples", "32", "--final-epochs", "1"]
    code, out, err = run_cli(*search_args(preds, tiny_teacher, tiny_glue, run))  # finished without --final
    assert code == 0, err
    searched = json.loads((run / "result.json").read_text())
    code, out, err = run_cli(*search_args(preds, tiny_teacher, tiny_glue, run, *final))  # --final added: the step only
    assert code == 0 and "adding the final step" in err, err
    first = json.loads(out)
    stored = json.loads((run / "result.json").read_text())
    assert stored["history"] == searched["history"] and "final_metric" in stored["winners"][0]
    before = _files(run)
    code, out, err = run_cli(*search_args(preds, tiny_teacher, tiny_glue, run, *final))  # finished: a no-op
    assert code == 0 and json.loads(out)["winners"] == first["winners"] and _files(run) == before, err
    code, out, err = run_cli(*search_args(preds, tiny_teacher, tiny_glue, run, *final, "--redo", "final"))
    assert code == 0, err
    redone = json.loads((run / "result.json").read_text())
    # the episodes and their history as they were (never replayed into a doubled episode 0), the final step redone
    assert redone["history"] == stored["history"] and redone["evaluations"] == stored["evaluations"]
    assert [w["arch"] for w in redone["winners"]] == [w["arch"] for w in stored["winners"]]
    assert (run / "evaluations.jsonl").read_bytes() == before["evaluations.jsonl"][0]
    student = Path(redone["winners"][0]["student_dir"])
    assert (student / "model.safetensors").stat().st_mtime_ns > before[str(student.relative_to(run) / "model.safetensors")][1]
    assert json.loads(out)["evaluated_now"] == 0


def test_a_process_may_lock_a_folder_it_holds_again(tmp_path: Path) -> None:
    with FolderLock(tmp_path / "out"):
        with FolderLock(tmp_path / "out"):  # e.g. supernet train's --out, locked again by the training itself
            pass
        assert (tmp_path / "out" / LOCK_FILE).is_file()  # still held by the outer one
    assert not (tmp_path / "out").exists()


def test_two_trainers_of_one_supernet_folder_the_second_is_refused(tiny_teacher: Path, tiny_glue: Path,
                                                                    tmp_path: Path) -> None:
    from kdnas_bench.space import SearchSpace
    from kdnas_bench.supernet import SupernetConfig
    from kdnas_bench.supernet.train import ensure_supernet

    folder = tmp_path / "supernet"
    _lock(folder, os.getppid())  # a search sharing this --supernet is training it
    with pytest.raises(KdnasError, match=f"--supernet {folder} is in use by another kdnas-bench process"):
        ensure_supernet(str(tiny_teacher), "sst2", SearchSpace.load(TINY_SPACE), folder, data_dir=tiny_glue,
                        cfg=SupernetConfig(examples=16, epochs=0.01))


def test_a_finished_search_is_not_replayed_on_other_latencies(tmp_path: Path, run_cli) -> None:
    """Re-run against latencies that moved (another predictor for the same device, or ``--speed now`` on a busier
    machine), a finished search used to replay its episodes on the new numbers, evaluate new candidates and rewrite
    ``result.json`` with an episode-0 history twice as long and another winner. Now its stored result stands."""
    from kdnas_bench.predictors.registry import fit_and_save
    from kdnas_bench.space import SearchSpace, sample_archs

    from .helpers import DEV, real_rows, write_store
    from .test_search import table_metric

    rows = real_rows()
    for name, factor in (("a", 1.0), ("b", 1.6)):  # the same rows, measured 1.6 times slower
        write_store(tmp_path / f"store-{name}", DEV, rows.assign(median_ms=rows["median_ms"] * factor))
        fit_and_save(DEV, "torch", 1, store=tmp_path / f"store-{name}", out=tmp_path / f"preds-{name}")
    archs = sorted(set(sample_archs(SearchSpace.load(ROOT / "search" / "spaces" / "bert.toml"), 160, sampler="sobol",
                                    seed=5)))
    table = tmp_path / "table.json"
    table.write_text(json.dumps([{**a.to_dict(), "metric": table_metric(a), "metric_name": "accuracy"} for a in archs]))
    run = tmp_path / "run"

    def search(preds: str) -> tuple[int, str, str]:
        return run_cli("search", "--device", DEV, "--backend", "torch", "--budget-ms", "30", "--task", "sst2", "--table",
                       str(table), "--predictors", str(tmp_path / preds), "--episodes", "1", "--candidates", "3",
                       "--out", str(run), "--json")

    code, out, err = search("preds-a")
    assert code == 0, err
    stored = (run / "result.json").read_bytes()
    code, out, err = search("preds-b")
    assert code == 0, err
    assert (run / "result.json").read_bytes() == stored
    assert json.loads(out)["winners"] == json.loads(stored)["winners"] and json.loads(out)["evaluated_now"] == 0
    assert len((run / "evaluations.jsonl").read_text().splitlines()) == json.loads(stored)["evaluations"]
    (run / "result.json").unlink()  # unfinished: resumed, and the user is told the latencies moved under it
    code, out, err = search("preds-b")
    assert code == 0 and "3 of 3 stored evaluations were scored on other predicted latencies" in err, err
