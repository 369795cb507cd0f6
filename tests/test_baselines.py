"""Every search says whether it beat a person's pick: with ``--final`` the hand-crafted shapes, scaled to the
budget, are distilled with the search's own recipe, and ``result.json`` carries each gap (with Welch's t-test
where there are several seeds)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kdnas_bench.distill import trainer
from kdnas_bench.distill.inherit import TeacherShape
from kdnas_bench.keys import DatasetKey
from kdnas_bench.search import FinalOptions, SearchRequest, run_search
from kdnas_bench.search.baselines import BASELINES, families, parse_baselines, scaled_to_budget
from kdnas_bench.search.domain import SearchError
from kdnas_bench.space import Arch, Shape

from .helpers import DEV, GLUE, TINY_SPACE, search_args


def test_the_families_scale_to_the_budget() -> None:
    fams = families(TeacherShape(6, 384, 12, 1536))  # the claims benchmark's MiniLM teacher: its shapes
    assert fams["minilm"][1][0] == Arch(6, 64, 2, 256) and fams["minilm"][1][-1] == Arch(6, 384, 12, 1536)
    assert fams["tinybert"][1][0] == Arch(4, 96, 6, 368) and fams["layerdrop"][1] == [Arch(k, 384, 12, 1536)
                                                                                         for k in range(1, 7)]
    family = fams["minilm"][1]
    picked = scaled_to_budget(family, 5.0, lambda a: a.hidden / 50)  # the slowest that fits 5 ms: 224 wide
    assert picked.hidden == 224
    assert scaled_to_budget(family, 0.1, lambda a: a.hidden / 50) == family[0]  # none fits: the fastest
    assert parse_baselines(None) == BASELINES and parse_baselines("none") == ()
    assert parse_baselines("tinybert, minilm") == ("tinybert", "minilm")
    with pytest.raises(SearchError, match="unknown bert"):
        parse_baselines("bert")


@pytest.mark.skipif(not (GLUE / "SST-2" / "dev.tsv").is_file(), reason="../shared/data/glue not present")
def test_final_distils_the_scaled_baselines_with_the_search_recipe(preds: Path, tiny_teacher: Path, tiny_glue: Path,
                                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  run_cli) -> None:
    calls: list[dict[str, Any]] = []
    real = trainer.distill

    def spy(teacher: Any, task: Any, arch: Any, **kw: Any) -> Any:
        calls.append({"arch": Arch.parse(str(arch)), "init_model": kw.get("init_model") is not None,
                      **{k: kw.get(k) for k in ("max_examples", "epochs", "losses", "seed")}})
        return real(teacher, task, arch, **kw)

    monkeypatch.setattr(trainer, "distill", spy)
    req = SearchRequest(DatasetKey(DEV, "torch", 1), (50.0,), "sst2", teacher=str(tiny_teacher), data_dir=str(tiny_glue),
                        space=str(TINY_SPACE), predictors=str(preds), episodes=1, candidates=2, proxy_examples=64,
                        proxy_epochs=1.0, seed=3, strategy="random", shape=Shape(1, 128), run_dir=str(tmp_path / "run"),
                        final=FinalOptions(64, 1.0, ("minilm", "layerdrop"), 2))
    outcome = run_search(req)
    (w,) = json.loads((tmp_path / "run" / "result.json").read_text())["winners"]
    recipe = {(c["max_examples"], c["epochs"], c["losses"]) for c in calls}
    assert recipe == {(64, 1.0, calls[0]["losses"])}  # the winner's final and every baseline: one recipe
    rows = {r["name"]: r for r in w["baselines"]}
    assert set(rows) == {"minilm", "layerdrop"}
    fams = families(TeacherShape(2, 64, 4, 128))
    assert rows["minilm"]["arch"] == str(fams["minilm"][1][-1])  # 50 ms holds every tiny student: the slowest
    assert rows["layerdrop"]["arch"] == "2,64,4,128"
    assert any(c["arch"] == Arch(2, 64, 4, 128) and c["init_model"] for c in calls)  # the teacher's own layers
    assert sorted(c["seed"] for c in calls if str(c["arch"]) == rows["minilm"]["arch"]) == [3, 4]
    assert len(w["searched_metrics"]) == 2 and w["searched_metrics"][0] == w["final_metric"]
    for r in rows.values():
        assert r["gap"] == pytest.approx(sum(w["searched_metrics"]) / 2 - sum(r["metrics"]) / 2)
        assert 0 <= r["p_value"] <= 1 and r["verdict"] and r["predicted_latency_ms"] <= 50
        assert r["budget_share_from"] == "predicted" and 0 < r["budget_share"] <= 1
    assert outcome.result.winners[0].extra["baselines"][0]["name"] == "minilm"
    code, _, err = run_cli("report", str(tmp_path / "run"), "--md", str(tmp_path / "report.md"))
    assert code == 0, err
    md = (tmp_path / "report.md").read_text()
    gap = f"{rows['layerdrop']['gap']:+.4f}"
    assert "Did the search pay off?" in md and "layerdrop" in md and gap in md and "latency / budget" in md


def test_baselines_options_on_the_command_line(preds: Path, tiny_teacher: Path, tiny_glue: Path, tmp_path: Path,
                                              run_cli) -> None:
    code, _, err = run_cli(*search_args(preds, tiny_teacher, tiny_glue, tmp_path / "a", "--baselines", "minilm"))
    assert code != 0 and "add --final" in err and "Traceback" not in err
    code, _, err = run_cli(*search_args(preds, tiny_teacher, tiny_glue, tmp_path / "b", "--final", "--baselines", "x"))
    assert code != 0 and "--baselines: unknown x" in err and "Traceback" not in err


def test_families_of_an_odd_head_count_teacher_have_valid_shapes() -> None:
    """A 3-head, 192-wide teacher (odd TinyBERT widths such as 27): every member is a valid arch it can hold."""
    from kdnas_bench.distill.inherit import TeacherShape
    from kdnas_bench.search.baselines import families

    shape = TeacherShape(layers=3, hidden=192, heads=3, ffn=384)
    found = families(shape)
    assert found["tinybert"][1] and found["layerdrop"][1]  # (MiniLM's FFN 4h does not fit this teacher's FFN)
    for name, (_, archs) in found.items():
        for a in archs:
            assert a.hidden % a.heads == 0 and shape.fits(a), (name, a)
