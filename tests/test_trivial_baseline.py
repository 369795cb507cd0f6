"""Trivial baselines: every task knows what its dev set scores with a constant answer; ``teacher finetune`` records
it and warns about a teacher that does not beat it; ``distill`` and ``search`` refuse such a teacher unless
``--allow-weak-teacher``; every table shows the trivial score beside the teacher's and marks students below it."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from kdnas_bench.distill.baseline import WEAK_MARGIN, baseline_of, check_teacher, trivial_baseline
from kdnas_bench.distill.data import get_task
from kdnas_bench.distill.teacher import TeacherError

from .helpers import DEV, GLUE, TINY_SPACE, save_tiny

STUDENT = "1,32,2,64"


# -- the baseline itself ---------------------------------------------------------------------------------
def test_majority_class_scores_each_metric_as_the_best_constant() -> None:
    mrpc = get_task("mrpc")  # f1 (of class 1) and accuracy
    gold = np.array([1] * 7 + [0] * 3)
    b = baseline_of(mrpc, gold)
    assert b.primary_metric == "f1" and b.metrics["accuracy"] == pytest.approx(0.7)
    assert b.primary == pytest.approx(2 * 7 / (2 * 7 + 3))  # always '1': tp 7, fp 3, fn 0
    assert b.answers["f1"] == "always '1'"
    minority = baseline_of(mrpc, np.array([1] * 3 + [0] * 7))  # always '1' still scores f1 above 0
    assert minority.metrics["accuracy"] == pytest.approx(0.7) and minority.answers["accuracy"] == "always '0'"
    assert minority.metrics["f1"] == pytest.approx(6 / 13) and minority.answers["f1"] == "always '1'"
    cola = baseline_of(get_task("cola"), gold)
    assert cola.primary == 0.0 and cola.metrics["accuracy"] == pytest.approx(0.7)  # Matthews of a constant: 0


def test_regression_baseline_is_the_mean_reported_as_zero_and_says_so() -> None:
    b = baseline_of(get_task("stsb"), np.array([0.5, 2.0, 4.5, 3.0], dtype=np.float32))
    assert b.metrics == {"pearson": 0.0, "spearman": 0.0}
    assert "undefined" in b.note and b.answers["pearson"] == "the mean 2.5"


@pytest.mark.skipif(not (GLUE / "MRPC" / "dev.tsv").is_file(), reason="needs the GLUE folder")
def test_the_real_glue_dev_sets() -> None:
    expected = {"mrpc": ("f1", 0.8122, {"accuracy": 0.6838}), "rte": ("accuracy", 0.5271, {}),
                "sst2": ("accuracy", 0.5092, {}), "cola": ("matthews", 0.0, {"accuracy": 0.6913}),
                "stsb": ("pearson", 0.0, {"spearman": 0.0})}
    for task, (metric, primary, others) in expected.items():
        b = trivial_baseline(task, GLUE)
        assert b.primary_metric == metric and b.primary == pytest.approx(primary, abs=1e-4), task
        for name, value in others.items():
            assert b.metrics[name] == pytest.approx(value, abs=1e-4), (task, name)


# -- a teacher that learned nothing ------------------------------------------------------------------------
def _majority(glue: Path) -> int:
    """The majority class of the SST-2 dev file."""
    lines = (glue / "SST-2" / "dev.tsv").read_text().splitlines()[1:]
    return int(np.bincount([int(line.split("\t")[-1]) for line in lines]).argmax())


@pytest.fixture(scope="module")
def constant_backbone(tmp_path_factory: pytest.TempPathFactory, tiny_glue: Path) -> Path:
    """A tiny 2-label model whose classifier always answers the dev set's majority class."""
    path = save_tiny(tmp_path_factory.mktemp("constant"), 2)
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(path)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([-50.0, 50.0] if _majority(tiny_glue) else [50.0, -50.0]))
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def weak_teacher(constant_backbone: Path, tiny_glue: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kdnas_bench.distill import finetune

    out = tmp_path_factory.mktemp("weak") / "teacher"
    r = finetune("sst2", backbone=constant_backbone, data_dir=tiny_glue, max_examples=32, epochs=1.0, lr=1e-9,
                 batch_size=16, out=out)
    assert r.weak and r.primary == pytest.approx(r.baseline["primary"])  # it answers the constant
    return out


def test_finetune_records_the_baseline_and_warns(constant_backbone: Path, tiny_glue: Path, tmp_path: Path,
                                                 run_cli) -> None:
    code, out, err = run_cli("teacher", "finetune", "--backbone", str(constant_backbone), "--task", "sst2",
                             "--data-dir", str(tiny_glue), "--max-examples", "32", "--lr", "1e-9", "--out",
                             str(tmp_path / "t"), "--json")
    assert code == 0, err
    res = json.loads(out)
    saved = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert res["weak"] is True and saved["weak"] is True and saved["baseline"] == res["baseline"]
    assert saved["baseline"]["margin"] == WEAK_MARGIN and saved["baseline"]["dev_examples"] == 120
    warning = [line for line in err.splitlines() if line.startswith("warning: teacher")]
    assert len(warning) == 1 and "trivial answer scores accuracy" in warning[0], err
    assert "--allow-weak-teacher" in warning[0]


def test_distill_refuses_a_weak_teacher_unless_allowed(weak_teacher: Path, tiny_glue: Path, tmp_path: Path,
                                                       run_cli) -> None:
    args = ["distill", "--teacher", str(weak_teacher), "--task", "sst2", "--data-dir", str(tiny_glue), "--arch",
            STUDENT, "--max-examples", "32", "--epochs", "1", "--out", str(tmp_path / "s"), "--json"]
    code, _, err = run_cli(*args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert "scores dev accuracy" in lines[0] and "the trivial answer scores accuracy" in lines[0]
    assert "--allow-weak-teacher" in lines[0]
    assert not (tmp_path / "s").exists()  # refused before any work
    with pytest.raises(TeacherError, match="does not beat it by 2 points"):
        check_teacher(weak_teacher, "sst2", tiny_glue)

    code, out, err = run_cli(*args, "--allow-weak-teacher")
    assert code == 0, err
    assert "warning: teacher" in err
    res = json.loads(out)
    assert res["baseline"]["weak"] is True and res["baseline"]["trivial"] == pytest.approx(res["baseline"]["teacher_score"])
    assert res["below_trivial"] == (res["primary"] < res["baseline"]["trivial"])
    assert json.loads((tmp_path / "s" / "metrics.json").read_text())["baseline"] == res["baseline"]


def test_search_refuses_a_weak_teacher_unless_allowed(weak_teacher: Path, tiny_glue: Path, preds: Path,
                                                      tmp_path: Path, run_cli) -> None:
    run = tmp_path / "run"
    args = ["search", "--device", DEV, "--backend", "torch", "--budget-ms", "50", "--task", "sst2", "--teacher",
            str(weak_teacher), "--data-dir", str(tiny_glue), "--space", str(TINY_SPACE), "--predictors", str(preds),
            "--episodes", "1", "--candidates", "2", "--evaluator", "proxy", "--head-dim", "any", "--proxy-examples",
            "32", "--proxy-epochs", "1", "--out", str(run)]
    code, _, err = run_cli(*args, "--json")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "the trivial answer scores accuracy" in lines[0], err
    assert not (run / "run.json").exists() and not (run / "evaluations.jsonl").exists()

    code, out, err = run_cli(*args, "--allow-weak-teacher")
    assert code == 0, err
    assert "WEAK" in out and "trivial" in out  # the winners table's caption
    result = json.loads((run / "result.json").read_text())
    assert result["baseline"]["weak"] is True and result["baseline"]["metric"] == "accuracy"
    code, out, err = run_cli("report", str(run), "--json")
    assert code == 0, err
    assert json.loads(out)["baseline"]["trivial"] == pytest.approx(result["baseline"]["trivial"])
    code, out, err = run_cli("report", str(run))
    assert code == 0 and "Trivial baseline: dev accuracy" in out and "does NOT beat it" in out, err

    from kdnas_bench.report.render import metric_cells, trivial_note
    from kdnas_bench.report.students import students_from_run

    students = students_from_run(run)  # what compare shows: the teacher and the winners, each with the trivial score
    trivial = result["baseline"]["trivial"]
    assert [s.source for s in students] == ["teacher", "search-winner"]
    assert all(s.extra["trivial"] == pytest.approx(trivial) for s in students)
    shown = SimpleNamespace(students=students)
    cells = metric_cells(shown)  # type: ignore[arg-type]
    assert cells is not None and "< trivial" not in cells[0]  # the teacher is not a student below it
    winner = students[1]
    assert cells[1].endswith("< trivial") == (winner.metric is not None and winner.metric < trivial)
    assert f"sst2 accuracy {trivial:.4f}" in trivial_note(shown)  # type: ignore[arg-type]


def test_a_strong_or_unrecorded_teacher_goes_on(tiny_teacher: Path, tiny_glue: Path, tmp_path: Path) -> None:
    unrecorded = check_teacher(tiny_teacher, "sst2", tiny_glue)  # no metrics.json: not judged, said so
    assert unrecorded.score is None and not unrecorded.weak and "not judged" in unrecorded.message
    strong = save_tiny(tmp_path / "strong", 2)
    (strong / "metrics.json").write_text(json.dumps({"task": "sst2", "metrics": {"accuracy": 0.9}}))
    checked = check_teacher(strong, "sst2", tiny_glue)
    assert checked.score == 0.9 and not checked.weak
    (strong / "metrics.json").write_text(json.dumps({"task": "rte", "metrics": {"accuracy": 0.1}}))
    other = check_teacher(strong, "sst2", tiny_glue)  # recorded for another task: says nothing about this one
    assert other.score is None and "for task rte" in other.message
