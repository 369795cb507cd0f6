"""``kdnas-bench search`` defaults to the measured best recipe (supernet scores, re-ranking, the teacher's head size) at
a CPU-sized scale; ``--evaluator proxy`` is the paper's path at the paper's scale; a table keeps the proxy kind."""

from __future__ import annotations

import json
from pathlib import Path

from kdnas_bench.defaults import DEFAULTS

from .helpers import DEV, TINY_SPACE


def _base(preds: Path, teacher: Path, glue: Path, run: Path) -> list[str]:
    return ["search", "--device", DEV, "--backend", "torch", "--budget-ms", "50", "--task", "sst2", "--teacher",
            str(teacher), "--data-dir", str(glue), "--space", str(TINY_SPACE), "--predictors", str(preds), "--out",
            str(run), "--json"]


def test_default_search_is_the_one_shot_recipe(preds: Path, tiny_teacher: Path, tiny_glue: Path, tmp_path: Path,
                                               run_cli) -> None:
    code, out, err = run_cli(*_base(preds, tiny_teacher, tiny_glue, tmp_path / "run"), "--supernet-examples", "120",
                             "--rerank-examples", "40")  # sizes only: the kind, head size and scale are the defaults
    assert code == 0, err
    cfg = json.loads((tmp_path / "run" / "run.json").read_text())["config"]
    assert cfg["evaluator"]["kind"] == "supernet" and cfg["evaluator"]["rerank"]["top"] == DEFAULTS.rerank_top
    assert cfg["head_dim"] == 16  # the tiny teacher's 64 hidden / 4 heads
    assert (cfg["episodes"], cfg["candidates"]) == (DEFAULTS.oneshot_episodes, DEFAULTS.oneshot_candidates)
    recipe = json.loads((tmp_path / "run" / "supernet" / "supernet.json").read_text())["recipe"]
    assert recipe["config"]["epochs"] == DEFAULTS.supernet_epochs
    assert all(w["arch"]["hidden"] // w["arch"]["heads"] == 16 for w in json.loads(out)["winners"])


def test_proxy_is_one_flag_away_at_the_papers_scale(preds: Path, tiny_teacher: Path, tiny_glue: Path, tmp_path: Path,
                                                    run_cli) -> None:
    code, _, err = run_cli(*_base(preds, tiny_teacher, tiny_glue, tmp_path / "run"), "--evaluator", "proxy",
                           "--proxy-examples", "40", "--proxy-epochs", "1", "--head-dim", "any", "--episodes", "1")
    assert code == 0, err
    cfg = json.loads((tmp_path / "run" / "run.json").read_text())["config"]
    assert cfg["evaluator"]["kind"] == "proxy-distill" and "rerank" not in cfg["evaluator"]
    assert cfg["candidates"] == DEFAULTS.proxy_candidates and cfg.get("head_dim") is None
    assert not (tmp_path / "run" / "supernet").exists()
