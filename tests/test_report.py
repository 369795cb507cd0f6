"""compare and report: students, rows, measured latency on this machine, and the files they write (PNG
metadata and pixels, HTML tables and embedded images, Markdown), checked for content, not only existence."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from kdnas_bench.errors import KdnasError
from kdnas_bench.predictors.registry import fit_and_save
from kdnas_bench.profiling.device import hardware
from kdnas_bench.report import compare, resolve_students
from kdnas_bench.report.compare import pareto_front
from kdnas_bench.report.plots import read_info
from kdnas_bench.space import Arch, Shape

from .helpers import assert_real_png, ort_rows, parse_html, real_rows, write_store

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "predictors"
TABLE = ROOT / "search" / "tables" / "sst2-minilm-students.json"
STUDENTS_SPACE = ROOT / "search" / "spaces" / "minilm-students.toml"
OTHER = "other-test-device-0000"
JSON_KEYS = {"student", "device_id", "backend", "threads", "latency_ms", "latency_ms_low", "latency_ms_high",
             "measured_ms", "speedup", "params", "flops"}


@pytest.fixture(scope="module")
def local_predictors(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Predictors fitted on real profile rows: torch and onnxruntime (1 thread) labelled with THIS machine's
    device id, and torch for another device: compare measures on this machine's predictors only."""
    root = tmp_path_factory.mktemp("cmp")
    here = hardware(with_gpu=False).device_id
    write_store(root / "profiles", here, real_rows())
    write_store(root / "profiles", here, ort_rows(), backend="onnxruntime")
    write_store(root / "profiles", OTHER, real_rows())
    preds = root / "predictors"
    for device, backend in ((here, "torch"), (here, "onnxruntime"), (OTHER, "torch")):
        fit_and_save(device, backend, 1, store=root / "profiles", out=preds, max_load=None)
    return root


# -- students ---------------------------------------------------------------------------------------
def test_named_and_spec_students() -> None:
    s = resolve_students("bert-base,minilm-l6;4,256,4,1024;tinybert-4l")
    assert [x.name for x in s] == ["bert-base", "minilm-l6", "4,256,4,1024", "tinybert-4l"]
    assert s[0].arch == Arch(12, 768, 12, 3072) and s[3].arch == Arch(4, 312, 12, 1200)
    assert {x.name for x in resolve_students(None)} >= {"bert-base", "distilbert", "minilm-l6", "minilm-l12",
                                                        "tinybert-4l", "tinybert-6l"}


@pytest.mark.parametrize("spec,message", [
    ("bert-huge", "unknown student 'bert-huge'"),
    ("4,250,3,1024", "invalid student arch"),
    ("minilm-l6,minilm-l6", "more than once"),
    (" ; ", "no students"),
])
def test_bad_students(spec: str, message: str) -> None:
    with pytest.raises(KdnasError, match=message):
        resolve_students(spec)


def test_pareto_front() -> None:
    pts = [(1.0, 0.5), (2.0, 0.7), (3.0, 0.6), (4.0, 0.9), (0.5, 0.4)]
    assert pareto_front(pts) == [4, 0, 1, 3]


# -- compare ----------------------------------------------------------------------------------------
def test_compare_rows_cover_every_committed_predictor() -> None:
    studs = resolve_students("bert-base,minilm-l6,tinybert-4l")
    res = compare(studs, shape=Shape(1, 128), measure=False, predictors_root=COMMITTED)
    n_pred = len(list(COMMITTED.glob("*/*/meta.json")))
    assert n_pred >= 3 and len(res.rows) == 3 * n_pred
    for r in res.rows:
        d = r.to_dict()
        assert set(d) >= JSON_KEYS
        assert d["latency_ms_low"] <= d["latency_ms"] <= d["latency_ms_high"]
        assert d["measured_ms"] is None
    by = {(r.student, r.backend, r.threads): r for r in res.rows}
    for backend, threads in {(r.backend, r.threads) for r in res.rows}:
        big, mid, small = (by[(n, backend, threads)] for n in ("bert-base", "minilm-l6", "tinybert-4l"))
        assert big.speedup == pytest.approx(1.0)  # the first student is the default reference
        assert big.latency_ms > mid.latency_ms > small.latency_ms
        assert small.speedup > mid.speedup > 1.0
        assert big.params > mid.params > small.params and big.flops > mid.flops > small.flops


def test_compare_measures_on_this_machine_only(local_predictors: Path) -> None:
    studs = resolve_students("bert-tiny;2,128,2,256;1,64,2,128")
    res = compare(studs, shape=Shape(1, 32), predictors_root=local_predictors / "predictors", reference="bert-tiny")
    here = hardware(with_gpu=False).device_id
    local = [r for r in res.rows if r.device_id == here]
    assert {r.backend for r in local} == {"torch", "onnxruntime"} and len(local) == 6
    assert all(r.measured_ms is not None and r.measured_ms > 0 for r in local)
    assert all(r.measured_ms is None for r in res.rows if r.device_id != here)
    ref = {r.backend: r.measured_ms for r in local if r.student == "bert-tiny"}
    for r in local:
        assert r.measured_speedup == pytest.approx(ref[r.backend] / r.measured_ms)


def test_unknown_device_and_reference() -> None:
    studs = resolve_students("minilm-l6")
    with pytest.raises(KdnasError, match="no predictor for device nope"):
        compare(studs, devices=["nope"], measure=False, predictors_root=COMMITTED)
    with pytest.raises(KdnasError, match="reference 'bert-base' is not among"):
        compare(studs, reference="bert-base", measure=False, predictors_root=COMMITTED)


def test_cli_compare_writes_json_html_markdown_and_plots(local_predictors: Path, tmp_path: Path, run_cli,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    html, md, png = tmp_path / "r.html", tmp_path / "r.md", tmp_path / "plots"
    monkeypatch.setenv("KDNAS_PROGRESS_SECONDS", "0")  # a progress line per measurement (stderr is not a terminal)
    code, out, err = run_cli("compare", "--students", "bert-tiny,minilm-l6,2,128,2,256", "--seq", "32", "--measure",
                             "--predictors", str(local_predictors / "predictors"), "--store",
                             str(local_predictors / "profiles"), "--json", "--html", str(html), "--md", str(md),
                             "--png", str(png))
    assert code == 0, err
    rows = json.loads(out)
    n_pred = len(list((local_predictors / "predictors").glob("*/*/meta.json")))
    assert len(rows) == 3 * n_pred and all(set(r) >= JSON_KEYS for r in rows)
    assert sum(r["measured_ms"] is not None for r in rows) == 6  # 3 students x (torch, onnxruntime) here
    progress = [ln for ln in err.splitlines() if ln.startswith("measuring ")]
    assert progress and "/6 (" in progress[-1] and any("ETA" in ln for ln in progress)

    infos = {p.name: assert_real_png(p) for p in sorted(png.glob("*.png"))}
    devices = {r["device_id"] for r in rows}
    assert devices and not [i for i in infos.values() if i["kind"] == "pareto"]  # no metric known: no front
    seq = [i for i in infos.values() if i["kind"] == "latency-vs-seq"]
    assert len(seq) == n_pred and all(i["lines"] == 3 and i["points_per_line"] == 5 for i in seq)
    assert all(i["axes"][0]["xlabel"].startswith("sequence length") for i in seq)
    pvm = {i["predictor"]: i for i in infos.values() if i["kind"] == "pred-vs-measured"}
    here = hardware(with_gpu=False).device_id
    local = [v for k, v in pvm.items() if k.startswith(here)]
    assert len(local) == 2 and all(i["fresh_points"] == 3 and i["profile_points"] == 240 for i in local)
    assert all(i["axes"][0]["xlabel"] == "measured latency (ms)" for i in pvm.values())

    page = parse_html(html)
    pivot = next(t for t in page.tables if t and t[0][:3] == ["device", "backend", "threads"])
    assert pivot[0][3:] == ["bert-tiny", "minilm-l6", "2,128,2,256"] and len(pivot) == 1 + n_pred
    assert sum("(" in c for r in pivot[1:] for c in r[3:]) == 6  # predicted (measured) where measured
    student_tables = [t for t in page.tables if t and t[0][:2] == ["student", "arch"]]
    assert len(student_tables) == n_pred
    assert all([r[0] for r in t[1:]] == ["bert-tiny", "minilm-l6", "2,128,2,256"] for t in student_tables)
    assert len(page.images) == len(infos)
    for src in page.images:  # self-contained: the PNGs are embedded
        assert src.startswith("data:image/png;base64,")
        assert Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).size[0] >= 400
    text = md.read_text()
    assert text.count("| bert-tiny |") == n_pred + 1  # the per-predictor rows and the pivot's header
    for name in infos:
        assert f"(plots/{name})" in text


def test_cli_compare_bad_input_is_one_line(tmp_path: Path, run_cli) -> None:
    code, _, err = run_cli("compare", "--students", "gpt-5", "--no-measure")
    assert code == 2 and "unknown student" in err and "Traceback" not in err
    (tmp_path / "r.html").mkdir()
    code, _, err = run_cli("compare", "--students", "minilm-l6", "--no-measure", "--html", str(tmp_path / "r.html"))
    assert code == 2 and "is a folder" in err
    code, _, err = run_cli("compare", "--students", "minilm-l6", "--no-measure", "--device", "no-such-device")
    assert code == 2 and "no predictor for device no-such-device" in err


# -- report -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def table_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (cheap) search run: committed predictor for latency, committed SST-2 table for accuracy."""
    from kdnas_bench.cli import main

    run = tmp_path_factory.mktemp("run") / "search"
    # searched as from another machine, also on the VM whose id the predictor names (nothing measured here)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("kdnas_bench.search.budgetcheck.this_machine_is", lambda *a: False)
        try:
            main(["search", "--device", "intel-xeon-processor-2c-cfff2f", "--backend", "torch", "--budget-ms", "5,10",
                  "--task", "sst2", "--table", str(TABLE), "--space", str(STUDENTS_SPACE), "--episodes", "3",
                  "--candidates", "4", "--out", str(run), "--predictors", str(COMMITTED), "--json"])
        except SystemExit as exc:
            assert not exc.code
    return run


def test_report_story(table_run: Path, tmp_path: Path, run_cli) -> None:
    html, png = tmp_path / "rep.html", tmp_path / "plots"
    code, out, err = run_cli("report", str(table_run), "--json", "--html", str(html), "--png", str(png))
    assert code == 0, err
    story = json.loads(out)
    stored = len((table_run / "evaluations.jsonl").read_text().splitlines())  # at most 3 × 4 (depends on the predictor)
    assert story["finished"] and story["evaluations"] == stored and 8 <= stored <= 12
    assert [e["episode"] for e in story["episodes"]] == [0, 1, 2]
    bests = [e["best_reward_so_far"]["5"] for e in story["episodes"]]
    assert bests == sorted(bests)  # best-so-far never falls
    assert [b["budget_ms"] for b in story["budgets"]] == [5.0, 10.0]
    for b in story["budgets"]:
        assert b["predicted_held"] is True and b["predicted_ms"] <= b["budget_ms"]  # the hard reward judges the prediction
        assert 0 < b["budget_share"] <= 1 and b["budget_share_from"] == "predicted"  # not this device: nothing measured
        assert b["measured_held"] is None  # not finalised
    curve, cands = read_info(png / "reward-curve.png"), read_info(png / "candidates.png")
    assert_real_png(png / "reward-curve.png")
    assert curve["series"] == {"best reward, 5 ms": 3, "best reward, 10 ms": 3}
    assert sum(curve["scatter"].values()) <= 24 and curve["axes"][0]["xlabel"] == "episode"
    assert cands["points"] == stored and cands["winners"] == 2 and cands["budgets"] == [5.0, 10.0]
    page = parse_html(html)
    episodes = next(t for t in page.tables if t[0][0] == "episode")
    assert [r[0] for r in episodes[1:]] == ["0", "1", "2"]
    chosen = next(t for t in page.tables if t[0][0] == "budget ms")
    assert [r[0] for r in chosen[1:]] == ["5", "10"] and all(r[3] == "yes" for r in chosen[1:])
    assert len(page.images) == 2


def test_report_and_compare_read_a_run(table_run: Path, run_cli) -> None:
    code, out, err = run_cli("compare", "--students", str(table_run), "--no-measure", "--predictors",
                             str(COMMITTED), "--json")
    assert code == 0, err
    names = {r["student"] for r in json.loads(out)}
    story = json.loads(run_cli("report", str(table_run), "--json")[1])
    winners: dict[str, list[float]] = {}
    for b in story["budgets"]:
        winners.setdefault(json.dumps(b["arch"]), []).append(b["budget_ms"])
    assert names == {"winner@" + ",".join(f"{x:g}" for x in bs) + "ms" for bs in winners.values()}
    assert all(r["metric"] is not None for r in json.loads(out))


def test_report_bad_run(tmp_path: Path, run_cli) -> None:
    code, _, err = run_cli("report", str(tmp_path))
    assert code == 2 and "not a search run" in err and "Traceback" not in err
    (tmp_path / "run.json").write_text("{not json")
    code, _, err = run_cli("report", str(tmp_path))
    assert code == 2 and "cannot read" in err
