"""The search with the real proxy-distillation evaluator (tiny random teacher, 300 real SST-2 rows):
resume after kill -9, same seed -> same winner, Ray executor == local executor."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import ROOT, cli_subprocess_cmd
from .helpers import search_args as _args

pytestmark = pytest.mark.skipif(not (ROOT.parent / "shared" / "data" / "glue").is_dir(), reason="no GLUE data")


def _winner(out: str) -> dict:
    data = json.loads(out)
    assert data["evaluations"] >= 3
    (w,) = data["winners"]
    assert w["predicted_latency_ms_high"] <= w["budget_ms"]
    return w


def test_kill_9_mid_search_then_resume_gives_the_same_winner(preds: Path, request: pytest.FixtureRequest,
                                                              tmp_path: Path) -> None:
    teacher, glue = request.getfixturevalue("tiny_teacher"), request.getfixturevalue("tiny_glue")
    ref = subprocess.run(cli_subprocess_cmd(*_args(preds, teacher, glue, tmp_path / "ref")), cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-2000:]
    expected = _winner(ref.stdout)
    run = tmp_path / "killed"
    proc = subprocess.Popen(cli_subprocess_cmd(*_args(preds, teacher, glue, run)), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = run / "evaluations.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(log.read_text().splitlines())
    assert 2 <= done_before < json.loads(ref.stdout)["evaluations"]
    again = subprocess.run(cli_subprocess_cmd(*_args(preds, teacher, glue, run)), cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert _winner(again.stdout) == expected
    assert json.loads(again.stdout)["evaluated_now"] <= json.loads(ref.stdout)["evaluations"] - 2


def test_ray_executor_matches_local(preds: Path, request: pytest.FixtureRequest, tmp_path: Path, run_cli) -> None:
    pytest.importorskip("ray")
    teacher, glue = request.getfixturevalue("tiny_teacher"), request.getfixturevalue("tiny_glue")
    code, out_local, err = run_cli(*_args(preds, teacher, glue, tmp_path / "local"))
    assert code == 0, err
    code, out_ray, err = run_cli(*_args(preds, teacher, glue, tmp_path / "ray", "--executor", "ray"))
    assert code == 0, err
    local, ray = json.loads(out_local), json.loads(out_ray)
    assert ray["winners"] == local["winners"] and ray["evaluations"] == local["evaluations"]
