"""The rank-fidelity benchmark's band of a budget: students come from the space, lie inside the band, are
distinct and spread over it; too few archs in the band is a one-line refusal."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kdnas_bench.space import SearchSpace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_rank_fidelity import band_students

SPACE = str(Path(__file__).resolve().parents[1] / "search/spaces/minilm-students.toml")


def test_band_students_are_distinct_inside_and_spread() -> None:
    archs = SearchSpace.load(SPACE).archs
    fake = {a: float(a.layers * a.hidden) / 100 for a in archs}  # any latency the test can reason about
    picks = band_students(6, fake, 5.0, 15.0)
    assert len(set(picks)) == 6 and all(5.0 <= fake[a] <= 15.0 for a in picks)
    ms = sorted(fake[a] for a in picks)
    assert ms[0] == min(v for v in fake.values() if v >= 5.0) and ms[-1] == max(v for v in fake.values() if v <= 15.0)


def test_too_few_in_the_band_is_refused() -> None:
    archs = SearchSpace.load(SPACE).archs
    with pytest.raises(SystemExit, match="fewer than --n 5"):
        band_students(5, {archs[0]: 1.0, archs[1]: 1.5}, 0.5, 2.0)


def test_top_places_says_what_a_re_ranking_of_the_top_gets() -> None:
    from bench_rank_fidelity import top_places

    ref = [0.1, 0.9, 0.5, 0.7, 0.3]
    assert top_places(ref, ref, 2) == {"top2_overlap": 2, "reference_best_in_top2": True, "reference_rank_of_pick": 1}
    score = [0.8, 0.1, 0.9, 0.2, 0.3]  # picks 2 (the reference's third), keeps 0 and 2
    assert top_places(score, ref, 2) == {"top2_overlap": 0, "reference_best_in_top2": False,
                                         "reference_rank_of_pick": 3}
