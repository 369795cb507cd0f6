"""Deployment: ``distill --quantize int8`` (the int8 model's dev metric beside fp32) and the deployment matrix of
``compare --budget-ms`` (best student per device x backend; terminal, JSON, Markdown, HTML, one PNG)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kdnas_bench.deploy import INT8_FILE, evaluate_onnx
from kdnas_bench.report.compare import CompareResult, CompareRow, PredictorInfo
from kdnas_bench.report.deployment import deployment_matrix, matrix_png
from kdnas_bench.report.plots import read_info
from kdnas_bench.report.students import Student
from kdnas_bench.space import Arch, Shape

from .helpers import GLUE

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not (GLUE / "SST-2" / "dev.tsv").is_file(), reason="../shared/data/glue not present")
def test_distill_quantize_int8_reports_the_int8_metric_beside_fp32(tiny_teacher: Path, tiny_glue: Path,
                                                                    tmp_path: Path, run_cli) -> None:
    out = tmp_path / "student"
    code, stdout, err = run_cli("distill", "--teacher", str(tiny_teacher), "--task", "sst2", "--arch", "1,32,2,64",
                                "--data-dir", str(tiny_glue), "--max-examples", "64", "--epochs", "1", "--out", str(out),
                                "--quantize", "int8", "--threads", "1", "--json")
    assert code == 0, err
    res = json.loads(stdout)
    q = res["quantized"]
    assert (out / INT8_FILE).is_file() and q["onnx"] == str(out / INT8_FILE)
    assert q["fp32_metric"] == res["metrics"]["accuracy"]
    assert q["drop_points"] == pytest.approx(100 * (q["fp32_metric"] - q["metric"]))
    assert q["onnx_bytes"]["int8"] < 0.5 * q["onnx_bytes"]["fp32"]
    # the reported int8 metric is the quantized file's, and the fp32 export scores what torch scored
    assert evaluate_onnx(out / INT8_FILE, "sst2", data_dir=tiny_glue, tokenizer_dir=out)["accuracy"] == q["metric"]
    assert evaluate_onnx(out / "model.onnx", "sst2", data_dir=tiny_glue, tokenizer_dir=out)["accuracy"] == \
        pytest.approx(res["metrics"]["accuracy"], abs=1 / 120)  # at most one of 120 dev examples flips
    assert json.loads((out / "metrics.json").read_text())["quantized"]["metric"] == q["metric"]
    code, _, err = run_cli("distill", "--teacher", str(tiny_teacher), "--task", "sst2", "--arch", "1,32,2,64",
                           "--data-dir", str(tiny_glue), "--quantize", "int8")
    assert code == 2 and "--quantize needs --out" in err and len(err.strip().splitlines()) == 1


def _row(student: str, backend: str, ms: float, metric: float | None, measured: float | None = None) -> CompareRow:
    a = {"layers": 2, "hidden": 128, "heads": 2, "ffn": 256}
    return CompareRow(student, "dev", backend, 1, ms, 0.9 * ms, 1.1 * ms, measured, 1.0, 1, 1, a, 128, 1, False,
                      metric, "accuracy")


def _result() -> CompareResult:
    studs = [Student("small", Arch(2, 128, 2, 256), "spec", metric=0.80, metric_name="accuracy",
                     extra={"int8_metric": 0.70}),
             Student("big", Arch(4, 256, 4, 1024), "spec", metric=0.85, metric_name="accuracy")]
    rows = [_row("small", "torch", 2.0, 0.80, 2.1), _row("big", "torch", 9.0, 0.85, 9.5),
            _row("small", "onnxruntime-int8", 1.0, 0.80), _row("big", "onnxruntime-int8", 4.0, 0.85),
            _row("small", "onnxruntime", 20.0, 0.80), _row("big", "onnxruntime", 40.0, 0.85)]
    preds = [PredictorInfo("dev", b, 1, f"dev / {b} / 1t", 0.95, False, b == "torch")
             for b in ("torch", "onnxruntime-int8", "onnxruntime")]
    return CompareResult(rows, studs, preds, Shape(1, 128), "small", "dev")


def test_deployment_matrix_picks_the_best_student_within_the_budget(tmp_path: Path) -> None:
    measured: list[tuple[str, str]] = []

    def mem(arch: Arch, backend: str, threads: int) -> float:
        measured.append((str(arch), backend))
        return 123.0

    cells = {c.backend: c for c in deployment_matrix(_result(), budget_ms=5.0, measure_memory=mem)}
    assert cells["torch"].student == "small" and cells["torch"].measured_ms == 2.1  # big is over budget (9.9 ms)
    assert cells["torch"].measured_peak_mb == 123.0 and measured == [("2,128,2,256", "torch")]  # local only
    int8 = cells["onnxruntime-int8"]  # both fit; big wins on its fp32 metric, small's int8 metric is 0.70
    assert int8.student == "big" and int8.metric == 0.85 and int8.metric_precision == "fp32" and int8.feasible == 2
    assert cells["onnxruntime"].student is None and cells["onnxruntime"].feasible == 0
    tight = {c.backend: c for c in deployment_matrix(_result(), budget_ms=1.5)}
    assert tight["onnxruntime-int8"].student == "small" and tight["onnxruntime-int8"].metric == 0.70
    assert tight["onnxruntime-int8"].metric_precision == "int8"
    no_memory = deployment_matrix(_result(), budget_ms=5.0, budget_mb=100.0)  # no predictor has a memory model
    assert all(c.student is None and c.note and "memory model" in c.note for c in no_memory)
    png = matrix_png(list(cells.values()), tmp_path, budget_ms=5.0, budget_mb=None)
    info = read_info(png)
    assert info["kind"] == "deployment-matrix" and info["cells"] == 3 and info["backends"] == 3


def test_cli_compare_budget_shows_the_matrix_everywhere(tmp_path: Path, run_cli) -> None:
    html, md, png = tmp_path / "r.html", tmp_path / "r.md", tmp_path / "plots"
    args = ("compare", "--students", "bert-tiny,bert-mini,bert-small", "--budget-ms", "6", "--no-measure",
            "--predictors", str(ROOT / "predictors"))
    code, out, err = run_cli(*args, "--json", "--html", str(html), "--md", str(md), "--png", str(png))
    assert code == 0, err
    doc = json.loads(out)
    n_pred = len(list((ROOT / "predictors").glob("*/*/meta.json")))
    assert len(doc["matrix"]) == n_pred and len(doc["rows"]) == 3 * n_pred
    for cell in doc["matrix"]:
        fits = [r for r in doc["rows"] if (r["device_id"], r["backend"], r["threads"]) ==
                (cell["device_id"], cell["backend"], cell["threads"]) and r["latency_ms_high"] <= 6]
        assert cell["feasible"] == len(fits)
        if fits:  # no metric is known for named students: the fastest feasible one
            assert cell["student"] == min(fits, key=lambda r: r["latency_ms"])["student"]
    assert (png / "deployment-matrix.png").is_file()
    assert "## Deployment matrix" in md.read_text() and "deployment matrix" in html.read_text()
    code, out, _ = run_cli(*args)
    assert code == 0 and "deployment matrix" in out
    code, _, err = run_cli("compare", "--students", "bert-tiny", "--budget-mb", "100", "--no-measure")
    assert code == 2 and "--budget-mb goes with --budget-ms" in err


@pytest.mark.skipif(not (GLUE / "SST-2" / "dev.tsv").is_file(), reason="../shared/data/glue not present")
def test_final_on_an_int8_backend_measures_the_deployed_int8_model(tiny_teacher: Path, tiny_glue: Path,
                                                                  tmp_path: Path) -> None:
    from kdnas_bench.keys import DatasetKey
    from kdnas_bench.profiling.device import hardware
    from kdnas_bench.search.final import FinalJob, finalize
    from kdnas_bench.search.recipe import Recipe
    from kdnas_bench.search.study import SearchResult, Winner

    arch = Arch(1, 32, 2, 64)
    result = SearchResult([Winner(50.0, arch, 0.5, 0.6, 0.5, 0.5)], 1, str(tmp_path), [])
    key = DatasetKey(hardware(with_gpu=False).device_id, "onnxruntime-int8", 1)
    result = finalize(result, FinalJob(str(tiny_teacher), "sst2", key, Shape(1, 16), Recipe(64, 1.0, "logits"),
                                       data_dir=str(tiny_glue), budget_mb=2000.0))
    w = result.winners[0].extra
    student = Path(w["student_dir"])
    assert w["deployed"] == str(student / INT8_FILE) and (student / INT8_FILE).is_file()
    assert w["deployed_metric"] == w["quantized"]["metric"] and w["quantized"]["fp32_metric"] == w["final_metric"]
    assert w["measured_latency_ms"] > 0 and "measured_cv" in w  # the int8 file itself, timed here
    judged = w["budget_verdict"] != "not judged"  # a noisy machine's timing judges no budget
    assert w["budget_held"] is (True if judged else None), w["budget_verdict_text"]
    assert 0 < w["measured_peak_mb"] <= 2000 and w["memory_held"] is True
    assert w["weight_mb"] < 0.5 * (student / "model.onnx").stat().st_size / 2**20  # int8 weights were deployed
