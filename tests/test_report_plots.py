"""What the plots show, read from each PNG's ``kdnas`` info chunk (titles, axis labels, legends, drawn tick labels):
the deployment heatmap names its metric, shape and colour bar, and says "fastest" when no metric is known; Pareto
panels come in a grid of at most two per row with no overlapping labels, and not at all without metrics; log axes
carry plain numbers; the run report counts episodes in whole numbers, tells one-shot from proxy scores and shows
the re-ranking rungs; its setup reads as words."""

from __future__ import annotations

import re
from pathlib import Path

from kdnas_bench.report.axes import nice_ticks
from kdnas_bench.report.compare import CompareResult, CompareRow, PredictorInfo
from kdnas_bench.report.deployment import deployment_matrix, matrix_png
from kdnas_bench.report.plots import pareto_pngs, pred_vs_measured_pngs, read_info, seq_pngs
from kdnas_bench.report.run_plots import run_pngs
from kdnas_bench.report.run_report import RunStory, run_document
from kdnas_bench.report.students import Student
from kdnas_bench.search.runfolder import EvalRecord
from kdnas_bench.space import Arch, Shape

from .helpers import assert_real_png

PLAIN = re.compile(r"^[0-9]+(\.[0-9]+)?$")
BACKENDS = ("torch", "onnxruntime", "onnxruntime-int8")


def _result(metrics: bool) -> CompareResult:
    archs = {"a": Arch(2, 128, 2, 256), "b": Arch(4, 256, 4, 1024), "c": Arch(6, 384, 6, 1536)}
    studs = [Student(n, a, "spec", metric=(0.7 + 0.05 * i) if metrics else None,
                     metric_name="accuracy" if metrics else None) for i, (n, a) in enumerate(archs.items())]
    rows, sweep = [], {}
    for k, b in enumerate(BACKENDS):
        for i, s in enumerate(studs):
            ms = (2.0 + 3 * i) / (1 + k)
            rows.append(CompareRow(s.name, "dev-0", b, 1, ms, 0.9 * ms, 1.1 * ms, None, 1.0, 1, 1,
                                   s.arch.to_dict(), 128, 1, False, s.metric, s.metric_name))
        sweep[f"dev-0 / {b} / 1t"] = {s.name: [(q, 1.0 * q / 64, 1.1 * q / 64, 1.2 * q / 64) for q in (16, 32, 64, 128, 256)]
                                      for s in studs}
    preds = [PredictorInfo("dev-0", b, 1, f"dev-0 / {b} / 1t", 0.95, False, False) for b in BACKENDS]
    return CompareResult(rows, studs, preds, Shape(1, 128), "a", "dev-0", sweep)


def _plain_ticks(info: dict, axes: list[int] | None = None) -> None:
    for i, ax in enumerate(info["axes"]):
        if axes is not None and i not in axes:
            continue
        for key in ("xticks", "yticks"):
            if ax[f"{key[0]}scale"] == "log":
                assert ax[key] and all(PLAIN.match(t.replace("\u2212", "-")) for t in ax[key]), (key, ax[key])


def test_nice_ticks_are_plain_1_2_5() -> None:
    assert nice_ticks(0.8, 60) == [1, 2, 5, 10, 20, 50]
    assert nice_ticks(1.3, 1.9) == [1.5]
    assert nice_ticks(1.1, 3.2) == [1.5, 2, 3]


def test_deployment_heatmap_names_its_metric_shape_and_colour_bar(tmp_path: Path) -> None:
    res = _result(metrics=True)
    cells = deployment_matrix(res, budget_ms=6.0)
    info = read_info(matrix_png(cells, tmp_path, budget_ms=6.0, budget_mb=None, shape=res.shape))
    assert_real_png(tmp_path / "deployment-matrix.png")
    heat, bar = info["axes"]
    assert "best accuracy\nwithin 6 ms" in heat["title"] and "batch 1 × seq 128" in heat["title"]
    assert bar["ylabel"] == "task metric: accuracy (fp32)" and info["colour"] == "metric"
    assert heat["yticks"] == ["dev-0"] and len(heat["xticks"]) == 3
    none = deployment_matrix(_result(metrics=False), budget_ms=6.0)
    assert all(c.chosen_by == "fastest" for c in none if c.student)
    info = read_info(matrix_png(none, tmp_path, budget_ms=6.0, budget_mb=None, shape=res.shape, name="m2.png"))
    assert "fastest student (no task metric known)" in info["axes"][0]["title"]
    assert "best" not in info["axes"][0]["title"] and info["colour"] == "latency"
    assert info["axes"][1]["ylabel"].startswith("latency (ms)")


def test_pareto_grid_plain_ticks_no_overlaps_and_none_without_metrics(tmp_path: Path) -> None:
    assert pareto_pngs(_result(metrics=False), tmp_path / "none") == []
    [png] = pareto_pngs(_result(metrics=True), tmp_path)
    info = read_info(png)
    assert info["grid"] == [2, 2] and info["label_overlaps"] == 0
    panels = [a for a in info["axes"] if a["title"]]
    assert len(panels) == 3 and all(a["ylabel"] == "task metric (accuracy)" for a in panels)
    assert all("Pareto front" in a["legend"] for a in panels)
    _plain_ticks(info)
    assert all(s["front"] == ["a", "b", "c"] for s in info["series"])


def test_seq_and_pred_vs_measured_plain_ticks_and_labels(tmp_path: Path) -> None:
    res = _result(metrics=False)
    for png in seq_pngs(res, tmp_path):
        info = read_info(png)
        assert info["axes"][0]["xticks"] == ["16", "32", "64", "128", "256"]
        _plain_ticks(info)
    res.rows[0].measured_ms = 2.1
    [png] = pred_vs_measured_pngs(res, tmp_path, None)
    info = read_info(png)
    assert any("held-out" in t for t in info["axes"][0]["legend"]) and info["heldout_within_10pct"] == 0.95
    _plain_ticks(info)


def _story(tmp_path: Path, kind: str) -> RunStory:
    evs = [EvalRecord(Arch(2, 64 * (1 + i % 3), 2, 256), i // 3, 0.6 + 0.01 * i, 1.0 + i, 1.1 + i,
                      {"5": 0.5 + 0.01 * i if i < 4 else None}, "accuracy") for i in range(9)]
    trail = [{"rung": 0, "examples": 500, "epochs": 2.0, "candidates": [
                {"arch": "2,128,2,256", "reward": 0.71, "metric": 0.70}, {"arch": "2,64,2,256", "reward": 0.69, "metric": 0.68}]},
             {"rung": 1, "examples": 1000, "epochs": 2.0,
              "candidates": [{"arch": "2,128,2,256", "reward": 0.73, "metric": 0.72}]}]
    winner = {"budget_ms": 5.0, "arch": Arch(2, 128, 2, 256).to_dict(), "predicted_latency_ms": 2.0,
              "predicted_latency_ms_high": 2.2, "proxy_metric": 0.72, "reward": 0.73}
    if kind == "supernet":
        winner |= {"oneshot_metric": 0.61, "rerank": trail}
        ev = {"kind": "supernet", "supernet": "runs/x/supernet", "teacher": "runs/teacher", "task": "sst2",
              "losses": "logits,ce", "rerank": {"top": 2, "examples": 500, "epochs": 2.0, "eta": 2}}
    else:
        ev = {"kind": "proxy-distill", "teacher": "runs/teacher", "task": "sst2", "proxy_examples": 2000, "epochs": 3.0,
              "losses": "logits,ce", "lr": 5e-4, "init": "inherit"}
    config = {"device_id": "dev-0", "backend": "torch", "threads": 1, "shape": {"batch": 1, "seq": 128},
              "reward": {"budgets_ms": [5.0], "w": -0.07, "mode": "hard"}, "strategy": "kdnas", "episodes": 3,
              "candidates": 3, "seed": 0, "evaluator": ev, "space": "minilm-students"}
    return RunStory(tmp_path / "run", config, evs, [winner], [], True)


def test_run_report_whole_episodes_scores_told_apart_and_rungs(tmp_path: Path) -> None:
    story = _story(tmp_path, "supernet")
    paths = {p.name: read_info(p) for p in run_pngs(story, tmp_path / "png")}
    assert set(paths) == {"reward-curve.png", "candidates.png", "rerank.png"}
    curve = paths["reward-curve.png"]["axes"][0]
    assert curve["xlabel"] == "episode" and all(t.isdigit() for t in curve["xticks"])
    cand, bar = paths["candidates.png"]["axes"]
    assert cand["ylabel"].startswith("one-shot accuracy") and paths["candidates.png"]["score"] == "one-shot"
    assert bar["ylabel"] == "episode" and bar["yticks"] == ["0", "1", "2"]
    _plain_ticks(paths["candidates.png"], [0])
    rerank = paths["rerank.png"]
    assert rerank["budgets"] == [{"budget_ms": 5.0, "rungs": 2, "candidates": 2, "survivor": "2,128,2,256"}]
    assert rerank["axes"][0]["xticks"][0].startswith("one-shot") and "rung 1" in rerank["axes"][0]["xticks"][2]
    assert {"survivor", "dropped at a rung"} <= set(rerank["axes"][0]["legend"])
    doc = run_document(story, [])
    setup = " ".join(doc.sections[0].paragraphs)
    assert "{" not in setup and "'" not in setup and "one-shot" in setup and "successive halving" in setup
    assert any(s.title.startswith("Re-ranking") for s in doc.sections)
    proxy = _story(tmp_path, "proxy")
    info = read_info(run_pngs(proxy, tmp_path / "p")[1])
    assert info["axes"][0]["ylabel"].startswith("proxy accuracy") and info["score"] == "proxy"
    assert "proxy distillation of each candidate" in " ".join(run_document(proxy, []).sections[0].paragraphs)
