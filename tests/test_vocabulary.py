"""One vocabulary and output that reads at 80 columns and in logs: the old option spellings still work with one
deprecation note (and a run made with one resumes with the other), every table writes an arch one way, the
winners and report tables keep their key cells whole at 80 columns (never cut with "…"), and a search whose
output is not a terminal prints one line per candidate, failures included."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from kdnas_bench.predictors.registry import fit_and_save
from kdnas_bench.space import Arch, SearchSpace, arch_text, sample_archs

from .conftest import ROOT
from .helpers import DEV, real_rows, write_store

ARCH = Arch(1, 128, 4, 640)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("vocab")
    write_store(root / "profiles", DEV, real_rows())
    fit_and_save(DEV, "torch", 1, store=root / "profiles", out=root / "predictors")
    space = SearchSpace.load(ROOT / "search" / "spaces" / "bert.toml")
    archs = sorted(set(sample_archs(space, 120, sampler="sobol", seed=5)))
    table = root / "table.json"
    table.write_text(json.dumps([{**a.to_dict(), "metric": round(0.6 + a.layers * a.hidden / 40_000, 4),
                                  "metric_name": "accuracy"} for a in archs]))
    return {"table": table, "preds": root / "predictors"}


def _search(env: dict[str, Path], *extra: str) -> list[str]:
    return ["search", "--device", DEV, "--backend", "torch", "--budget-ms", "8,20", "--task", "sst2", "--table",
            str(env["table"]), "--predictors", str(env["preds"]), "--episodes", "2", "--candidates", "3", *extra]


def _lines(out: str, start: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(start)]


# -- item: one vocabulary ----------------------------------------------------------------------------------------
def test_arch_is_written_one_way() -> None:
    assert arch_text(ARCH) == str(ARCH) == "1,128,4,640" == arch_text(ARCH.to_dict())


def test_search_run_spelling_still_works_and_resumes_with_out(env: dict[str, Path], tmp_path: Path, run_cli) -> None:
    """A run folder made with the old ``--run`` resumes (as a finished run: its stored result) with ``--out``;
    not a terminal: one plain line per evaluated candidate."""
    run = tmp_path / "run"
    code, out, err = run_cli(*_search(env, "--run", str(run)))
    assert code == 0, err
    notes = [line for line in err.splitlines() if "deprecated" in line]
    assert notes == ["note: --run is deprecated; use --out"]
    lines = _lines(out, "candidate ")
    first = json.loads((run / "result.json").read_text())
    assert len(lines) == first["evaluations"] >= 6, out
    assert all(" · episode " in line and " · pred " in line and " ms (high " in line and "metric" in line
               for line in lines), lines
    assert {line.split(" · ")[2] for line in lines} <= {arch_text(Arch.from_dict(r)) for r in
                                                         json.loads(env["table"].read_text())}
    code, out2, err2 = run_cli(*_search(env, "--out", str(run), "--json"))
    assert code == 0 and "deprecated" not in err2, err2
    assert _lines(err2, "candidate ") == []  # finished: nothing evaluated again
    assert [w["arch"] for w in json.loads(out2)["winners"]] == [w["arch"] for w in first["winners"]]


def test_both_spellings_at_once_is_one_clear_line(env: dict[str, Path], tmp_path: Path, run_cli) -> None:
    code, _, err = run_cli(*_search(env, "--run", str(tmp_path / "a"), "--out", str(tmp_path / "b")))
    assert code == 2 and "give --out or its old spelling --run, not both" in err
    assert "Traceback" not in err and not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_compare_devices_spelling(run_cli) -> None:
    args = ["compare", "--students", "bert-tiny,2,128,2,256", "--json", "--no-measure"]
    code, new, err = run_cli(*args, "--device", "intel-xeon-processor-2c-cfff2f")
    assert code == 0 and "deprecated" not in err, err
    code, old, err = run_cli(*args, "--devices", "intel-xeon-processor-2c-cfff2f")
    assert code == 0 and err.count("deprecated") == 1 and "use --device" in err
    assert json.loads(old) == json.loads(new)
    assert {r["student"] for r in json.loads(new)} == {"bert-tiny", "2,128,2,256"}


def test_supernet_examples_spelling_reaches_the_same_recipe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                            run_cli) -> None:
    """``supernet train --examples N`` (old) and ``--max-examples N`` give the same recipe, so a supernet folder
    trained with one resumes (or is reused) with the other."""
    from kdnas_bench.errors import KdnasError
    from kdnas_bench.supernet import train as supernet_train

    seen: list[Any] = []

    def stop(*args: Any, cfg: Any = None, **kwargs: Any) -> Any:
        seen.append(cfg)
        raise KdnasError("stopped before training")

    monkeypatch.setattr(supernet_train, "ensure_supernet", stop)
    monkeypatch.setattr("kdnas_bench.jobs.supernet.checked_out", lambda *a: None)
    base = ["supernet", "train", "--teacher", str(tmp_path / "t"), "--task", "sst2", "--out", str(tmp_path / "s"),
            "--space", str(ROOT / "search" / "spaces" / "bert.toml")]
    code, _, err = run_cli(*base, "--examples", "123")
    assert code == 2 and "stopped before training" in err and "--examples is deprecated; use --max-examples" in err
    code, _, err = run_cli(*base, "--max-examples", "123")
    assert code == 2 and "stopped before training" in err and "deprecated" not in err
    assert len(seen) == 2 and seen[0] == seen[1] and seen[0].examples == 123


def test_search_help_names_the_tasks_as_elsewhere(run_cli) -> None:
    code, out, _ = run_cli("search", "--help")
    assert code == 0 and "mnli-m, mnli-mm" in " ".join(out.split()) and "../shared" not in out


def test_no_help_names_a_path_only_this_checkout_has() -> None:
    """Help texts and examples use paths a user has (glue/, their own files), never the checkout's ../shared."""
    import click

    from kdnas_bench.cli import cli

    def texts(cmd: click.Command) -> list[str]:
        own = [cmd.help or "", *((p.help or "") for p in cmd.params if isinstance(p, click.Option))]
        subs = cmd.commands.values() if isinstance(cmd, click.Group) else []
        return own + [t for sub in subs for t in texts(sub)]

    found = texts(cli)
    assert len(found) > 150 and not [t for t in found if "../shared" in t or "shared/data" in t]


# -- item: 80 columns and logs -----------------------------------------------------------------------------------
def _render(table: Any, width: int = 80) -> str:
    buf = StringIO()
    Console(width=width, file=buf, color_system=None, emoji=False).print(table)
    return buf.getvalue()


def _winner(budget: float, verdict: str) -> Any:
    from kdnas_bench.search.result import Winner

    return Winner(budget, ARCH, 4.12, 4.87, 0.8123, 0.7969,
                  {"final_metric": 0.8412, "measured_latency_ms": 4.55, "budget_held": True,
                   "budget_verdict": verdict, "budget_verdict_text": f"{verdict} (measured 4.55 ms <= {budget:g} ms)"})


def test_winners_table_keeps_key_cells_whole_at_80_columns() -> None:
    from kdnas_bench.cli.search_view import winners_table

    result = SimpleNamespace(baseline=None, evaluations=20, winners=[_winner(5, "held"), _winner(13, "held")])
    outcome = SimpleNamespace(result=result, run_dir="runs/search-sst2-0", final=True)
    text = _render(winners_table(outcome, 80))
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    for cell in ("1,128,4,640", "4.12", "4.87", "4.55", "measured ms", "budget held", "budget ms", "final metric",
                 "yes (measured 4.55 ms <= 13 ms)"):
        assert cell in text, (cell, text)
    wide = _render(winners_table(outcome, 400), 400)
    assert "1,128,4,640" in wide and len(wide.splitlines()) < len(text.splitlines())  # one row per winner


def test_report_shows_measured_against_budget_at_80_columns(env: dict[str, Path], tmp_path: Path, run_cli,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from kdnas_bench.cli import common

    run = tmp_path / "run"
    code, _, err = run_cli(*_search(env, "--out", str(run), "--json"))
    assert code == 0, err
    result = json.loads((run / "result.json").read_text())
    for w in result["winners"]:
        w.update(final_metric=0.84, measured_latency_ms=3.21, budget_verdict="held",
                 budget_verdict_text=f"held (measured 3.21 ms <= {w['budget_ms']:g} ms)")
    (run / "result.json").write_text(json.dumps(result))
    monkeypatch.setattr(common.console, "_width", 80)
    code, out, err = run_cli("report", str(run))
    assert code == 0, err
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80
    for cell in ("measured ms", "held (measured)", "predicted ms (upper)", "3.21",
                 "yes (measured 3.21 ms <= 20 ms)", arch_text(result["winners"][0]["arch"])):
        assert cell in out, (cell, out)
    assert "not shown at 80 columns" not in out.split("chosen students per budget")[1].split("\n\n")[0]


def test_non_terminal_search_prints_every_candidate_and_failure() -> None:
    from kdnas_bench.cli.search_cmds import Progress
    from kdnas_bench.keys import DatasetKey
    from kdnas_bench.space import Shape

    buf = StringIO()
    out = Console(file=buf, width=80, color_system=None)
    assert not out.is_terminal
    req = SimpleNamespace(key=DatasetKey(DEV, "torch", 1), episodes=1, candidates=2, budgets_ms=(8.0,),
                          strategy="kdnas", mode="hard", reward_form="hard", shape=Shape(1, 128))
    progress = Progress(out, req)
    progress("start", {"task": "sst2", "run": "runs/x"})
    progress("episode", {"episode": 0})
    ok = {"episode": 0, "arch": ARCH.to_dict(), "latency_ms": 3.5, "latency_ms_high": 4.0, "metric": 0.81,
          "rewards": {"8": 0.83}, "seconds": 1.25}
    progress("evaluation", ok)
    error = "proxy distillation failed: CUDA out of memory while training a very long candidate " * 2
    progress("evaluation", {**ok, "arch": Arch(2, 256, 4, 1024).to_dict(), "metric": float("nan"), "error": error,
                            "rewards": {"8": None}})
    progress("end", {})
    lines = _lines(buf.getvalue(), "candidate ")
    assert len(lines) == 2, buf.getvalue()
    assert lines[0] == ("candidate 1 · episode 1/1 · 1,128,4,640 · pred 3.50 ms (high 4.00) · metric 0.8100 · "
                        "R@8 ms 0.8300 · 1.2 s")
    assert lines[1].startswith("candidate 2 · episode 1/1 · 2,256,4,1024 failed: proxy distillation failed")
    assert lines[1].endswith("very long candidate")  # the whole error on one line (a log line is never wrapped)


def test_docs_examples_of_the_old_spellings_are_gone() -> None:
    """The docs use the current spellings (tests/test_docs.py parses every example and fails on a deprecation
    note; this is the quick read of the same)."""
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    text = "\n".join(p.read_text(encoding="utf-8") for p in docs if "reference" not in p.parts)
    assert "--devices " not in text and "../shared/data/glue" not in text
