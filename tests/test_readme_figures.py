"""The README's figures are what ships: its predictor headline is what `kdnas-bench predictors` shows for the
committed predictors, and the deployment-matrix picture is the one its documented command draws from the
committed results (with a colour bar, a legend for the cells without a colour, "teacher" where the teacher is)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from kdnas_bench.report.plots import read_info

from .conftest import ROOT

PNG = ROOT / "benchmarks" / "results" / "deployment-matrix.png"


def _predictors(run_cli) -> list[dict[str, Any]]:
    code, out, err = run_cli("predictors", "--json")
    assert code == 0, err
    return json.loads(out)


def test_readme_headline_is_what_predictors_shows(run_cli) -> None:
    rows = _predictors(run_cli)
    cpu = [r["metrics"]["within_10pct"] for r in rows if "cuda" not in r["backend"]]
    gpu = [r["metrics"]["within_10pct"] for r in rows if "cuda" in r["backend"]]
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert f"{100 * min(cpu):.1f}–{100 * max(cpu):.1f} % of held-out configs within ±10 %" in readme
    assert gpu and all(v == 1.0 for v in gpu) and "100 % on the two GPUs" in readme
    assert "99 %" not in readme


def _draw_script() -> Any:
    spec = importlib.util.spec_from_file_location("draw_deployment_matrix", ROOT / "benchmarks" /
                                                  "draw_deployment_matrix.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_deployment_matrix_picture_is_the_documented_redraw(tmp_path: Path, monkeypatch: Any) -> None:
    script = _draw_script()
    monkeypatch.setattr("sys.argv", ["draw_deployment_matrix.py", "--out", str(tmp_path)])
    script.main()
    fresh = read_info(tmp_path / "deployment-matrix.png")
    committed = read_info(PNG)
    assert committed == fresh  # the committed picture is what the command draws today
    heat, bar = fresh["axes"]
    assert bar["ylabel"].startswith("task metric: accuracy")
    assert heat["title"].startswith("Deployment matrix: the student with the best accuracy")
    assert fresh["not_measured"] > 0 and any("not measured" in t for t in heat["legend"])
    gpu = [t for t, c in zip(fresh["cell_texts"], json.loads((ROOT / "benchmarks" / "results" /
                                                               "deployment_matrix.json").read_text())["matrix"],
                             strict=True) if "cuda" in c["backend"]]
    assert gpu and all(t.startswith("teacher\n") for t in gpu)
    assert not any(t.startswith("sst2") for t in fresh["cell_texts"])
    assert fresh["size"][0] <= 1400  # drawn for a page's width (fonts stay readable when scaled to it)
    docs = (ROOT / "docs" / "results" / "deployment.md").read_text(encoding="utf-8")
    assert "python benchmarks/draw_deployment_matrix.py" in docs
    assert (ROOT / "docs" / "assets" / "deployment-matrix.png").resolve() == PNG.resolve()
