"""The measuring and predictor verbs as library calls, without the CLI: each typed request checks its own values
and cross-field rules (one line each), and each call runs on tiny inputs, reporting through its events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kdnas_bench.errors import KdnasError
from kdnas_bench.keys import DatasetKey
from kdnas_bench.models import NAMED, parse_arch
from kdnas_bench.predictors.jobs import list_predictor_entries, run_fit, run_predict, speed_now_status
from kdnas_bench.predictors.profile_jobs import run_measure, run_profile
from kdnas_bench.predictors.requests import FitRequest, PredictorsRequest, PredictRequest
from kdnas_bench.profiling.jobs import list_devices, run_remeasure, show_space
from kdnas_bench.profiling.requests import (
    DevicesRequest,
    MeasureRequest,
    ProfileRequest,
    RemeasureRequest,
    SpaceShowRequest,
    TimingOptions,
)
from kdnas_bench.space import Arch

from .helpers import TINY_SPACE, Events
from .test_drift import scripted_profile

FAST = TimingOptions(warmup=1, min_calls=3, min_seconds=0.01, max_seconds=0.5)


# -- requests: defaults and cross-field rules, one line each ----------------------------------------------
@pytest.mark.parametrize("make, message", [
    (lambda: ProfileRequest(threads=0), "--threads must be positive, got 0"),
    (lambda: ProfileRequest(samples=-1), "--samples must be positive"),
    (lambda: ProfileRequest(canary="sometimes"), "unknown --canary 'sometimes'"),
    (lambda: MeasureRequest(arch=Arch(2, 64, 2, 128), seq=1024), "--seq 1024 exceeds BERT's 512 positions"),
    (lambda: MeasureRequest(arch=Arch(2, 64, 2, 128), batch=0), "--batch must be positive"),
    (lambda: RemeasureRequest(memory_only=True, fresh=3), "--fresh measures latency; it does not go with --memory-only"),
    (lambda: RemeasureRequest(include_unmeasured=True), "--include-unmeasured goes with --memory-only"),
    (lambda: RemeasureRequest(samples=0), "--samples and --fresh must be >= 0, and one of them positive"),
    (lambda: FitRequest("d", reference_ms=2.0, drift="none"), "--reference-ms goes with --drift canary"),
    (lambda: FitRequest("d", all_rows=True, max_load=2.0), "--all-rows and --max-load exclude each other"),
    (lambda: FitRequest("d", from_threads=2), "--from-backend and --from-threads need --from-device"),
    (lambda: PredictRequest("d"), "give either --arch"),
    (lambda: PredictRequest("d", archs=(Arch(2, 64, 2, 128),), configs="c.json"), "give either --arch"),
    (lambda: PredictRequest("d", configs="c.json", seq=64), "--seq and --batch go with --arch"),
    (lambda: PredictRequest("d", archs=(Arch(2, 64, 2, 128),), speed="later"), "unknown --speed 'later'"),
])
def test_requests_refuse_bad_values_in_one_line(make: Any, message: str) -> None:
    with pytest.raises(KdnasError) as info:
        make()
    assert message in str(info.value) and "\n" not in str(info.value)


def test_request_defaults_are_the_command_lines() -> None:
    assert ProfileRequest().rows_wanted == 100 and ProfileRequest().mode_text() == "until 100 rows"
    adaptive = ProfileRequest(minutes=10, target=0.95)
    assert adaptive.adaptive and adaptive.rows_wanted == 0 and adaptive.mode_text() == "adaptive (≤ 10 min, target 95%)"
    r = RemeasureRequest()
    assert (r.stored_rows, r.fresh_rows, r.pick_seed, r.canary) == (50, 0, 0, None)  # canary None: as stored
    assert FitRequest("d").load_limit == "auto" and FitRequest("d", all_rows=True).load_limit is None
    assert FitRequest("d", from_device="s", threads=2).source == ("s", "torch", 2)
    p = PredictRequest("d", archs=(Arch(2, 64, 2, 128),), seq=16)
    assert p.arch_configs() == [{"layers": 2, "hidden": 64, "heads": 2, "ffn": 128, "seq": 16, "batch": 1}]


# -- the one arch parser ------------------------------------------------------------------------------------
def test_one_arch_parser_for_every_spelling(tmp_path: Path) -> None:
    tiny = Arch(4, 312, 12, 1200)
    assert parse_arch("4,312,12,1200") == parse_arch("4L-312H-12A-1200F") == parse_arch(" TinyBERT-4L ") == tiny
    assert parse_arch("tinybert-4l") == NAMED["tinybert-4l"][0]
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps({"num_hidden_layers": 2, "hidden_size": 64,
                                                            "num_attention_heads": 2, "intermediate_size": 128}))
    assert parse_arch(str(tmp_path / "m")) == Arch(2, 64, 2, 128)
    with pytest.raises(KdnasError, match="did you mean 'tinybert-4l'"):
        parse_arch("tinybert-4")
    with pytest.raises(KdnasError, match="no such model folder"):
        parse_arch(str(tmp_path / "nothing"))
    from kdnas_bench.cli.common import parse_arch as common_parse
    from kdnas_bench.cli.options import parse_arch_text

    for text in ("4,312,12,1200", "4L-312H-12A-1200F", "tinybert-4l"):  # both CLI spots call the library's parser
        assert common_parse(text) == parse_arch_text(text) == parse_arch(text)
    with pytest.raises(KdnasError) as a:
        common_parse("4,310,12,1200")
    with pytest.raises(KdnasError) as b:
        parse_arch_text("4,310,12,1200")
    assert str(a.value) == str(b.value) and "must divide" in str(a.value)  # one wording


# -- the measuring verbs --------------------------------------------------------------------------------------
def test_space_show_and_devices_without_the_cli(tmp_path: Path) -> None:
    view = show_space(SpaceShowRequest(str(TINY_SPACE)))
    assert view.space.name == "tiny" and view.info["layers"] == [1, 2]
    assert view.configs == view.space.size * len(view.space.shapes)
    assert list_devices(DevicesRequest(str(tmp_path))) == []


def test_profile_measure_remeasure_without_the_cli(tmp_path: Path) -> None:
    events = Events()
    req = ProfileRequest(space=str(TINY_SPACE), store=str(tmp_path), samples=4, seed=1, memory=False, timing=FAST)
    result = run_profile(req, events)
    assert result.summary["rows"] == result.summary["measured"] == 4 and result.summary["rows_before"] == 0
    assert events.kinds()[0] == "start" and events.kinds().count("progress") >= 4
    start = events.seen[0][1]
    assert start["total"] == 4 and start["mode"] == "until 4 rows" and start["memory"] is False
    assert run_profile(req).summary["rows_before"] == 4  # resumable: nothing more to do
    (entry,) = list_devices(DevicesRequest(str(tmp_path)))
    assert entry["rows"] == 4 and entry["backend"] == "torch"

    floor = run_remeasure(RemeasureRequest(samples=2, store=str(tmp_path), space=str(TINY_SPACE)), events)
    assert floor.doc is not None and floor.doc["raw"]["rows"] == 2
    assert (floor.dataset.path / "_floor.json").is_file() and "remeasured" not in floor.to_json()
    assert ("start", {"stored": 2, "fresh": 0, "dataset": str(floor.dataset.path)}) in events.seen

    measured = run_measure(MeasureRequest(arch=Arch(1, 32, 2, 64), seq=8, batch=1, speed_factor=False, timing=FAST))
    assert measured.record["median_ms"] > 0 and measured.record["arch"] == Arch(1, 32, 2, 64).to_dict()
    assert "canary_ms" not in measured.record and measured.measurement.ok


# -- the predictor verbs --------------------------------------------------------------------------------------
def test_fit_predict_and_speed_now_without_the_cli(tmp_path: Path) -> None:
    scripted_profile(tmp_path / "p", 30)
    events = Events()
    canary = run_fit(FitRequest("dev", store=str(tmp_path / "p"), out=str(tmp_path / "canary")), events)
    assert events.kinds() == ["fitting", "fitted"] and canary.meta["drift"]["mode"] == "canary"
    assert canary.to_json()["path"] == str(canary.folder)
    raw = run_fit(FitRequest("dev", store=str(tmp_path / "p"), out=str(tmp_path / "raw"), drift="none"))
    assert raw.meta["drift"]["mode"] == "none"

    (yes,) = list_predictor_entries(PredictorsRequest(str(tmp_path / "canary"), str(tmp_path / "p")))
    (no,) = list_predictor_entries(PredictorsRequest(str(tmp_path / "raw"), str(tmp_path / "p")))
    assert yes["speed_now"]["available"] is True and yes["speed_now"]["run"] is None
    assert no["speed_now"]["available"] is False and "raw medians" in no["speed_now"]["reason"]
    assert no["speed_now"]["run"] == ["kdnas-bench profile --backend torch --threads 1",
                                      "kdnas-bench fit --device dev --backend torch --threads 1"]
    broken = speed_now_status(DatasetKey("dev", "torch", 1), None, "corrupt predictor model")  # unreadable
    assert broken["available"] is False and "corrupt predictor model" in broken["reason"]

    events = Events()
    big = Arch(12, 768, 12, 3072)  # beyond the tiny space's ranges
    result = run_predict(PredictRequest("dev", archs=(Arch(2, 64, 2, 128), big), seq=16, batch=2,
                                        predictors=str(tmp_path / "canary")), events)
    assert list(result.frame["seq"]) == [16, 16] and (result.frame["latency_ms"] > 0).all()
    assert result.out_of_range == 1 and events.kinds() == ["out_of_range"]
    assert events.seen[0][1]["count"] == 1 and events.seen[0][1]["ranges"]["layers"] == (1, 2)


def test_predictors_cli_says_which_answer_speed_now(tmp_path: Path, run_cli) -> None:
    scripted_profile(tmp_path / "p", 30)
    run_fit(FitRequest("dev", store=str(tmp_path / "p"), out=str(tmp_path / "preds")))
    run_fit(FitRequest("dev", threads=1, store=str(tmp_path / "p"), out=str(tmp_path / "raw"), drift="none"))
    code, out, _ = run_cli("predictors", "--predictors", str(tmp_path / "preds"), "--store", str(tmp_path / "p"),
                           "--json")
    assert code == 0 and json.loads(out)[0]["speed_now"]["available"] is True
    for root, cell in (("preds", "yes"), ("raw", "no")):
        code, out, _ = run_cli("predictors", "--predictors", str(tmp_path / root), "--store", str(tmp_path / "p"))
        row = next(line for line in out.splitlines() if line.strip().startswith("dev "))
        assert code == 0 and row.split()[-1] == cell, out
        assert ("on that machine run `kdnas-bench profile" in " ".join(out.split())) is (cell == "no")
