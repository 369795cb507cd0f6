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
    picks = band_students(6, SPACE, fake, 5.0, 15.0)
    assert len(set(picks)) == 6 and all(5.0 <= fake[a] <= 15.0 for a in picks)
    ms = sorted(fake[a] for a in picks)
    assert ms[0] == min(v for v in fake.values() if v >= 5.0) and ms[-1] == max(v for v in fake.values() if v <= 15.0)


def test_too_few_in_the_band_is_refused() -> None:
    archs = SearchSpace.load(SPACE).archs
    with pytest.raises(SystemExit, match="fewer than --n 5"):
        band_students(5, SPACE, {archs[0]: 1.0, archs[1]: 1.5}, 0.5, 2.0)
