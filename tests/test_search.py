"""Search: reward, the strategy contract on every registered strategy, the study (persistence, resume, budgets), CLI.

Accuracies come from a table evaluator over a TEST TABLE whose metric is a smooth function of the arch
(it exercises the search logic; the real proxy-distillation evaluator is tested in test_search_e2e.py).
Latencies come from a real predictor fitted on 240 rows of the committed profile."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kdnas_bench.errors import KdnasError
from kdnas_bench.predictors.registry import fit_and_save, load_predictor
from kdnas_bench.registry import UnknownNameError
from kdnas_bench.search.domain import Domain, SearchError
from kdnas_bench.search.evaluators import Evaluation, TableEvaluator
from kdnas_bench.search.reward import RewardSpec
from kdnas_bench.search.strategies import STRATEGIES, make_strategy
from kdnas_bench.search.study import LatencyTable, SearchConfig, Study, check_budgets
from kdnas_bench.space import Arch, SearchSpace, Shape, sample_archs
from kdnas_bench.testing import STRATEGY_CHECKS

from .conftest import ROOT
from .helpers import DEV, real_rows, write_store

SHAPE = Shape(1, 128)


def table_metric(a: Arch) -> float:
    return round(0.6 + 0.3 * (1 - np.exp(-a.layers * a.hidden / 1500)) + 0.02 * np.log(a.ffn / 256), 4)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("search")
    write_store(root / "profiles", DEV, real_rows())
    fit_and_save(DEV, "torch", 1, store=root / "profiles", out=root / "predictors")
    space = SearchSpace.load(ROOT / "search" / "spaces" / "bert.toml")
    archs = sorted(set(sample_archs(space, 160, sampler="sobol", seed=5)))
    table = root / "table.json"
    table.write_text(json.dumps([{**a.to_dict(), "metric": table_metric(a), "metric_name": "accuracy"} for a in archs]))
    predictor = load_predictor(DEV, "torch", 1, root=root / "predictors")
    return {"root": root, "table": table, "archs": archs, "predictor": predictor, "preds": root / "predictors"}


# -- reward ----------------------------------------------------------------------------------------
def test_hard_reward_pays_no_bonus_below_the_budget() -> None:
    spec = RewardSpec((10.0,))
    assert spec.hard and spec.to_dict()["form"] == "hard"
    # half the budget earns exactly what the budget earns: the metric; latency below it is worth nothing
    assert spec.reward(0.9, 5.0, 10.0, 8.0) == spec.reward(0.9, 10.0, 10.0, 12.0) == 0.9
    assert spec.reward(0.91, 10.0, 10.0, 12.0) > spec.reward(0.9, 2.0, 10.0, 3.0)  # the more accurate one wins
    assert spec.reward(0.9, 10.5, 10.0, 12.0) is None  # the prediction over the budget: infeasible
    assert spec.straddles(10.0, 9.0, 11.0) and not spec.straddles(10.0, 9.0, 9.5) and not spec.straddles(10.0, 11.0, 12.0)


def test_soft_reward_formula_and_its_budget() -> None:
    spec = RewardSpec((10.0,), w=-0.07, mode="hard", form="soft")
    assert spec.to_dict()["form"] == "soft"
    assert spec.reward(0.9, 5.0, 10.0, 8.0) == pytest.approx(0.9 * 0.5**-0.07)
    assert spec.reward(0.9, 9.0, 10.0, 11.0) is None  # upper bound over budget: infeasible
    assert not spec.straddles(10.0, 9.0, 11.0)  # the soft reward never measures
    soft = RewardSpec((10.0,), mode="soft", form="soft")
    assert soft.reward(0.9, 20.0, 10.0, 25.0) == pytest.approx(0.9 * 2**-0.07)
    for bad in [dict(budgets_ms=()), dict(budgets_ms=(-1.0,)), dict(budgets_ms=(5.0,), w=0.1),
                dict(budgets_ms=(5.0,), mode="medium"), dict(budgets_ms=(5.0, 5.0)), dict(budgets_ms=(5.0,), form="x"),
                dict(budgets_ms=(5.0,), mode="soft")]:
        with pytest.raises(SearchError.__mro__[1]):
            RewardSpec(**bad)


# -- the Strategy contract (kdnas_bench.testing.strategies) on every registered strategy --------------------------
def _quick(name: str) -> dict:
    return {"train_steps": 40} if name == "kdnas" else {}


@pytest.mark.parametrize(("name", "check"), [(n, c) for n in sorted(STRATEGIES) for c in STRATEGY_CHECKS])
def test_strategy_contract(name: str, check: str) -> None:
    STRATEGY_CHECKS[check](lambda domain, seed: make_strategy(name, domain, seed=seed, **_quick(name)))


def _domain(n: int = 60) -> Domain:
    space = SearchSpace.load(ROOT / "search" / "spaces" / "bert.toml")
    return Domain(sorted(set(sample_archs(space, n, seed=2))))


def test_kdnas_controller_learns_the_reward() -> None:
    domain = _domain(200)
    s = make_strategy("kdnas", domain, seed=0)
    for a in domain.archs[:80]:
        s.tell(a, table_metric(a), {})
    s.fit_controller()  # type: ignore[attr-defined]
    held = domain.archs[80:]
    pred = s.predict(held)  # type: ignore[attr-defined]
    truth = [table_metric(a) for a in held]
    from scipy.stats import kendalltau

    assert kendalltau(pred, truth).statistic > 0.5
    assert s.epsilon == 1.0
    s.ask(3)
    assert s.epsilon == pytest.approx(0.95)


def test_unknown_strategy() -> None:
    with pytest.raises(UnknownNameError, match="unknown strategy 'annealing' \\(choose from kdnas, random, evolution\\)"):
        make_strategy("annealing", _domain())


# -- the study ----------------------------------------------------------------------------------------
class CountingTable(TableEvaluator):
    def __init__(self, path: Path, fail_after: int | None = None) -> None:
        super().__init__(path)
        self.calls = 0
        self.fail_after = fail_after

    def evaluate(self, arch: Arch) -> Evaluation:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt  # stands in for a kill in the middle of the search
        self.calls += 1
        return super().evaluate(arch)


def _study(env: dict, run: Path, budgets=(8.0, 20.0), strategy="kdnas", seed=0, fail_after=None) -> tuple[Study, CountingTable]:
    ev = CountingTable(env["table"], fail_after)
    spec = RewardSpec(budgets)
    latency = LatencyTable(env["predictor"], env["archs"], SHAPE)
    check_budgets(latency, spec)
    params = {"train_steps": 40} if strategy == "kdnas" else {}  # a quick controller: these tests are about the study
    cfg = SearchConfig(DEV, "torch", 1, SHAPE, spec, strategy=strategy, episodes=4, candidates=5, seed=seed,
                       evaluator=ev.describe(), strategy_params=params)
    return Study(run, cfg, ev, latency), ev


def test_study_finds_feasible_winners_per_budget(env: dict, tmp_path: Path) -> None:
    study, ev = _study(env, tmp_path / "run")
    result = study.run()
    assert not (tmp_path / "run" / "result.json").exists()  # the caller writes it, once its post-steps are done
    study.write_result(result)
    assert [w.budget_ms for w in result.winners] == [8.0, 20.0]
    for w in result.winners:
        assert w.predicted_latency_ms <= w.budget_ms  # the hard reward judges the prediction (straddlers: measured)
        assert w.proxy_metric == table_metric(w.arch)
    assert result.evaluations == ev.calls <= 4 * 6
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["winners"][0]["arch"] == result.winners[0].arch.to_dict()
    lines = (tmp_path / "run" / "evaluations.jsonl").read_text().splitlines()
    assert len(lines) == result.evaluations


def test_same_seed_same_winners_and_resume_after_a_kill(env: dict, tmp_path: Path) -> None:
    full, _ = _study(env, tmp_path / "a")
    expected = [w.to_dict() for w in full.run().winners]
    again, _ = _study(env, tmp_path / "b")
    assert [w.to_dict() for w in again.run().winners] == expected
    killed, _ = _study(env, tmp_path / "c", fail_after=7)
    with pytest.raises(KeyboardInterrupt):
        killed.run()
    assert len((tmp_path / "c" / "evaluations.jsonl").read_text().splitlines()) == 7
    with open(tmp_path / "c" / "evaluations.jsonl", "a") as fh:
        fh.write('{"arch": {"layers": 3, "hid')  # a line torn by kill -9
    resumed, ev2 = _study(env, tmp_path / "c")
    result = resumed.run()
    assert [w.to_dict() for w in result.winners] == expected
    assert ev2.calls == result.evaluations - 7  # finished evaluations were not redone


def test_changed_options_on_an_existing_run_are_refused(env: dict, tmp_path: Path) -> None:
    _study(env, tmp_path / "r")[0].run()
    other, _ = _study(env, tmp_path / "r", seed=1)
    with pytest.raises(SearchError, match="different search"):
        other.run()


def test_budget_below_the_fastest_arch(env: dict) -> None:
    latency = LatencyTable(env["predictor"], env["archs"], SHAPE)
    with pytest.raises(SearchError, match="fastest arch") as info:
        check_budgets(latency, RewardSpec((0.01,)))
    assert "ms" in str(info.value)


def test_cli_search_with_table(env: dict, tmp_path: Path, run_cli) -> None:
    args = ["search", "--device", DEV, "--backend", "torch", "--budget-ms", "8,20", "--task", "sst2",
            "--table", str(env["table"]), "--predictors", str(env["preds"]), "--episodes", "3", "--candidates", "4",
            "--strategy", "evolution",
            "--out", str(tmp_path / "run"), "--json"]
    code, out, err = run_cli(*args)
    assert code == 0, err
    data = json.loads(out)
    assert set(data) >= {"winners", "evaluations", "run_dir"}
    for w in data["winners"]:
        assert set(w) >= {"budget_ms", "arch", "predicted_latency_ms", "predicted_latency_ms_high", "proxy_metric",
                          "reward"}
        assert set(w["arch"]) == {"layers", "hidden", "heads", "ffn"}
        assert w["predicted_latency_ms_high"] <= w["budget_ms"]
    code, out2, _ = run_cli(*args)  # rerun: resumes, evaluates nothing new, same winners
    assert code == 0 and json.loads(out2)["winners"] == data["winners"] and json.loads(out2)["evaluated_now"] == 0


def test_run_search_is_one_library_call_that_the_cli_renders(env: dict, tmp_path: Path, run_cli) -> None:
    from kdnas_bench.keys import DatasetKey
    from kdnas_bench.search import SearchRequest, run_search
    from kdnas_bench.search.runfolder import RunFolder, best

    events: list[str] = []
    req = SearchRequest(DatasetKey(DEV, "torch", 1), (8.0, 20.0), "sst2", table=str(env["table"]),
                        predictors=str(env["preds"]), episodes=3, candidates=4, strategy="evolution",
                        run_dir=str(tmp_path / "lib"))
    outcome = run_search(req, lambda kind, data: events.append(kind))
    assert events[0] == "start" and events[-1] == "end" and events.count("episode") == 3
    assert [w.budget_ms for w in outcome.result.winners] == [8.0, 20.0] and not outcome.final
    # the winners are the run folder's, chosen by the one rule that report and compare read too
    folder = RunFolder(tmp_path / "lib")
    records, _ = folder.evaluations()
    for w in outcome.result.winners:
        rec = best(records, w.budget_ms)
        assert rec is not None and rec.arch == w.arch and w.predicted_latency_ms_high <= w.budget_ms
    assert json.loads((tmp_path / "lib" / "summary.json").read_text()) == json.loads(json.dumps(outcome.summary()))
    # the CLI on the same options gives the same winners
    code, out, err = run_cli("search", "--device", DEV, "--backend", "torch", "--budget-ms", "8,20", "--task", "sst2",
                             "--table", str(env["table"]), "--predictors", str(env["preds"]), "--episodes", "3",
                             "--candidates", "4", "--strategy", "evolution", "--out", str(tmp_path / "cli"), "--json")
    assert code == 0, err
    assert [w["arch"] for w in json.loads(out)["winners"]] == [w.arch.to_dict() for w in outcome.result.winners]
    with pytest.raises(KdnasError, match="episodes must be positive"):
        SearchRequest(DatasetKey(DEV, "torch", 1), (8.0,), "sst2", episodes=0)
    with pytest.raises(KdnasError, match="unknown strategy"):
        SearchRequest(DatasetKey(DEV, "torch", 1), (8.0,), "sst2", strategy="nosuch")


def test_head_dim_restricts_every_candidate(env: dict, tmp_path: Path, run_cli) -> None:
    """--head-dim N: only archs with hidden / heads == N are evaluated, and the run records it."""
    from kdnas_bench.keys import DatasetKey
    from kdnas_bench.search import SearchRequest, run_search
    from kdnas_bench.search.runfolder import RunFolder

    dims = [a.head_dim for a in env["archs"]]
    size = max(set(dims), key=dims.count)  # the table's most common head size
    assert len(set(dims)) > 1  # the restriction removes something
    req = SearchRequest(DatasetKey(DEV, "torch", 1), (30.0,), "sst2", table=str(env["table"]), head_dim=size,
                        predictors=str(env["preds"]), episodes=2, candidates=4, run_dir=str(tmp_path / "hd"))
    outcome = run_search(req)
    records, _ = RunFolder(tmp_path / "hd").evaluations()
    assert records and {r.arch.head_dim for r in records} == {size}
    assert all(w.arch.head_dim == size for w in outcome.result.winners)
    assert json.loads((tmp_path / "hd" / "run.json").read_text())["config"]["head_dim"] == size
    with pytest.raises(KdnasError, match="holds a different search"):  # resume refuses another head size
        run_search(SearchRequest(DatasetKey(DEV, "torch", 1), (30.0,), "sst2", table=str(env["table"]),
                                 predictors=str(env["preds"]), episodes=2, candidates=4, run_dir=str(tmp_path / "hd")))
    with pytest.raises(KdnasError, match="needs a teacher"):
        run_search(SearchRequest(DatasetKey(DEV, "torch", 1), (30.0,), "sst2", table=str(env["table"]),
                                 head_dim="teacher", predictors=str(env["preds"]), run_dir=str(tmp_path / "t")))
    with pytest.raises(KdnasError, match="has head size 7"):
        run_search(SearchRequest(DatasetKey(DEV, "torch", 1), (30.0,), "sst2", table=str(env["table"]),
                                 head_dim=7, predictors=str(env["preds"]), run_dir=str(tmp_path / "t7")))
    code, _, err = run_cli("search", "--device", DEV, "--backend", "torch", "--budget-ms", "30", "--task", "sst2",
                           "--table", str(env["table"]), "--predictors", str(env["preds"]), "--head-dim", "wide")
    assert code == 2 and "--head-dim must be a positive integer or 'teacher'" in err and "Traceback" not in err


def test_the_winner_rule_breaks_ties_towards_the_smaller_arch() -> None:
    from kdnas_bench.search.runfolder import EvalRecord, best

    big, small = Arch(4, 256, 4, 1024), Arch(2, 256, 4, 1024)
    recs = [EvalRecord(a, 0, 0.8, 5.0, 6.0, {"10": r}) for a, r in ((big, 0.9), (small, 0.9), (Arch(1, 128, 2, 256), None))]
    chosen = best(recs, 10.0)
    assert chosen is not None and chosen.arch == small  # equal reward: the smaller arch, whatever the order
    assert best(list(reversed(recs)), 10.0).arch == small  # type: ignore[union-attr]
    assert best(recs[2:], 10.0) is None  # nothing feasible


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--budget-ms", "0.001"], "fastest arch"),
        (["--budget-ms", "abc"], "numbers"),
        (["--budget-ms", "-5"], "positive"),
        (["--device", "no-such-device"], "no-such-device"),
        (["--task", "imagenet"], "imagenet"),
        (["--episodes", "0"], "positive"),
    ],
)
def test_cli_search_bad_input(env: dict, tmp_path: Path, run_cli, extra: list[str], message: str) -> None:
    base = {"--device": DEV, "--backend": "torch", "--budget-ms": "8", "--task": "sst2", "--table": str(env["table"]),
            "--predictors": str(env["preds"]), "--out": str(tmp_path / "run")}
    for k, v in zip(extra[::2], extra[1::2], strict=True):
        base[k] = v
    code, _, err = run_cli("search", *[x for kv in base.items() for x in kv])
    assert code == 2 and message in err and "Traceback" not in err


def test_kdnas_can_learn_the_accuracy_term_only() -> None:
    domain = _domain(60)
    domain.latency_factor = {a: 1.0 + 0.01 * i for i, a in enumerate(domain.archs)}
    s = make_strategy("kdnas", domain, seed=0, train_steps=40, target="metric")
    for a in domain.archs[:10]:
        s.tell(a, reward=123.0, info={"metric": table_metric(a)})
    assert s.observed == {a: table_metric(a) for a in domain.archs[:10]}  # type: ignore[attr-defined]
    picks = s.ask(4)
    assert len(picks) == 4 and all(a in domain for a in picks)
    with pytest.raises(ValueError):
        make_strategy("kdnas", domain, target="latency")
