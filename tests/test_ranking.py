"""A score that ranks: ties of the metric go to the finer secondary score (fidelity to the teacher on held-out
examples, recorded per evaluation), and a re-ranking rung that would hold a single candidate is skipped."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kdnas_bench.distill.data import get_task
from kdnas_bench.distill.training import teacher_fidelity
from kdnas_bench.search.rerank import RerankConfig, rerank
from kdnas_bench.search.result import Evaluation, SearchResult, Winner
from kdnas_bench.search.reward import RewardSpec
from kdnas_bench.search.runfolder import EvalRecord, best, ranked
from kdnas_bench.space import Arch

SPEC = RewardSpec((8.0,))
A, B, C, D = Arch(1, 128, 2, 256), Arch(2, 128, 2, 256), Arch(3, 128, 2, 256), Arch(4, 128, 2, 256)


def _rec(arch: Arch, metric: float, secondary: float | None) -> EvalRecord:
    return EvalRecord(arch, 0, metric, 5.0, 6.0, {"8": SPEC.reward(metric, 5.0, 8.0, 6.0)}, secondary=secondary)


def test_fidelity_to_the_teacher_is_continuous_where_the_metric_ties() -> None:
    sst2, stsb = get_task("sst2"), get_task("stsb")
    teacher = np.array([[2.0, -1.0], [-1.0, 3.0], [0.5, 0.0]])
    assert teacher_fidelity(teacher, teacher, sst2) == pytest.approx(0.0, abs=1e-9)
    near, far = teacher * 0.8, teacher * 0.2  # the same argmax (so the same accuracy), different distance
    assert teacher_fidelity(far, teacher, sst2) < teacher_fidelity(near, teacher, sst2) < 0
    assert teacher_fidelity(np.array([[1.0], [2.0]]), np.array([[1.5], [2.0]]), stsb) == pytest.approx(-0.125)


def test_ties_of_the_metric_are_broken_by_the_secondary_score() -> None:
    records = [_rec(A, 0.80, -0.30), _rec(B, 0.80, -0.10), _rec(C, 0.79, 0.0)]
    assert best(records, 8.0).arch == B  # equal metric: the one closer to the teacher, though larger
    assert [a for _, a in ranked([(0.8, A), (0.8, B)], {A: -0.3, B: -0.1})] == [B, A]
    assert [a for _, a in ranked([(0.8, B), (0.8, A)])] == [A, B]  # without one: the smaller arch, as before
    assert best([_rec(A, 0.80, None), _rec(B, 0.80, -0.1)], 8.0).arch == B
    assert EvalRecord.from_dict(_rec(B, 0.8, -0.1).to_dict()).secondary == -0.1


class _Rungs:
    """A stub proxy evaluator: the metric ties; the secondary score grows with the layers."""

    def __init__(self, calls: list[tuple[int, Arch]], examples: int) -> None:
        self.calls, self.examples = calls, examples

    def evaluate(self, arch: Arch) -> Evaluation:
        self.calls.append((self.examples, arch))
        return Evaluation(0.8, "accuracy", {"accuracy": 0.8}, secondary=-1.0 / arch.layers, secondary_name="-kd_loss")


def _rerank(tmp: Path, records: list[EvalRecord], top: int) -> tuple[Winner, list[tuple[int, Arch]]]:
    calls: list[tuple[int, Arch]] = []
    tmp.mkdir()
    w0 = best(records, 8.0)
    assert w0 is not None
    result = SearchResult([Winner(8.0, w0.arch, 5.0, 6.0, w0.metric, 0.9)], len(records), str(tmp), [])
    out = rerank(records, SPEC, result, RerankConfig(top=top, examples=10, epochs=1.0),
                 lambda examples, epochs: _Rungs(calls, examples), tmp / "rerank.jsonl")
    return out.winners[0], calls


def test_a_rung_of_a_single_candidate_is_skipped(tmp_path: Path) -> None:
    records = [_rec(A, 0.9, None), _rec(B, 0.8, None), _rec(C, 0.7, None), _rec(D, 0.6, None)]
    w, calls = _rerank(tmp_path / "two", records, top=2)
    assert [e for e, _ in calls] == [10, 10]  # rung 0 only: a rung of the one survivor would decide nothing
    assert len(w.extra["rerank"]) == 1 and w.arch == B  # the tie of the rung's metric went to the finer score
    assert w.extra["rerank"][0]["candidates"][0]["secondary"] == pytest.approx(-0.5)
    lines = [json.loads(x) for x in (tmp_path / "two" / "rerank.jsonl").read_text().splitlines()]
    assert all("secondary" in x for x in lines)
    w, calls = _rerank(tmp_path / "four", records, top=4)
    assert [e for e, _ in calls] == [10] * 4 + [20] * 2 and len(w.extra["rerank"]) == 2 and w.arch == D
    assert RerankConfig(top=4).rungs() == 2 and RerankConfig(top=2).rungs() == 1 and RerankConfig(top=1).rungs() == 0
    w, calls = _rerank(tmp_path / "one", records, top=1)
    assert calls == [] and w.arch == A and w.extra["rerank_skipped"]


def test_the_shortlist_takes_the_best_of_each_depth_first() -> None:
    """A one-shot score that cannot compare depths (MRPC: every sub-network within a point of the constant
    answer) must not fill the re-ranking with one depth: the best of each depth enters first, then the rest."""
    from kdnas_bench.search.rerank import shortlist

    two_a, two_b, two_c = Arch(2, 256, 8, 1024), Arch(2, 256, 8, 768), Arch(2, 256, 8, 512)
    six, three = Arch(6, 256, 8, 256), Arch(3, 256, 8, 512)
    records = [_rec(two_a, 0.82, None), _rec(two_b, 0.819, None), _rec(two_c, 0.818, None), _rec(six, 0.815, None),
               _rec(three, 0.81, None)]
    by_arch = {r.arch: r for r in records}
    order = ranked([(r.metric, r.arch) for r in records])
    alive, refused = shortlist(order, 3, 8.0, by_arch, None)
    assert alive == [two_a, six, three] and refused == []
    alive, _ = shortlist(order, 4, 8.0, by_arch, None)
    assert alive == [two_a, six, three, two_b]  # then the best of the rest
    alive, refused = shortlist(order, 3, 8.0, by_arch, lambda a, b, r: a != six)  # the six-layer one measured over
    assert alive == [two_a, three, two_b] and refused == [str(six)]


class _Disagree:
    """A stub proxy evaluator whose metric prefers the shallow student and whose fidelity prefers the deep one."""

    def __init__(self, examples: int) -> None:
        self.examples = examples

    def evaluate(self, arch: Arch) -> Evaluation:
        return Evaluation(0.9 - 0.01 * arch.layers, "accuracy", {"accuracy": 0.9 - 0.01 * arch.layers},
                          secondary=-1.0 / arch.layers, secondary_name="-kd_loss")


@pytest.mark.parametrize(("by", "picked"), [("metric", A), ("fidelity", D)])
def test_a_rung_ordered_by_fidelity_to_the_teacher(tmp_path: Path, by: str, picked: Arch) -> None:
    records = [_rec(A, 0.9, None), _rec(B, 0.8, None), _rec(C, 0.7, None), _rec(D, 0.6, None)]
    result = SearchResult([Winner(8.0, A, 5.0, 6.0, 0.9, 0.9)], len(records), str(tmp_path), [])
    cfg = RerankConfig(top=4, examples=10, epochs=1.0, by=by)
    w = rerank(records, SPEC, result, cfg, lambda examples, epochs: _Disagree(examples), tmp_path / "rerank.jsonl").winners[0]
    assert w.arch == picked and w.extra["rerank"][0]["candidates"][0]["arch"] == str(picked)
    assert w.proxy_metric == pytest.approx(0.9 - 0.01 * picked.layers)  # the winner's metric, whatever ordered it
    assert ("by" in cfg.to_dict()) == (by == "fidelity")  # the default leaves run.json as before
    assert w.extra.get("rerank_by") == (None if by == "metric" else "fidelity")  # and result.json
    with pytest.raises(Exception, match="re-ranking by"):
        RerankConfig(by="loss")


def test_rerank_by_fidelity_needs_the_hard_reward(preds: Path, tiny_teacher: Path, tiny_glue: Path, tmp_path: Path,
                                                  run_cli) -> None:
    from .helpers import DEV, TINY_SPACE

    base = ["search", "--device", DEV, "--backend", "torch", "--budget-ms", "50", "--task", "sst2", "--teacher",
            str(tiny_teacher), "--data-dir", str(tiny_glue), "--space", str(TINY_SPACE), "--predictors", str(preds),
            "--out", str(tmp_path / "run"), "--rerank-by", "fidelity"]
    code, _, err = run_cli(*base, "--reward", "soft")
    assert code != 0 and "--rerank-by fidelity" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "supernet").exists()  # refused before any training
    code, _, err = run_cli(*base[:-2], "--rerank-by", "closest")
    assert code != 0 and "closest" in err


def test_the_rungs_learning_rate_reaches_their_distillations() -> None:
    """--rerank-lr: each rung's proxy distillation trains at it (distill's default otherwise), and run.json
    carries it only when set, so a default run's folder reads as before."""
    from kdnas_bench.defaults import DEFAULTS
    from kdnas_bench.search.evaluators.supernet import SupernetEvaluator

    def rung(cfg: RerankConfig) -> float:
        ev = SupernetEvaluator(supernet="sn", teacher="t", task="sst2", space="s.toml", rerank=cfg)
        return ev.proxy(500, 2.0).lr

    assert rung(RerankConfig(top=4, lr=2e-4)) == 2e-4
    assert rung(RerankConfig(top=4)) == DEFAULTS.distill_lr
    assert "lr" not in RerankConfig(top=4).to_dict() and RerankConfig(top=4, lr=2e-4).to_dict()["lr"] == 2e-4
    with pytest.raises(Exception, match="lr > 0"):
        RerankConfig(lr=0.0)


def test_a_bad_rerank_lr_is_one_line(preds: Path, tiny_teacher: Path, tiny_glue: Path, tmp_path: Path, run_cli) -> None:
    from .helpers import DEV, TINY_SPACE

    code, _, err = run_cli("search", "--device", DEV, "--backend", "torch", "--budget-ms", "50", "--task", "sst2",
                           "--teacher", str(tiny_teacher), "--data-dir", str(tiny_glue), "--space", str(TINY_SPACE),
                           "--predictors", str(preds), "--out", str(tmp_path / "run"), "--rerank-lr", "-1")
    assert code != 0 and "--rerank-lr must be positive" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "supernet").exists()
