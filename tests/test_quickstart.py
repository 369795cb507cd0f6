"""The whole pipeline through ``kdnas-bench quickstart`` at toy scale, with no task data (task-agnostic KD on
the stdlib docstrings) so it needs nothing but the checkout: profile -> fit (transfer) -> search -> final
distillation -> measure -> report -> compare. Checks what it wrote, and that nothing committed changed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from kdnas_bench.profiling.device import hardware
from kdnas_bench.report.plots import read_info

from .helpers import assert_real_png, parse_html

ROOT = Path(__file__).resolve().parents[1]


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.mark.slow
def test_quickstart_runs_the_whole_pipeline_without_task_data(tmp_path: Path, run_cli) -> None:
    before = _digest(ROOT / "predictors"), _digest(ROOT / "profiles")
    out = tmp_path / "qs"
    code, stdout, err = run_cli("quickstart", "--out", str(out), "--profile-rows", "12", "--transfer-rows", "8",
                                "--episodes", "1", "--candidates", "2", "--proxy-examples", "64", "--proxy-epochs", "1",
                                "--final-examples", "128", "--compare-students", "bert-tiny")
    assert code == 0, err
    assert "task-agnostic KD on" in stdout and "standard-library docstrings" in stdout
    assert "packaged all-MiniLM-L6-v2 backbone" in stdout
    assert (_digest(ROOT / "predictors"), _digest(ROOT / "profiles")) == before  # committed data untouched

    summary = json.loads((out / "quickstart.json").read_text())
    here = hardware(with_gpu=False).device_id
    assert summary["device_id"] == here
    assert [s["command"].split()[1] for s in summary["steps"]] == ["profile", "fit", "search", "report", "compare"]
    w = summary["winner"]
    assert w["predicted_latency_ms"] <= summary["budget_ms"]  # the hard reward judges the prediction
    assert w["measured_on_this_machine"] and w["measured_latency_ms"] > 0
    held = w["budget_held"]
    judged = w["budget_verdict"] != "not judged"  # a noisy machine's timing judges nothing, and says so
    assert isinstance(held, bool) == judged  # measured here: a yes, a no, or "not judged" (never "not this device")
    assert w["measured_rounds"] >= 1 and "measured_cv" in w and "measured_p90_ms" in w
    said = ("held" if held else "NOT held") if judged else w["budget_verdict_text"]
    flat = " ".join(stdout.split())  # lines wrapped at the terminal's width
    assert f"vs budget {summary['budget_ms']:g} ms: {said}" in flat or "outside the predicted" in flat
    assert 0 < w["final_metric"] <= 1  # kd_score
    student = Path(w["student_dir"])
    assert (student / "model.safetensors").is_file() and (student / "model.onnx").is_file()
    meta = json.loads((out / "predictors" / here / "torch-t1" / "meta.json").read_text())
    assert meta["transfer"]["samples"] == 8 and meta["metrics"]["heldout"]["rows"] == 4

    rep = out / "report"
    page = parse_html(rep / "compare.html")
    tables = [t for t in page.tables if t and t[0][:2] == ["student", "arch"]]
    assert tables and all({r[0] for r in t[1:]} >= {"teacher", "bert-tiny"} for t in tables)
    assert any(r[0].startswith("winner@") for r in tables[0][1:])
    infos = [read_info(p) for p in sorted((rep / "compare-plots").glob("*.png"))]
    pvm = [i for i in infos if i["kind"] == "pred-vs-measured" and i["predictor"].startswith(f"{here} / torch / 1t")]
    assert pvm and pvm[0]["profile_points"] == 12 and pvm[0]["fresh_points"] == 3
    for p in (rep / "search-plots").glob("*.png"):
        assert_real_png(p)
    story = parse_html(rep / "search.html")
    chosen = next(t for t in story.tables if t[0][0] == "budget ms")
    assert chosen[1][3] == "yes"  # predicted upper bound within the budget: the hard mode's guarantee
    assert chosen[1][5].startswith(("yes" if held else "NO") if judged else "not judged")  # what the run measured
