"""A timing is trusted or flagged: the final budget check of a search measures in rounds until one is quiet, and
a noisy timing says "not judged: noisy machine" instead of held; one above the predicted interval says so. Every
time here is a deterministic stub: no real timing is compared."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kdnas_bench.profiling import verdict
from kdnas_bench.profiling.timing import Timing
from kdnas_bench.profiling.verdict import QUIET_CV, QUIET_IQR, judge, measure_until_quiet
from kdnas_bench.search.result import SearchResult, Winner
from kdnas_bench.space import Arch

QUIET = (1.00, 1.01, 0.99, 1.02, 0.98, 1.00, 1.01, 0.99, 1.00, 1.00)  # ms
NOISY = (1.0, 1.1, 0.9, 5.8, 1.2, 6.1, 0.8, 1.7, 4.9, 1.0)  # the shared machine of the issue: cv ~0.8


def _fields(times_ms: tuple[float, ...]) -> dict[str, Any]:
    """What one round of measure_latency returns, computed from stub times by the real Timing statistics."""
    t = Timing(tuple(x / 1e3 for x in times_ms))
    return {"measured_latency_ms": t.median_ms, "measured_p90_ms": t.p90_ms, "measured_cv": t.cv,
            "measured_iqr_ratio": t.iqr_ratio}


class Stub:
    """A measuring callable that plays back rounds of fake times, and a fake clock that advances per round."""

    def __init__(self, *rounds: tuple[float, ...], seconds_per_round: float = 5.0) -> None:
        self.rounds = list(rounds)
        self.calls = 0
        self.now = 0.0
        self.step = seconds_per_round

    def __call__(self) -> dict[str, Any]:
        times = self.rounds[min(self.calls, len(self.rounds) - 1)]
        self.calls += 1
        self.now += self.step
        return _fields(times)

    def clock(self) -> float:
        return self.now


def test_the_stub_rounds_are_what_they_claim() -> None:
    quiet, noisy = _fields(QUIET), _fields(NOISY)
    assert quiet["measured_iqr_ratio"] <= QUIET_IQR and quiet["measured_cv"] <= QUIET_CV
    assert noisy["measured_cv"] > 0.5 and noisy["measured_iqr_ratio"] > QUIET_IQR


def test_a_quiet_first_round_is_judged_at_once() -> None:
    stub = Stub(QUIET)
    m = measure_until_quiet(stub, clock=stub.clock)
    assert stub.calls == 1 and m["measured_rounds"] == 1 and m["measured_quiet"] is True
    assert judge(m, budget_ms=1.5, predicted_high_ms=1.2).text == "held"
    over = judge(m, budget_ms=0.8, predicted_high_ms=1.2)
    assert over is not None and (over.kind, over.text) == ("over", "over")


def test_noise_then_quiet_measures_again_and_keeps_the_quiet_round() -> None:
    stub = Stub(NOISY, NOISY, QUIET)
    m = measure_until_quiet(stub, clock=stub.clock)
    assert stub.calls == 3 and m["measured_rounds"] == 3 and m["measured_quiet"] is True
    assert m["measured_latency_ms"] == pytest.approx(1.0) and len(m["measured_round_ms"]) == 3
    assert judge(m, 1.5, 1.2).kind == "held"


def test_a_machine_that_stays_noisy_is_not_judged() -> None:
    stub = Stub(NOISY)
    m = measure_until_quiet(stub, clock=stub.clock)
    assert stub.calls == verdict.MAX_ROUNDS and m["measured_quiet"] is False
    v = judge(m, budget_ms=50.0, predicted_high_ms=60.0)  # the raw median is far within the budget: still no verdict
    assert v is not None and v.kind == "not judged"
    assert v.text.startswith("not judged: noisy machine (cv ") and f"{verdict.MAX_ROUNDS} rounds" in v.text
    assert f"cv {m['measured_cv']:.2f}" in v.text


def test_the_time_cap_stops_the_rounds() -> None:
    stub = Stub(NOISY, seconds_per_round=verdict.MAX_SECONDS)  # one round already uses the whole cap
    m = measure_until_quiet(stub, clock=stub.clock)
    assert stub.calls == 1 and m["measured_rounds"] == 1 and judge(m, 50.0).kind == "not judged"


def test_a_failed_round_is_returned_as_it_is() -> None:
    m = measure_until_quiet(lambda: {"measured_latency_ms": None, "measure_error": "OOM"})
    assert m == {"measured_latency_ms": None, "measure_error": "OOM"} and judge(m, 5.0) is None


def test_outside_the_predicted_interval_says_so() -> None:
    m = {**_fields(QUIET), "measured_quiet": True}
    v = judge(m, budget_ms=2.0, predicted_high_ms=0.9)
    assert v is not None and v.kind == "held" and "outside the predicted interval" in v.text
    at_reference = {**m, "measured_at_reference_ms": 0.85}  # slow machine now; at the reference speed it is inside
    assert judge(at_reference, 2.0, 0.9).text == "held"


# -- through the search's final step -----------------------------------------------------------------------
def _finalize(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stub: Stub, budget: float = 50.0) -> dict[str, Any]:
    """``finalize`` on one winner, with the distillation and the machine stubbed and the stub's rounds as timings."""
    from kdnas_bench.keys import DatasetKey
    from kdnas_bench.search import final
    from kdnas_bench.search.recipe import Recipe
    from kdnas_bench.space import Shape

    distilled = SimpleNamespace(metrics={"accuracy": 0.8}, primary=0.8, train_examples=10, train_seconds=1.0)

    def fake_measure(arch: Arch, shape: Shape, backend: str, threads: int, **kw: Any) -> dict[str, Any]:
        assert kw.get("until_quiet") is True  # the budget check measures until quiet
        return measure_until_quiet(stub, clock=stub.clock)

    monkeypatch.setattr("kdnas_bench.distill.trainer.distill", lambda *a, **k: distilled)
    monkeypatch.setattr(final, "this_machine_is", lambda *a: True)
    monkeypatch.setattr(final, "measure_latency", fake_measure)
    w = Winner(budget, Arch(1, 32, 2, 64), 1.0, 1.2, 0.7, 0.7)
    result = SearchResult([w], 1, str(tmp_path), [])
    job = final.FinalJob("teacher", "sst2", DatasetKey("dev-x", "torch", 1), Shape(1, 128), Recipe(None, 3.0, "logits"))
    return final.finalize(result, job).winners[0].extra


def test_finalize_on_a_noisy_machine_is_not_judged(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    extra = _finalize(monkeypatch, tmp_path, Stub(NOISY))
    assert extra["budget_held"] is None and extra["budget_verdict"] == "not judged"
    assert extra["budget_verdict_text"].startswith("not judged: noisy machine")
    assert extra["measured_rounds"] == verdict.MAX_ROUNDS and extra["measured_cv"] > 0.5 and "measured_p90_ms" in extra
    from kdnas_bench.cli.search_view import verdict_cell

    assert verdict_cell(extra, {True: "yes", False: "NO", None: "-"}).startswith("not judged: noisy machine")


def test_finalize_on_a_quiet_machine_holds_or_not(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    held = _finalize(monkeypatch, tmp_path, Stub(QUIET))
    assert held["budget_held"] is True and held["budget_verdict"] == "held" and held["measured_rounds"] == 1
    over = _finalize(monkeypatch, tmp_path, Stub(QUIET), budget=0.5)
    assert over["budget_held"] is False and over["budget_verdict"] == "over"
    from kdnas_bench.cli.search_view import verdict_cell

    assert verdict_cell(held, {}).startswith("yes (cv ") and verdict_cell(over, {}).startswith("NO (cv ")


def test_the_run_report_shows_the_verdict() -> None:
    from kdnas_bench.report.run_report import measured_verdict

    noisy = {"verdict": "not judged", "verdict_text": "not judged: noisy machine (cv 0.70, IQR/median 0.40, 4 rounds)",
             "measured_held": None}
    assert measured_verdict(noisy).startswith("not judged: noisy machine (cv 0.70")
    assert measured_verdict({"verdict": "held", "verdict_text": "held", "measured_held": True}) == "yes"
    assert measured_verdict({"measured_held": False}) == "NO"  # a run from before verdicts
