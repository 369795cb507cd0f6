"""The claims report (benchmarks/claims_report.py): a baseline added to an earlier task entry keeps the earlier
students, takes every latency and the budget from the new timing run, and a second report does not merge twice."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
claims_report = pytest.importorskip("claims_report")


def _earlier() -> dict:
    def st(arch: str, values: list[float], ms: float) -> dict:
        return {"arch": arch, "params": 1, "values": values, "seeds": len(values), "metric_mean": sum(values) / len(values),
                "metric_std": 0.01, "measured_ms": ms, "share_of_teacher": 0.9}
    return {"task": "sst2", "metric_name": "accuracy", "teacher_metric": 0.90, "teacher_ms": 40.0, "budget_ms": 40 / 3,
            "teacher": {"metric": 0.90, "measured_ms": 40.0},
            "plan": {"budget_ms": 12.75, "final": {"train_total": 100, "epochs": 1.0}},
            "students": {"searched": st("3,384,12,256", [0.87, 0.871, 0.869], 10.6),
                         "minilm-scaled": st("6,160,5,640", [0.85, 0.851, 0.852], 9.7)}}


def _new_run(root: Path, teacher_metric: float, dropped: list[float], lat: dict[str, float]) -> None:
    teacher = root / "teachers" / "sst2"
    teacher.mkdir(parents=True)
    (teacher / "metrics.json").write_text(json.dumps({"primary_metric": "accuracy",
                                                      "metrics": {"accuracy": teacher_metric}}))
    final = {"examples": 100, "train_total": 100, "epochs": 1.0, "losses": "logits,ce", "lr": 2e-4, "batching": "length",
             "init": "inherited (importance-rewired teacher)", "seeds": 3}
    work = root / "sst2"
    work.mkdir()
    (work / "plan.json").write_text(json.dumps({
        "task": "sst2", "budget_ms": 12.75, "teacher_ms": 38.26, "teacher": str(teacher), "final": final,
        "students": {"layer-dropped": {"arch": "1,384,12,1536", "predicted_ms": 6.9, "params": 2}}}))
    from bench_claims import _recipe

    with (work / "finals.jsonl").open("w") as fh:
        for seed, v in enumerate(dropped):
            fh.write(json.dumps({"name": "layer-dropped", "arch": "1,384,12,1536", "seed": seed, "metric": v,
                                 "recipe": _recipe(final)}) + "\n")
    (work / "latency.json").write_text(json.dumps({"device_id": "dev-x", "method": "interleaved", "ms": lat}))


def test_a_baseline_added_to_an_earlier_entry_takes_the_new_timing(tmp_path: Path) -> None:
    out = tmp_path / "claims.json"
    out.write_text(json.dumps({"schema": 2, "tasks": {"sst2": _earlier()}, "commands": []}))
    root = tmp_path / "work"
    _new_run(root, 0.90, [0.84, 0.845, 0.842], {"teacher": 30.0, "searched": 8.0, "minilm-scaled": 10.5,
                                                 "layer-dropped": 5.0})
    for _ in range(2):  # the second report starts again from the earlier run's own entry
        doc = claims_report.build_report(root, ["sst2"], out, extra={}, apart=[], command="report",
                                         data_dir=tmp_path / "no-data", add_to_earlier=["sst2"])
    e = doc["tasks"]["sst2"]
    assert set(e["students"]) == {"searched", "minilm-scaled", "layer-dropped"}
    assert e["teacher_ms"] == 30.0 and e["budget_ms"] == pytest.approx(10.0)
    assert e["earlier_latency"]["teacher_ms"] == 40.0 and e["earlier_latency"]["students_ms"]["searched"] == 10.6
    assert e["students"]["searched"]["measured_ms"] == 8.0
    assert e["students"]["minilm-scaled"]["within_budget"] is False  # 10.5 ms > 30 / 3 on the new timing
    assert e["students"]["layer-dropped"]["added"] and e["students"]["layer-dropped"]["seeds"] == 3
    assert e["added"]["same_teacher_metric"] is True
    assert e["source"].count("added by this run") == 1
    # claim (b)'s rival: the only hand-crafted student within the new budget is the layer-dropped teacher
    assert e["claim_b"]["best_hand"] == "layer-dropped"
    assert e["claim_b"]["verdict"] == "ahead"


def test_without_a_new_run_the_earlier_entry_is_carried(tmp_path: Path) -> None:
    out = tmp_path / "claims.json"
    out.write_text(json.dumps({"schema": 2, "tasks": {"sst2": _earlier()}, "commands": []}))
    doc = claims_report.build_report(tmp_path / "empty", ["sst2"], out, extra={}, apart=[], command="report",
                                     data_dir=tmp_path / "no-data", add_to_earlier=["sst2"])
    e = doc["tasks"]["sst2"]
    assert set(e["students"]) == {"searched", "minilm-scaled"}
    assert e["teacher_ms"] == 40.0 and e["students"]["searched"]["measured_ms"] == 10.6


def _rank_file(path: Path, task: str, taus: dict[str, float], n: int = 12) -> str:
    methods = {m: {"kendall_tau": t, "spearman": t, "cpu_seconds_per_candidate": 1.0} for m, t in taus.items()}
    methods["reference"] = {"cpu_seconds_per_candidate": 100.0}
    path.write_text(json.dumps({"task": task, "students": [f"{i + 1},128,2,256" for i in range(n)], "metric": "pearson",
                                "supernet": {"examples": 10, "epochs": 2.0, "steps": 3, "train_seconds": 1.0},
                                "reference": {"examples": 10, "epochs": 3.0}, "methods": methods}))
    return str(path)


def test_rank_fidelity_goal_needs_tau_and_twelve_students(tmp_path: Path) -> None:
    met = claims_report.rank_fidelity_entry(_rank_file(tmp_path / "a.json", "stsb", {"supernet": 0.82, "proxy": 0.5}))
    assert met["best"] == "supernet" and met["met"] is True
    low = claims_report.rank_fidelity_entry(_rank_file(tmp_path / "b.json", "mrpc", {"supernet": 0.64, "proxy": 0.79}))
    assert low["best"] == "proxy" and low["met"] is False
    few = claims_report.rank_fidelity_entry(_rank_file(tmp_path / "c.json", "rte", {"supernet": 0.9}, n=8))
    assert few["met"] is False


def test_rank_fidelity_records_one_per_task_and_keep_earlier_tasks(tmp_path: Path) -> None:
    out = tmp_path / "claims.json"
    mrpc = claims_report.rank_fidelity_entry(_rank_file(tmp_path / "m.json", "mrpc", {"supernet": 0.64}))
    out.write_text(json.dumps({"schema": 2, "tasks": {"sst2": _earlier()}, "commands": [], "rank_fidelity": mrpc}))
    stsb = claims_report.rank_fidelity_entry(_rank_file(tmp_path / "s.json", "stsb", {"supernet": 0.7}))
    kw = dict(extra={}, apart=[], command="report", data_dir=tmp_path / "no-data")
    doc = claims_report.build_report(tmp_path / "empty", ["sst2"], out, rank_fidelity=[stsb], **kw)
    assert [r["task"] for r in doc["rank_fidelity"]] == ["mrpc", "stsb"]  # the earlier single record kept
    again = claims_report.rank_fidelity_entry(_rank_file(tmp_path / "s2.json", "stsb", {"supernet": 0.85}))
    doc = claims_report.build_report(tmp_path / "empty", ["sst2"], out, rank_fidelity=[again], **kw)
    assert [(r["task"], r["met"]) for r in doc["rank_fidelity"]] == [("mrpc", False), ("stsb", True)]
    doc = claims_report.build_report(tmp_path / "empty", ["sst2"], out, **kw)  # no new file: both carried
    assert [r["task"] for r in doc["rank_fidelity"]] == ["mrpc", "stsb"]


def test_mrpc_is_judged_by_the_mean_of_f1_and_accuracy() -> None:
    assert claims_report.judged_score("mrpc", {"f1": 0.84, "accuracy": 0.76}, 0.84) == pytest.approx(0.80)
    assert claims_report.judged_score("sst2", {"accuracy": 0.9}, 0.9) == 0.9
    assert claims_report.judged_name("mrpc", "f1") == "mean of f1 and accuracy"
    with pytest.raises(ValueError, match="lacks f1, accuracy"):
        claims_report.judged_score("mrpc", {"f1": 0.84}, 0.84)  # never silently F1 alone


def _mrpc_run(root: Path, data: Path, students: dict[str, tuple[str, list[tuple[float, float]], float]]) -> None:
    """An MRPC work area: a dev set of 7 paraphrases and 3 not (always "paraphrase": F1 0.8235, accuracy 0.70),
    a teacher of F1 0.84 / accuracy 0.76, and ``students``: name -> (arch, [(f1, accuracy) per seed], ms)."""
    (data / "MRPC").mkdir(parents=True)
    rows = ["\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String"]
    rows += [f"{int(i < 7)}\t{i}\t{i + 100}\tsentence a {i} .\tsentence b {i} ." for i in range(10)]
    (data / "MRPC" / "dev.tsv").write_text("\n".join(rows) + "\n")
    teacher = root / "teachers" / "mrpc"
    teacher.mkdir(parents=True)
    (teacher / "metrics.json").write_text(json.dumps({"primary_metric": "f1", "metrics": {"f1": 0.84, "accuracy": 0.76}}))
    final = {"examples": 100, "train_total": 100, "epochs": 3.0, "losses": "logits,ce", "lr": 2e-4, "batching": "length",
             "init": "inherited (importance-rewired teacher)", "seeds": 3}
    work = root / "mrpc"
    work.mkdir()
    (work / "plan.json").write_text(json.dumps({
        "task": "mrpc", "budget_ms": 10.0, "teacher": str(teacher), "final": final,
        "students": {n: {"arch": a, "predicted_ms": ms, "params": 1} for n, (a, _, ms) in students.items()}}))
    from bench_claims import _recipe

    with (work / "finals.jsonl").open("w") as fh:
        for name, (arch, seeds, _) in students.items():
            for seed, (f1, acc) in enumerate(seeds):
                fh.write(json.dumps({"name": name, "arch": arch, "seed": seed, "metric": f1,
                                     "metrics": {"f1": f1, "accuracy": acc}, "recipe": _recipe(final)}) + "\n")
    lat = {"teacher": 30.0, **{n: ms for n, (_, _, ms) in students.items()}}
    (work / "latency.json").write_text(json.dumps({"device_id": "dev-x", "method": "interleaved", "ms": lat}))


def test_mrpc_report_judges_the_glue_mean_and_never_counts_a_student_below_the_constant(tmp_path: Path) -> None:
    root, data, out = tmp_path / "work", tmp_path / "glue", tmp_path / "claims.json"
    _mrpc_run(root, data, {
        "searched": ("4,256,8,640", [(0.85, 0.78), (0.86, 0.79), (0.855, 0.785)], 9.0),
        # the highest F1 of the hand-crafted ones, yet below the constant answer on the GLUE mean: no rival
        "tinybert-whole-heads": ("4,256,8,984", [(0.83, 0.68), (0.831, 0.68), (0.832, 0.68)], 9.5),
        "minilm-scaled": ("6,192,6,768", [(0.80, 0.76), (0.81, 0.76), (0.80, 0.765)], 9.8)})
    doc = claims_report.build_report(root, ["mrpc"], out, extra={}, apart=[], command="report", data_dir=data)
    e = doc["tasks"]["mrpc"]
    assert e["metric_name"] == "mean of f1 and accuracy"
    assert e["teacher_metric"] == pytest.approx(0.80)
    assert e["teacher"]["majority_baseline"] == pytest.approx((14 / 17 + 0.7) / 2)
    searched = e["students"]["searched"]
    assert searched["metric_mean"] == pytest.approx((0.855 + 0.785) / 2)
    assert searched["metrics_mean"]["f1"] == pytest.approx(0.855)  # F1 kept beside the judged figure
    assert e["students"]["tinybert-whole-heads"]["below_trivial"] is True  # F1 0.83 > 0.8235, the mean is not
    assert searched["below_trivial"] is False
    b = e["claim_b"]
    assert b["best_hand"] == "minilm-scaled" and b["below_constant_answer"] == ["tinybert-whole-heads"]
    assert b["diff"] == pytest.approx((0.855 + 0.785) / 2 - (0.8033333 + 0.7616667) / 2, abs=1e-6)
    assert b["searched_share_of_budget"] == pytest.approx(0.9)
    assert doc["claims"]["b"]["diff_vs_best_hand"]["mrpc"] == pytest.approx(b["diff"])
    text = claims_report.table(doc["tasks"])
    assert "| mrpc | searched | 4,256,8,640 | 82.00 ± 0.50 (3) (f1 85.50) |" in text
    assert "(f1 83.10) **below the constant answer**" in text


def test_a_searched_student_below_the_constant_answer_is_not_counted(tmp_path: Path) -> None:
    root, data, out = tmp_path / "work", tmp_path / "glue", tmp_path / "claims.json"
    _mrpc_run(root, data, {
        "searched": ("4,256,8,640", [(0.83, 0.68), (0.83, 0.69), (0.83, 0.68)], 9.0),
        "minilm-scaled": ("6,192,6,768", [(0.80, 0.76), (0.81, 0.76), (0.80, 0.765)], 9.8)})
    doc = claims_report.build_report(root, ["mrpc"], out, extra={}, apart=[], command="report", data_dir=data)
    assert doc["tasks"]["mrpc"]["claim_b"]["counted"] is False
    assert doc["claims"]["not_counted_below_constant_answer"] == ["mrpc"]
    assert doc["claims"]["tasks_in_averages"] == [] and doc["claims"]["b"]["average_diff"] is None
    # what leaving it out changes is said beside it: the gap as if it counted
    assert doc["claims"]["b"]["average_diff_with_not_counted"] == pytest.approx((0.83 + 0.6833333) / 2 - 0.7825)


def test_the_searched_row_must_be_its_search_runs_winner(tmp_path: Path) -> None:
    bench_claims = pytest.importorskip("bench_claims")
    root, data, out = tmp_path / "work", tmp_path / "glue", tmp_path / "claims.json"
    _mrpc_run(root, data, {"searched": ("4,256,8,640", [(0.85, 0.78), (0.86, 0.79)], 9.0),
                           "minilm-scaled": ("6,192,6,768", [(0.80, 0.76), (0.81, 0.76)], 9.8)})
    run = root / "search-mrpc-default"
    run.mkdir()
    win = {"budget_ms": 11.88, "arch": {"layers": 4, "hidden": 256, "heads": 8, "ffn": 640},
           "predicted_latency_ms": 10.1, "share_of_budget": 0.93, "latency_source": "measured"}
    (run / "result.json").write_text(json.dumps({"winners": [win], "evaluations": 100}))
    arch, search = bench_claims.search_run_winner(run)
    assert str(arch) == "4,256,8,640" and search["budget_ms"] == 11.88 and search["run_folder"] == run.name
    assert search["winner"]["share_of_budget"] == 0.93
    with pytest.raises(SystemExit, match="is not the winner"):
        bench_claims.search_run_winner(run, "4,256,8,512")
    plan = json.loads((root / "mrpc" / "plan.json").read_text())
    plan.update(search=search, searched_from="kdnas-bench search --task mrpc ...")
    (root / "mrpc" / "plan.json").write_text(json.dumps(plan))
    doc = claims_report.build_report(root, ["mrpc"], out, extra={}, apart=[], command="report", data_dir=data)
    e = doc["tasks"]["mrpc"]
    assert e["search"]["command"] == "kdnas-bench search --task mrpc ..." and e["search_budget_ms"] == 11.88
    assert e["search"]["result"] == str(run / "result.json")
    win["arch"]["ffn"] = 512  # the run folder now names another winner than the row
    (run / "result.json").write_text(json.dumps({"winners": [win]}))
    with pytest.raises(SystemExit, match="picked 4,256,8,512"):
        claims_report.build_report(root, ["mrpc"], out, extra={}, apart=[], command="report", data_dir=data)


def test_claim_b_is_not_met_when_a_searched_student_runs_over_its_measured_budget() -> None:
    """Claim (b) compares students at the same measured budget: a searched student measured over it is said, and the
    claim is not met however large its lead."""
    def task(searched_ms: float) -> dict:
        return {"students": {"searched": {"share_of_teacher": 0.99}}, "teacher": {},
                "claim_b": {"diff": 0.02, "verdict": "ahead", "searched_within_budget": searched_ms <= 12.9}}

    tasks = {"sst2": task(10.0), "stsb": task(13.1)}
    b = claims_report._summary(tasks, [])["b"]
    assert b["searched_over_budget"] == ["stsb"] and b["met"] is False
    assert b["average_diff"] == pytest.approx(0.02) and b["distinguishable_ahead"] == ["sst2", "stsb"]
    assert claims_report._summary({"sst2": task(10.0), "stsb": task(12.0)}, [])["b"]["met"] is True


def test_when_every_hand_crafted_student_is_below_the_constant_the_constant_is_the_rival(tmp_path: Path) -> None:
    """A searched student above the constant answer, every hand-crafted one that fits below it: claim (b) is judged
    against the constant answer's score (the higher bar), over the searched student's seeds; the gap to the best
    hand-crafted student is kept beside it."""
    root, data, out = tmp_path / "work", tmp_path / "glue", tmp_path / "claims.json"
    _mrpc_run(root, data, {
        "searched": ("6,256,8,256", [(0.86, 0.79), (0.87, 0.80), (0.865, 0.795)], 9.0),
        "minilm-scaled": ("6,192,6,768", [(0.80, 0.66), (0.81, 0.67), (0.80, 0.665)], 9.8)})
    doc = claims_report.build_report(root, ["mrpc"], out, extra={}, apart=[], command="report", data_dir=data)
    b = doc["tasks"]["mrpc"]["claim_b"]
    constant = (14 / 17 + 0.7) / 2
    assert b["best_hand"] == "constant answer" and b["rival"].startswith("the constant answer")
    assert b["diff"] == pytest.approx((0.865 + 0.795) / 2 - constant) and b["verdict"] == "ahead"
    assert b["uncounted"]["best_hand"] == "minilm-scaled"
    assert doc["claims"]["b"]["diff_vs_best_hand"]["mrpc"] == pytest.approx(b["diff"])
    assert doc["claims"]["b"]["distinguishable_ahead"] == ["mrpc"]


def test_repoint_takes_the_finals_and_the_timing_of_the_same_arch(tmp_path: Path, preds: Path) -> None:
    """A searched row re-pointed to another search run whose winner was distilled and timed as an extra row: its
    finals are recorded again as the searched row's (the same arch, recipe and seed are the same training), its
    latency is the one timed for that arch in the table's run (not the stale figure under the name), and an arch
    without finals or without a timing is refused in one line."""
    import argparse

    from .helpers import DEV

    bench_claims = pytest.importorskip("bench_claims")
    root, data, out = tmp_path / "work", tmp_path / "glue", tmp_path / "claims.json"
    _mrpc_run(root, data, {"searched": ("4,256,8,640", [(0.85, 0.78)] * 3, 9.0),
                           "minilm-scaled": ("6,192,6,768", [(0.80, 0.76), (0.81, 0.76), (0.80, 0.75)], 9.8)})
    work = root / "mrpc"
    final = json.loads((work / "plan.json").read_text())["final"]
    with (work / "finals.jsonl").open("a") as fh:
        for seed, f1 in enumerate((0.88, 0.89, 0.90)):
            fh.write(json.dumps({"name": "six-place", "arch": "6,256,8,256", "seed": seed, "metric": f1,
                                 "metrics": {"f1": f1, "accuracy": 0.80}, "recipe": bench_claims._recipe(final)}) + "\n")
    lat = json.loads((work / "latency.json").read_text())
    lat["ms"]["six-place"] = 9.6
    lat["archs"] = {"teacher": "6,384,12,1536", "searched": "4,256,8,640", "minilm-scaled": "6,192,6,768",
                    "six-place": "6,256,8,256"}
    (work / "latency.json").write_text(json.dumps(lat))

    def run_folder(name: str, arch: dict) -> Path:
        run = root / name
        run.mkdir()
        (run / "result.json").write_text(json.dumps({"winners": [{"budget_ms": 10.0, "arch": arch,
                                                                  "predicted_latency_ms": 9.1}]}))
        return run

    def ns(run: Path) -> argparse.Namespace:
        return argparse.Namespace(task="mrpc", root=str(root), work=None, search_run=str(run), device=DEV,
                                  predictors=str(preds), searched_from="kdnas-bench search --task mrpc --rerank-top 6")

    run = run_folder("search-mrpc-six", {"layers": 6, "hidden": 256, "heads": 8, "ffn": 256})
    for _ in range(2):  # a second repoint adds nothing
        bench_claims.repoint(ns(run))
    plan = json.loads((work / "plan.json").read_text())
    assert plan["students"]["searched"]["arch"] == "6,256,8,256" and plan["replaced_searched"]["arch"] == "4,256,8,640"
    assert plan["search"]["run_folder"] == "search-mrpc-six" and "--rerank-top 6" in plan["searched_from"]
    copies = [json.loads(line) for line in (work / "finals.jsonl").read_text().splitlines()
              if '"same_training_as"' in line]
    assert len(copies) == 3 and {c["name"] for c in copies} == {"searched"}
    doc = claims_report.build_report(root, ["mrpc"], out, extra={}, apart=[], command="report", data_dir=data)
    st = doc["tasks"]["mrpc"]["students"]["searched"]
    assert st["arch"] == "6,256,8,256" and st["measured_ms"] == 9.6 and st["seeds"] == 3
    assert st["metric_mean"] == pytest.approx((0.89 + 0.80) / 2)
    assert doc["tasks"]["mrpc"]["search"]["result"] == str(run / "result.json")
    with pytest.raises(SystemExit, match="no finals"):
        bench_claims.repoint(ns(run_folder("search-x", {"layers": 2, "hidden": 128, "heads": 4, "ffn": 512})))
    lat["archs"]["six-place"] = "6,256,8,384"
    (work / "latency.json").write_text(json.dumps(lat))
    with pytest.raises(SystemExit, match="was not timed"):
        bench_claims.repoint(ns(run))
