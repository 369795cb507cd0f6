"""The training verbs as library calls, without the CLI: each request checks its own values in one line before
any work, each run function does what its verb does (the same numbers as the underlying library calls) and says
what the user should hear through its events; the accelerator resolves without touching torch's settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from kdnas_bench.distill.accelerator import CPU, Accelerator, AcceleratorError, apply_precision_settings, resolve
from kdnas_bench.distill.data import Task, TaskRef, get_task
from kdnas_bench.errors import KdnasError
from kdnas_bench.jobs.distill import DistillRequest, FinetuneRequest, run_distill, run_finetune
from kdnas_bench.jobs.export import ExportRequest, run_export
from kdnas_bench.jobs.supernet import (
    SupernetEvaluateRequest,
    SupernetTrainRequest,
    run_supernet_evaluate,
    run_supernet_train,
)
from kdnas_bench.space import Arch

from .helpers import GLUE, TINY_SPACE, Events

needs_glue = pytest.mark.skipif(not (GLUE / "SST-2" / "dev.tsv").is_file(), reason="../shared/data/glue not present")
STUDENT = Arch(1, 32, 2, 64)


def test_the_requests_load_without_torch() -> None:
    """The command line builds its requests at import time: their modules import no torch (nor pandas)."""
    code = ("import sys, kdnas_bench.jobs.distill, kdnas_bench.jobs.supernet, kdnas_bench.jobs.export; "
            "print(sorted(m for m in ('torch', 'pandas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


# -- the requests check their own values ---------------------------------------------------------------------
@pytest.mark.parametrize("change,message", [
    ({"epochs": 0.0}, "--epochs must be positive, got 0.0"),
    ({"max_examples": -3}, "--max-examples must be positive, got -3"),
    ({"threads": 0}, "--threads must be positive, got 0"),
    ({"quantize": "int8"}, "--quantize needs --out"),
    ({"log_dir": "logs"}, "--log-dir goes with --log-to"),
    ({"max_length": "long"}, "--max-length must be 'auto' or a number of tokens"),
    ({"task": "sst3"}, "unknown task 'sst3'"),
    ({"losses": "logits,nope"}, "nope"),
])
def test_a_distill_request_refuses_a_bad_value_in_one_line(change: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {"teacher": "t", "task": "sst2", "arch": STUDENT, **change}
    with pytest.raises(KdnasError, match=message) as err:
        DistillRequest(**values)
    assert "\n" not in str(err.value)


def test_requests_hold_the_verbs_defaults_and_normalise_the_training_options(tmp_path: Path) -> None:
    req = DistillRequest("t", "sst2", STUDENT, out=str(tmp_path / "s"), max_length="96", log_to=None)
    assert req.accelerator == "auto" and req.epochs == 3.0 and req.init == "inherit"
    assert req.training() == {"max_length": 96, "log_to": None}
    assert ("--teacher", "t") in req.inputs() and ("--supernet", None) in req.inputs()
    teach = FinetuneRequest("sst2", str(tmp_path / "t"), eval_every="epoch", early_stopping=2)
    assert teach.training() == {"max_length": "auto", "log_to": None, "eval_every": "epoch", "early_stopping": 2}
    assert teach.lr == 2e-4 and teach.batch_size == 16 and teach.accelerator == "auto"
    with pytest.raises(KdnasError, match="--batch-size must be positive, got 0"):
        FinetuneRequest("sst2", "out", batch_size=0)
    with pytest.raises(KdnasError, match="--random-subnets must be 0 or more"):
        SupernetTrainRequest("t", "sst2", "out", random_subnets=-1)
    with pytest.raises(KdnasError, match="--log-to needs a folder"):
        DistillRequest("t", "sst2", STUDENT, log_to="tensorboard")
    with pytest.raises(KdnasError, match="--threads must be positive, got 0"):
        SupernetEvaluateRequest("folder", (STUDENT,), threads=0)


def test_a_task_reference_is_a_name_a_task_or_its_spec() -> None:
    refs: list[TaskRef] = ["SST-2", get_task("sst2")]
    assert {get_task(r).name for r in refs} == {"sst2"}
    own = Task.from_spec({"name": "reviews", "source": "files", "text_columns": ["review"], "labels": ["neg", "pos"],
                          "metrics": ["accuracy"], "label_column": "label"})
    spec = own.spec()
    assert spec is not None and get_task(spec) == own


# -- the accelerator: resolved without side effects, settings applied by the work -------------------------------
def test_resolving_the_accelerator_changes_no_torch_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        acc = resolve("cuda")
        assert acc.is_cuda and not acc.bf16 and acc.precision == "fp32-tf32" and resolve(acc) is acc
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (False, False)
        apply_precision_settings(CPU)  # the CPU: nothing
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (False, False)
        apply_precision_settings(acc)
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (True, True)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
    assert Accelerator(torch.device("cpu"), staged=True).precision == "fp32" and CPU.precision == "fp32"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_job_on_cuda_without_a_gpu_fails_before_any_work(tiny_teacher: Path, tmp_path: Path) -> None:
    out = tmp_path / "student"
    with pytest.raises(AcceleratorError, match="--accelerator cuda: no CUDA GPU"):
        run_distill(DistillRequest(str(tiny_teacher), "sst2", STUDENT, out=str(out), accelerator="cuda"))
    with pytest.raises(AcceleratorError, match="--accelerator cuda: no CUDA GPU"):
        run_finetune(FinetuneRequest("sst2", str(out), accelerator="cuda"))
    assert not out.exists()


# -- the jobs run ------------------------------------------------------------------------------------------------
@needs_glue
def test_run_finetune_is_finetune_with_its_checks(tiny_teacher: Path, tiny_glue: Path, tmp_path: Path) -> None:
    from kdnas_bench.distill import finetune

    events = Events()
    req = FinetuneRequest("sst2", str(tmp_path / "teacher"), backbone=str(tiny_teacher), data_dir=str(tiny_glue),
                          max_examples=48, epochs=0.5, batch_size=16, accelerator="cpu")
    result = run_finetune(req, events)
    direct = finetune("sst2", backbone=str(tiny_teacher), data_dir=str(tiny_glue), max_examples=48, epochs=0.5,
                      batch_size=16)
    assert result.metrics == direct.metrics and result.train_examples == 48
    saved = json.loads((tmp_path / "teacher" / "metrics.json").read_text())
    assert saved["metrics"] == result.metrics and events.seen == []
    with pytest.raises(KdnasError, match="exists and is not empty"):  # refused without overwrite, before any work
        run_finetune(req)


@needs_glue
def test_run_distill_saves_the_student_and_says_a_weak_teacher_once(tiny_teacher: Path, tiny_glue: Path,
                                                                     tmp_path: Path) -> None:
    from kdnas_bench.distill import distill

    events = Events()
    out = tmp_path / "student"
    req = DistillRequest(str(tiny_teacher), "sst2", STUDENT, data_dir=str(tiny_glue), max_examples=32, epochs=1.0,
                         batch_size=16, out=str(out), accelerator="cpu")
    outcome = run_distill(req, events)
    direct = distill(str(tiny_teacher), "sst2", STUDENT, data_dir=str(tiny_glue), max_examples=32, epochs=1.0,
                     batch_size=16)
    assert outcome.result.metrics == direct.metrics and outcome.quantized is None
    doc = outcome.to_dict()
    assert doc["mode"] == "proxy" and doc["out"] == str(out) and "quantized" not in doc
    assert json.loads((out / "metrics.json").read_text())["metrics"] == doc["metrics"]
    assert "message" not in events.kinds()  # a teacher without a recorded score is not judged: nothing said


@needs_glue
def test_supernet_jobs_train_score_and_start_a_student(tiny_teacher: Path, tiny_glue: Path, tmp_path: Path) -> None:
    folder = tmp_path / "supernet"
    events = Events()
    req = SupernetTrainRequest(str(tiny_teacher), "sst2", str(folder), data_dir=str(tiny_glue), space=str(TINY_SPACE),
                               max_examples=32, epochs=1.0, batch_size=16, accelerator="cpu")
    outcome = run_supernet_train(req, events)
    assert outcome.writer and outcome.doc["complete"] and outcome.doc["steps"] == 2
    (start,) = [data for kind, data in events.seen if kind == "start"]
    assert start["start"] == 0 and start["total"] == 2 and "tokens" in start["lengths"]
    again = run_supernet_train(req)  # a finished supernet is reused: nothing trained, the same document
    assert again.doc == outcome.doc

    archs = (Arch(1, 32, 2, 64), Arch(2, 64, 4, 128))
    scores = run_supernet_evaluate(SupernetEvaluateRequest(str(folder), archs, data_dir=str(tiny_glue)))
    assert scores.task.name == "sst2" and [r["name"] for r in scores.rows] == [str(a) for a in archs]
    assert all(0.0 <= r["metric"] <= 1.0 and r["metrics"]["accuracy"] == r["metric"] for r in scores.rows)

    student = run_distill(DistillRequest(str(tiny_teacher), "sst2", STUDENT, data_dir=str(tiny_glue), max_examples=32,
                                         epochs=0.5, supernet=str(folder), accelerator="cpu"))
    assert student.result.config["init"] == f"supernet:{folder}"


@needs_glue
def test_run_export_writes_the_onnx_folder(tiny_teacher: Path, tiny_glue: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    out = tmp_path / "onnx"
    report = run_export(ExportRequest(str(tiny_teacher), str(out), task="sst2", data_dir=str(tiny_glue)))
    assert report["out"] == str(out) and (out / "model.onnx").is_file()
    assert json.loads((out / "export.json").read_text())["files"] == report["files"]
    assert report["accuracy"]["task"] == "sst2" and 0.0 <= report["accuracy"]["fp32_metric"] <= 1.0
