"""The verbs as library calls: requests built and run without the CLI (search, compare, report), the search's
defaults and cross-field rules decided in the library, the shared recipe, the reward spec built once, and the
budgets checked in one place with one wording."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kdnas_bench.defaults import DEFAULTS
from kdnas_bench.errors import KdnasError
from kdnas_bench.keys import DatasetKey
from kdnas_bench.report.comparing import CompareRequest, run_compare
from kdnas_bench.report.outputs import Outputs, ReportRequest, run_report
from kdnas_bench.search import run_search
from kdnas_bench.search.asking import search_request
from kdnas_bench.search.recipe import Recipe
from kdnas_bench.search.request import FinalOptions, SearchRequest
from kdnas_bench.space import Arch, Shape

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "predictors"
TABLE = ROOT / "search" / "tables" / "sst2-minilm-students.json"
SPACE = ROOT / "search" / "spaces" / "minilm-students.toml"
DEV = "intel-xeon-processor-2c-cfff2f"
KEY = DatasetKey(DEV, "torch", 1)


# -- the search's defaults, decided by the library --------------------------------------------------------------
def test_search_request_defaults_follow_the_evaluator() -> None:
    best = search_request(KEY, (10,), "sst2")
    assert (best.evaluator, best.episodes, best.candidates) == (
        "supernet", DEFAULTS.oneshot_episodes, DEFAULTS.oneshot_candidates)
    assert best.head_dim == "teacher" and best.shape == Shape(DEFAULTS.batch, DEFAULTS.seq)
    sn = best.supernet  # the CLI's supernet and re-ranking: six places per budget, the rungs at the finals' rate
    assert (sn.examples, sn.epochs, sn.rerank_top, sn.rerank_lr) == (
        DEFAULTS.supernet_examples, DEFAULTS.supernet_epochs, 6, 2e-4)
    proxy = search_request(KEY, (10,), "sst2", evaluator="proxy", init="random")
    assert (proxy.episodes, proxy.candidates, proxy.head_dim) == (
        DEFAULTS.proxy_episodes, DEFAULTS.proxy_candidates, None)  # nothing inherited: any head size
    assert search_request(KEY, (10,), "sst2", evaluator="proxy").head_dim == "teacher"  # --init inherit
    table = search_request(KEY, (10,), "sst2", table=str(TABLE))
    assert (table.evaluator, table.head_dim, table.episodes) == ("proxy", None, DEFAULTS.proxy_episodes)
    agnostic = search_request(KEY, (10,), "Agnostic")
    assert agnostic.evaluator == "proxy" and agnostic.head_dim is None and agnostic.agnostic
    assert search_request(KEY, (10,), "sst2", head_dim="any").head_dim is None
    assert search_request(KEY, (10,), "sst2", head_dim=" 32 ").head_dim == 32
    assert search_request(KEY, (10,), "sst2", init="auto").init == "embeddings"
    assert search_request(KEY, (10,), "sst2", episodes=3, seq=64, batch=2).episodes == 3
    # the dataclass keeps its own explicit (paper) defaults for keyword construction
    plain = SearchRequest(key=KEY, budgets_ms=(10.0,), task="sst2")
    assert (plain.evaluator, plain.episodes, plain.candidates, plain.head_dim) == ("proxy", 15, 20, None)


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(episodes=0), "--episodes must be positive, got 0"),
    (dict(seq=0), "--seq must be positive, got 0"),
    (dict(head_dim="wide"), "--head-dim must be a positive integer or 'teacher'"),
    (dict(budget_mb=-5.0), "--budget-mb must be positive, got -5.0"),
    (dict(proxy_examples=0), "--proxy-examples must be positive"),
])
def test_search_request_refuses_in_the_options_words(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(KdnasError, match=message.replace("(", r"\(")):
        search_request(KEY, (10,), "sst2", **kwargs)


def test_final_options_rules_live_in_the_library() -> None:
    assert FinalOptions.given(False) is None
    for kwargs, flag in ((dict(baselines="minilm"), "--baselines"), (dict(baseline_seeds=2), "--baseline-seeds"),
                         (dict(max_length="64"), "--max-length"), (dict(eval_every="epoch"), "--eval-every"),
                         (dict(log_to="tensorboard"), "--log-to")):
        with pytest.raises(KdnasError, match="add --final") as err:
            FinalOptions.given(False, **kwargs)  # type: ignore[arg-type]
        assert flag in str(err.value)
    with pytest.raises(KdnasError, match="--final-examples must be positive"):
        FinalOptions.given(False, examples=0)  # a bad value is refused even where it is not used
    final = FinalOptions.given(True, examples=64, epochs=1.0, baselines="minilm", max_length=" 64 ")
    assert final == FinalOptions(64, 1.0, ("minilm",), 1, max_length=64)


# -- one recipe, one reward spec --------------------------------------------------------------------------------
def test_one_recipe_shared_by_the_proxy_and_the_final() -> None:
    req = search_request(KEY, (10,), "sst2", seed=3, init="embeddings", proxy_examples=500, proxy_epochs=2.0,
                         final=FinalOptions(64, 1.0, (), max_length=48, eval_every="epoch", early_stopping=2))
    assert req.recipe == Recipe(500, 2.0, DEFAULTS.search_losses, seed=3, init="embeddings")
    final = req.final_recipe
    assert final is not None and (final.examples, final.epochs) == (64, 1.0)
    assert (final.losses, final.seed, final.init, final.lr) == (req.recipe.losses, 3, "embeddings", req.recipe.lr)
    assert final.training() == {"max_length": 48, "eval_every": "epoch", "early_stopping": 2, "log_to": None}
    assert final.distill_kwargs(seed=4)["seed"] == 4 and final.distill_kwargs()["max_examples"] == 64
    assert search_request(KEY, (10,), "agnostic").recipe.losses == DEFAULTS.agnostic_losses
    assert req.recipe.scaled(100, 1.0) == replace(req.recipe, examples=100, epochs=1.0)
    with pytest.raises(KdnasError, match="unknown init"):
        Recipe(init="zeros")


def test_the_final_job_distils_with_the_recipe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from kdnas_bench.search import final
    from kdnas_bench.search.result import SearchResult, Winner

    asked: dict[str, Any] = {}
    distilled = SimpleNamespace(metrics={"accuracy": 0.8}, primary=0.8, train_examples=10, train_seconds=1.0)
    monkeypatch.setattr("kdnas_bench.distill.trainer.distill", lambda *a, **k: asked.update(k) or distilled)
    monkeypatch.setattr(final, "this_machine_is", lambda *a: False)
    recipe = Recipe(64, 1.5, "logits,ce", lr=1e-4, seed=7, init="random")
    job = final.FinalJob("teacher", "sst2", KEY, Shape(1, 128), recipe)
    result = SearchResult([Winner(50.0, Arch(1, 32, 2, 64), 1.0, 1.2, 0.7, 0.7)], 1, str(tmp_path), [])
    out = final.finalize(result, job).winners[0].extra
    assert (asked["max_examples"], asked["epochs"], asked["losses"], asked["lr"], asked["seed"], asked["init"]) == (
        64, 1.5, "logits,ce", 1e-4, 7, "random")
    assert out["final_init"] == "random" and (job.examples, job.epochs, job.seed) == (64, 1.5, 7)


def test_reward_spec_is_built_once() -> None:
    req = search_request(KEY, (10, 20), "sst2")
    assert req.reward is req.reward and req.reward.budgets_ms == (10.0, 20.0)
    assert replace(req, budgets_ms=(5.0,)).reward.budgets_ms == (5.0,)  # a changed request builds its own


@pytest.mark.parametrize(("budgets", "mb", "message"), [
    ((), None, "--budget-ms needs at least one value"),
    ((10.0, float("nan")), None, "--budget-ms values must be positive finite numbers, got [10.0, nan]"),
    ((-5.0,), None, "--budget-ms values must be positive finite numbers, got [-5.0]"),
    ((5.0, 5.0), None, "--budget-ms values repeat: [5.0, 5.0]"),
    ((5.0,), 0.0, "--budget-mb must be positive, got 0.0"),
])
def test_budgets_are_checked_in_one_place_with_one_wording(budgets: tuple[float, ...], mb: float | None,
                                                           message: str) -> None:
    """The search and the deployment matrix refuse a bad budget in the same words."""
    texts = []
    for make in (lambda: SearchRequest(KEY, budgets, "sst2", budget_mb=mb),
                 lambda: CompareRequest("minilm-l6", budgets_ms=budgets, budget_mb=mb)):
        with pytest.raises(KdnasError) as err:
            make()
        texts.append(str(err.value))
    assert texts == [message, message]
    with pytest.raises(KdnasError, match="--budget-mb goes with --budget-ms"):
        CompareRequest("minilm-l6", budget_mb=100.0)


# -- search, report and compare as library calls ----------------------------------------------------------------
def test_search_report_and_compare_without_the_cli(tmp_path: Path) -> None:
    run = tmp_path / "search"
    events: list[str] = []
    req = search_request(KEY, (5, 10), "sst2", table=str(TABLE), space=str(SPACE), episodes=2, candidates=4,
                         predictors=str(COMMITTED), run_dir=str(run))
    outcome = run_search(req, lambda kind, data: events.append(kind))
    # the study's events; on the device itself (this id's VM) the budget check's messages follow its "end"
    assert events[0] == "start" and events.count("end") == 1 and len(outcome.result.winners) == 2
    assert set(events[events.index("end") + 1:]) <= {"message"}

    html, png = tmp_path / "r.html", tmp_path / "plots"
    report = run_report(ReportRequest(str(run), Outputs(html=str(html), png=str(png))))
    # every candidate the study evaluated (at most 2 × 4; how many depends on the committed predictor)
    stored = (run / "evaluations.jsonl").read_text().splitlines()
    assert report.story.finished and len(report.story.evaluations) == len(stored) and 4 <= len(stored) <= 8
    assert html.is_file() and report.images and all(p.parent == png for p in report.images)
    assert report.document.sections[0].paragraphs

    result = run_compare(CompareRequest(f"{run},minilm-l6", devices=(DEV,), measure=False,
                                        predictors=str(COMMITTED), budgets_ms=(5.0, 10.0)))
    names = {r.student for r in result.rows}
    assert "minilm-l6" in names and len(names) >= 2
    assert {c.budget_ms for c in result.matrix} == {5.0, 10.0} and result.matrix_budget == ((5.0, 10.0), None)
    assert json.loads(json.dumps([r.to_dict() for r in result.rows]))
    with pytest.raises(KdnasError, match="is a folder"):
        Outputs(html=str(png))
