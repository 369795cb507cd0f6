"""The accuracy–latency front: non-dominated, covers every evaluated candidate, and a budget picks from it
(the post-step replaces the search's winners with those picks and writes front.json); one plot per device."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from kdnas_bench.errors import KdnasError
from kdnas_bench.predictors.registry import fit_and_save
from kdnas_bench.search.front import (
    FRONT_FILE,
    FrontPoint,
    dominated,
    front_step,
    fronts_for_devices,
    pareto_front,
    pick,
    plot_fronts,
    plotted_pick,
    read_front,
    repick,
    spread,
    write_front,
)
from kdnas_bench.search.runfolder import RunFolder
from kdnas_bench.search.study import SearchResult, Winner
from kdnas_bench.space import Arch, SearchSpace, Shape, sample_archs

from .helpers import DEV, ROOT, TINY_SPACE, assert_real_png, real_rows, write_store


def _records(n: int = 60, seed: int = 0) -> list[FrontPoint]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        lat = rng.uniform(1.0, 20.0)
        out.append(FrontPoint(Arch(1 + i % 6, 64 * (1 + i % 6), 2, 128 + i), lat, lat * 1.1,
                              0.5 + 0.02 * lat + rng.uniform(-0.1, 0.1)))
    return out


def test_front_is_non_dominated_and_covers_every_candidate() -> None:
    recs = _records()
    front = pareto_front(recs)
    assert 2 <= len(front) < len(recs)
    lats, scores = [p.latency_ms for p in front], [p.score for p in front]
    assert lats == sorted(lats) and all(b > a for a, b in itertools.pairwise(scores))
    for p in front:
        assert not any(dominated(p, q) for q in recs), p
    for r in recs:  # every candidate off the front is dominated by (or equal to) a front point
        assert r in front or any(dominated(r, q) or (q.latency_ms <= r.latency_ms and q.score >= r.score) for q in front)
    assert front[0] == min(recs, key=lambda r: r.latency_ms)  # the fastest is always on it
    assert front[-1].score == max(r.score for r in recs)  # and the best


def test_pick_takes_the_best_front_point_within_the_budget() -> None:
    recs = _records()
    front = pareto_front(recs)
    for budget in (2.0, 5.0, 10.0, 25.0):
        p = pick(front, budget)
        fits = [r for r in recs if r.latency_ms_high <= budget]
        if not fits:
            assert p is None
            continue
        assert p in front and p.latency_ms_high <= budget
        assert p.score == max(r.score for r in fits)  # the front loses nothing a budget could want
    assert pick(front, 0.1) is None


def test_a_budget_picks_among_re_scored_points_when_one_fits() -> None:
    front = [FrontPoint(Arch(1, 128, 4, 256), 1.0, 1.1, 0.81, 0.81), FrontPoint(Arch(2, 192, 6, 768), 3.0, 3.3, 0.82, 0.78),
             FrontPoint(Arch(2, 192, 6, 1536), 4.5, 5.0, 0.825, None)]  # its one-shot score, never re-scored
    assert pick(front, 10.0).arch == Arch(2, 192, 6, 1536)  # mixed scales: the un-re-scored point wins
    assert pick(front, 10.0, rescored_only=True).arch == Arch(1, 128, 4, 256)  # proxy 0.81 beats proxy 0.78
    assert pick(front[2:], 10.0, rescored_only=True).arch == Arch(2, 192, 6, 1536)  # none re-scored: all compete
    # the plot marks what the search picked, never the mixed-scale winner
    assert plotted_pick(front, 10.0).arch == Arch(1, 128, 4, 256)
    assert plotted_pick(front, 10.0, Arch(2, 192, 6, 768)).arch == Arch(2, 192, 6, 768)
    assert plotted_pick(front, 10.0, Arch(6, 384, 12, 1536)).arch == Arch(1, 128, 4, 256)  # not on this front


def test_repick_rewrites_an_old_runs_picks_and_winners(tmp_path: Path) -> None:
    front = [FrontPoint(Arch(1, 128, 4, 256), 1.0, 1.1, 0.81, 0.81), FrontPoint(Arch(2, 192, 6, 768), 3.0, 3.3, 0.82, 0.78),
             FrontPoint(Arch(2, 192, 6, 1536), 4.5, 5.0, 0.825, None)]
    write_front(tmp_path / FRONT_FILE, front, budgets_ms=[10.0, 2.0], picks=[Arch(2, 192, 6, 1536), Arch(1, 128, 4, 256)])
    (tmp_path / "result.json").write_text(json.dumps({"winners": [{"arch": "old"}], "history": [1, 2]}))
    winners = repick(tmp_path)
    assert [str(w.arch) for w in winners] == ["1,128,4,256", "1,128,4,256"]
    doc = json.loads((tmp_path / FRONT_FILE).read_text())
    assert doc["picks"] == ["1,128,4,256", "1,128,4,256"] and doc["budgets_ms"] == [10.0, 2.0]
    assert read_front(tmp_path / FRONT_FILE) == front  # the re-scored figures kept
    res = json.loads((tmp_path / "result.json").read_text())
    assert res["history"] == [1, 2] and res["winners"][0]["arch"]["layers"] == 1
    assert res["winners"][0]["rerank_metric"] == 0.81
    write_front(tmp_path / FRONT_FILE, front, budgets_ms=[0.5])
    with pytest.raises(KdnasError, match="no point of the front fits"):
        repick(tmp_path)


def test_spread_reaches_both_ends_without_repeats() -> None:
    front = pareto_front(_records(200, seed=3))
    s = spread(front, 4)
    assert len(s) == len(set(s)) == 4 and s[0] == front[0] and s[-1] == front[-1]
    assert spread(front, 1000) == front and spread(front, 0) == []


def test_front_step_replaces_winners_with_front_picks(tmp_path: Path) -> None:
    recs = _records()
    result = SearchResult([Winner(9.0, recs[0].arch, 1.0, 1.1, 0.1, 0.1)], len(recs), str(tmp_path), [])
    calls = []

    def rescore(arch: Arch) -> float:
        calls.append(arch)
        return 0.99 if arch == pareto_front(recs)[0].arch else 0.0

    out = front_step(result, recs, budgets_ms=(9.0, 15.0), rescore=rescore, points=3)
    front = read_front(tmp_path / FRONT_FILE)
    assert len(calls) == 3 and sum(p.rerank_metric is not None for p in front) == 3
    # re-scored: the fastest point now scores 0.99 and wins both budgets
    assert [w.arch for w in out.winners] == [front[0].arch, front[0].arch]
    assert out.winners[0].extra["from_front"] and out.winners[0].proxy_metric == pytest.approx(0.99)
    doc = json.loads((tmp_path / FRONT_FILE).read_text())
    assert doc["budgets_ms"] == [9.0, 15.0] and doc["picks"] == [str(front[0].arch)] * 2
    plain = front_step(result, recs, budgets_ms=(9.0,), run_dir=tmp_path / "")
    assert plain.winners[0].arch == pick(pareto_front(recs), 9.0).arch
    with pytest.raises(KdnasError, match="no point of the front fits"):
        front_step(result, recs, budgets_ms=(0.01,))


def test_fronts_per_device_and_one_plot_each(tmp_path: Path) -> None:
    recs = _records(40)

    def predictor(scale: float) -> SimpleNamespace:
        def interval(configs: list[tuple[Arch, Shape]]) -> SimpleNamespace:
            mid = np.array([scale * a.layers * a.hidden / 64 for a, _ in configs])
            return SimpleNamespace(mid=mid, high=mid * 1.1)
        return SimpleNamespace(predict_interval=interval)

    fronts = fronts_for_devices(recs, {"cpu-a": predictor(1.0), "gpu-b": predictor(0.1)}, Shape(1, 128))
    assert set(fronts) == {"cpu-a", "gpu-b"}
    assert fronts["gpu-b"][0].latency_ms == pytest.approx(0.1 * fronts["cpu-a"][0].latency_ms)
    files = plot_fronts(fronts, tmp_path, metric_name="accuracy", budgets_ms={"cpu-a": 10.0})
    assert [f.name for f in files] == ["front-cpu-a.png", "front-gpu-b.png"]
    for f in files:
        assert_real_png(f)


def test_cli_search_front_picks_winners_from_the_front(tmp_path: Path, run_cli) -> None:
    write_store(tmp_path / "profiles", DEV, real_rows())
    fit_and_save(DEV, "torch", 1, store=tmp_path / "profiles", out=tmp_path / "predictors")
    archs = sorted(set(sample_archs(SearchSpace.load(ROOT / "search" / "spaces" / "bert.toml"), 80, sampler="sobol",
                                    seed=5)))
    table = tmp_path / "table.json"
    table.write_text(json.dumps([{**a.to_dict(), "metric": round(0.6 + 0.3 * (1 - np.exp(-a.layers * a.hidden / 1500)),
                                                                 4), "metric_name": "accuracy"} for a in archs]))
    run = tmp_path / "run"
    code, out, err = run_cli("search", "--device", DEV, "--backend", "torch", "--budget-ms", "8,20", "--task", "sst2",
                             "--table", str(table), "--predictors", str(tmp_path / "predictors"), "--episodes", "3",
                             "--candidates", "6", "--out", str(run), "--front", "0", "--json")
    assert code == 0, err
    front = read_front(run / FRONT_FILE)
    records, _ = RunFolder(run).evaluations()
    assert front == pareto_front(records)
    winners = json.loads(out)["winners"]
    for w in winners:
        p = pick(front, w["budget_ms"])
        assert p is not None and w["arch"] == p.arch.to_dict() and w["from_front"] is True
    assert_real_png(run / f"front-{DEV}.png")
    code, _, err = run_cli("search", "--device", DEV, "--backend", "torch", "--budget-ms", "8", "--task", "sst2",
                           "--table", str(table), "--predictors", str(tmp_path / "predictors"), "--out",
                           str(tmp_path / "r2"), "--front", "-1")
    assert code != 0 and "--front must be 0 or more" in err


def test_front_with_final_is_one_plan_one_final_job_with_the_reference_canary(tmp_path: Path, tiny_teacher: Path,
                                                                              tiny_glue: Path) -> None:
    """``--front K --final``: the front is a post-step of the search's plan, before the budget check and the one
    final step, whose job carries the predictor's reference canary time (so front winners are timed with the
    canary and keep ``measured_speed_factor`` like a plain ``--final``)."""
    from kdnas_bench.keys import DatasetKey
    from kdnas_bench.predictors.lookup import load_predictor
    from kdnas_bench.search.api import FinalOptions, SearchRequest, prepare
    from kdnas_bench.search.budgetcheck import BudgetStep
    from kdnas_bench.search.final import FinalStep
    from kdnas_bench.search.front import FrontStep

    from .test_drift import scripted_profile

    scripted_profile(tmp_path / "p", 30)
    fit_and_save("dev", "torch", 1, store=tmp_path / "p", out=tmp_path / "pred")
    reference = load_predictor("dev", "torch", 1, root=tmp_path / "pred").meta["drift"]["reference_canary_ms"]
    req = SearchRequest(DatasetKey("dev", "torch", 1), (50.0,), "sst2", episodes=1, candidates=2, seed=0,
                        evaluator="proxy", teacher=str(tiny_teacher), data_dir=str(tiny_glue), space=str(TINY_SPACE),
                        final=FinalOptions(32, 1.0, ()), front=0, predictors=str(tmp_path / "pred"),
                        run_dir=str(tmp_path / "run"), allow_weak_teacher=True)
    plan = prepare(req)
    try:
        kinds = [type(step) for step in plan.steps]
        assert kinds.count(FrontStep) == 1 and kinds.count(FinalStep) == 1
        assert kinds.index(FrontStep) < kinds.index(BudgetStep) < kinds.index(FinalStep)
        (final,) = [s for s in plan.steps if isinstance(s, FinalStep)]
        assert reference is not None and final.job.reference_ms == pytest.approx(reference)
    finally:
        if plan.lock is not None:
            plan.lock.release()
    with pytest.raises(KdnasError, match="--front must be 0 or more"):
        SearchRequest(DatasetKey("dev", "torch", 1), (50.0,), "sst2", front=-1)
