"""The search's behaviour, pinned: small deterministic searches (a table evaluator under three strategies, the
proxy evaluator with a final distillation, the supernet evaluator with re-ranking, task-agnostic KD) give the
evaluations, winners and ``run.json`` stored in ``tests/data/search_golden.json``, which were generated before the
search was split into phases and its evaluators into a registry. A run folder written then (its ``run.json`` and
``evaluations.jsonl``, kept in the fixture) still resumes: nothing is evaluated again and the winners are the same.

Regenerate (only when a change of behaviour is intended, and say so in the commit):
``KDNAS_GOLDEN_WRITE=1 pytest tests/test_search_golden.py``.

``search_golden_soft.json`` holds the numbers from before the hard-constraint reward became the default (and
before a re-ranking rung of a single candidate was skipped): the same searches with ``reward_form="soft"``
reproduce them — every evaluation, and every winner except the re-ranked one, whose second rung (of one
candidate) is no longer run. It is never rewritten."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kdnas_bench.keys import DatasetKey
from kdnas_bench.search import FinalOptions, SearchRequest, SupernetOptions, run_search
from kdnas_bench.space import SearchSpace, Shape, sample_archs

from .helpers import DEV, GLUE, ROOT, TINY_SPACE

FIXTURE = Path(__file__).resolve().parent / "data" / "search_golden.json"
SOFT_FIXTURE = FIXTURE.with_name("search_golden_soft.json")
WRITE = os.environ.get("KDNAS_GOLDEN_WRITE") == "1"
TOL = 1e-6  # relative; distillation on CPU is deterministic, the tolerance only absorbs JSON round-off


def golden_table(path: Path) -> Path:
    """The golden table searches' metric table: 160 Sobol archs of the bert space, a smooth made-up accuracy."""
    space = SearchSpace.load(ROOT / "search" / "spaces" / "bert.toml")
    archs = sorted(set(sample_archs(space, 160, sampler="sobol", seed=5)))
    rows = [{**a.to_dict(), "metric_name": "accuracy",
             "metric": round(0.6 + 0.3 * (1 - np.exp(-a.layers * a.hidden / 1500)) + 0.02 * np.log(a.ffn / 256), 4)}
            for a in archs]
    path.write_text(json.dumps(rows))
    return path


def _requests(tmp: Path, preds: Path, teacher: Path, glue: Path) -> dict[str, SearchRequest]:
    key = DatasetKey(DEV, "torch", 1)
    table = str(golden_table(tmp / "table.json"))
    text = tmp / "text.txt"
    text.write_text("".join(f"passage {i}: the quick brown fox jumps over the lazy dog number {i * 7 % 13}.\n"
                            for i in range(120)))
    tiny: dict[str, Any] = dict(teacher=str(teacher), data_dir=str(glue), space=str(TINY_SPACE), predictors=str(preds),
                                episodes=2, candidates=2, proxy_examples=64, proxy_epochs=1.0, seed=3)
    reqs = {f"table-{s}": SearchRequest(key, (8.0, 20.0), "sst2", table=table, predictors=str(preds), strategy=s,
                                        episodes=3, candidates=4, seed=1) for s in ("kdnas", "random", "evolution")}
    reqs["proxy-final"] = SearchRequest(key, (50.0,), "sst2", strategy="random", shape=Shape(1, 128),
                                        final=FinalOptions(64, 1.0), **tiny)
    reqs["supernet-rerank"] = SearchRequest(key, (50.0,), "sst2", strategy="random", evaluator="supernet",
                                            supernet=SupernetOptions(None, 96, 1.0, 2, 64, 1.0), **tiny)
    reqs["agnostic"] = SearchRequest(key, (50.0,), "agnostic", strategy="random", text=str(text),
                                     **{**tiny, "data_dir": None})
    return reqs


def _observed(run: Path, outcome: Any, paths: dict[str, str]) -> dict[str, Any]:
    """What the run did, with this machine's folders replaced by placeholders."""
    text = (run / "evaluations.jsonl").read_text()
    evals = [json.loads(line) for line in text.splitlines()]
    keep = ("budget_ms", "arch", "predicted_latency_ms", "predicted_latency_ms_high", "proxy_metric", "reward",
            "final_metric", "final_train_examples", "oneshot_metric", "oneshot_winner", "rerank")
    return {"run_json": json.loads(_swap((run / "run.json").read_text(), paths)),
            "evaluations": [{k: e[k] for k in ("arch", "episode", "metric", "metric_name", "latency_ms",
                                                "latency_ms_high", "rewards")} for e in evals],
            "winners": [{k: v for k, v in w.to_dict().items() if k in keep} for w in outcome.result.winners],
            "log_lines": text.splitlines()}


def _swap(text: str, paths: dict[str, str], back: bool = False) -> str:
    for real, mark in sorted(paths.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(mark, real) if back else text.replace(real, mark)
    return text


def _same(got: Any, want: Any, where: str = "") -> None:
    """Equal, numbers to a relative ``TOL``."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), f"{where}: keys {sorted(got)} != {sorted(want)}"
        for k in want:
            _same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got} != {want}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _same(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(got, bool):
        # abs: a float32 figure of O(1) quantities (a KD loss near 0) carries ~1e-7 of round-off that differs between
        # CPUs' kernels (the fixture was written on an AMD VM; an Intel VM gives other bits)
        assert got == pytest.approx(want, rel=TOL, abs=1e-6), f"{where}: {got} != {want}"
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


RERANKED = ("proxy_metric", "reward", "rerank")  # what the skipped single-candidate rung changed


@pytest.mark.skipif(not (GLUE / "SST-2" / "dev.tsv").is_file(), reason="../shared/data/glue not present")
@pytest.mark.parametrize("form", ["hard", "soft"])
def test_the_same_seed_gives_the_same_search_as_before(preds: Path, tiny_teacher: Path, tiny_glue: Path,
                                                       tmp_path: Path, form: str) -> None:
    if WRITE and form == "soft":
        pytest.skip("the soft fixture holds the numbers from before the hard reward: never rewritten")
    reqs = {k: replace(r, reward_form=form) for k, r in _requests(tmp_path, preds, tiny_teacher, tiny_glue).items()}
    stored = {} if WRITE else json.loads((FIXTURE if form == "hard" else SOFT_FIXTURE).read_text())["runs"]
    paths = {str(tmp_path): "<TMP>", str(tiny_teacher): "<TEACHER>", str(tiny_glue): "<GLUE>", str(preds): "<PREDS>",
             str(TINY_SPACE): "<SPACE>"}
    got = {}
    for name, req in reqs.items():
        run = tmp_path / name
        got[name] = _observed(run, run_search(replace(req, run_dir=str(run))), paths)
        if not WRITE:
            want = stored[name]
            if form == "soft":  # run.json names the reward now; the soft fixture was written before it had a name
                assert got[name]["run_json"]["config"]["reward"].pop("form") == "soft"
            if form == "soft" and req.evaluator == "supernet":
                for w in [*got[name]["winners"], *want["winners"]]:
                    for k in RERANKED:
                        w.pop(k, None)
            _same({k: v for k, v in got[name].items() if k != "log_lines"},
                  {k: v for k, v in want.items() if k != "log_lines"}, f"{form}/{name}")
            # a run folder written before the change resumes: nothing evaluated again, the same winners
            old = tmp_path / f"{name}-old"
            old.mkdir()
            (old / "run.json").write_text(_swap(json.dumps(want["run_json"], indent=2), paths, back=True) + "\n")
            (old / "evaluations.jsonl").write_text("".join(line + "\n" for line in want["log_lines"]))
            if (run / "rerank.jsonl").exists():
                shutil.copy(run / "rerank.jsonl", old / "rerank.jsonl")
            again = replace(req, run_dir=str(old), final=None)
            if req.evaluator == "supernet":  # run.json names the supernet folder: the first run's
                again = replace(again, supernet=replace(req.supernet, folder=str(run / "supernet")))
            outcome = run_search(again)
            assert outcome.result.evaluated_now == 0, name
            _same([w.arch.to_dict() for w in outcome.result.winners], [w["arch"] for w in want["winners"]], name)
    if WRITE:
        FIXTURE.write_text(json.dumps({"about": __doc__.splitlines()[0], "runs": got}, indent=1) + "\n")
        pytest.skip(f"wrote {FIXTURE}")
