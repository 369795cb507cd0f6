"""Progress in logs: when output is not a terminal, long steps print a plain line with done/total, elapsed and ETA
every ``KDNAS_PROGRESS_SECONDS`` (instead of minutes of silence), and third-party progress bars are switched off."""

from __future__ import annotations

import io
import os

import pytest

from kdnas_bench.distill.training import progress_bar
from kdnas_bench.progress import LineProgress, duration, quiet_third_party


def test_line_progress_prints_done_total_eta_and_fields() -> None:
    out = io.StringIO()
    with LineProgress("supernet sst2", out=out, every=0) as bar:
        task = bar.add_task("supernet sst2", total=4, loss=float("nan"), rate=0.0)
        for step in range(1, 5):
            bar.update(task, completed=step, loss=0.5 / step, rate=100.0)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("supernet sst2: 1/4 (25%)") and "ETA" in lines[0] and "loss 0.5000" in lines[0]
    assert "100 ex/s" in lines[0]
    assert lines[-1].startswith("supernet sst2: 4/4 (100%)") and "ETA" not in lines[-1]
    assert len(lines) == 4  # one per update at every=0; the end adds none when the last is told


def test_line_progress_is_quiet_between_intervals_and_silent_without_progress() -> None:
    out = io.StringIO()
    with LineProgress("profiling", out=out, every=3600) as bar:
        task = bar.add_task("profiling", total=100)
        for i in range(50):
            bar.update(task, completed=i + 1)
    assert out.getvalue().splitlines() == [out.getvalue().splitlines()[0]]  # only the closing line
    assert out.getvalue().startswith("profiling: 50/100 (50%)")
    silent = io.StringIO()
    with LineProgress("search", out=silent, every=3600) as bar:
        bar.add_task("search", total=6)
    assert silent.getvalue() == ""  # a step that failed before doing anything adds no line to its error


def test_trainers_report_lines_when_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert isinstance(progress_bar(True, "train", 10), LineProgress)  # stderr is captured: not a terminal
    assert not isinstance(progress_bar(False, "train", 10), LineProgress)


def test_duration() -> None:
    assert [duration(s) for s in (4.4, 65, 3725)] == ["4s", "1m05s", "1h02m"]


def test_third_party_bars_are_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    quiet_third_party()
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    from transformers.utils import logging as hf_logging

    assert not hf_logging.is_progress_bar_enabled()
