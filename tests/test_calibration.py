"""Predictions at the machine's speed now, the burst protocol, and the CPU fingerprint.

Every timing comes from a scripted machine (virtual time) — the exact factors and ratios asserted here are
what the code must compute from those scripted times, never a measurement (GUIDE §2 rule 11)."""

from __future__ import annotations

import json
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from kdnas_bench.errors import PredictorError
from kdnas_bench.keys import DatasetKey
from kdnas_bench.predictors import identity
from kdnas_bench.predictors.calibrate import Z_90, Calibration, apply, calibration_from_canary, measure_calibration
from kdnas_bench.predictors.identity import MachineWarning, fingerprint_warning, machine_meta, speed_warning, warn_once
from kdnas_bench.predictors.latency import Prediction
from kdnas_bench.predictors.registry import fit_and_save, load_predictor
from kdnas_bench.profiling.canary import CANARY_ARCH, CANARY_SHAPE
from kdnas_bench.profiling.fingerprint import differences, fingerprint_id
from kdnas_bench.profiling.speed import canary_now, time_bursts
from kdnas_bench.profiling.timing import TimingConfig, time_interleaved

from .helpers import ROOT
from .test_drift import FakeBackend, Machine, scripted_profile, true_cost

GRID = [{"layers": 2, "hidden": 64, "heads": 2, "ffn": 128, "seq": 16, "batch": 2},
        {"layers": 1, "hidden": 32, "heads": 2, "ffn": 64, "seq": 8, "batch": 1}]


# -- the burst protocol: no small-config bias from the canary ------------------------------------------------
class CacheMachine:
    """A scripted CPU with a cache: a call costs its true time, plus ``cold`` × that time when the previous call
    was another function (its weights were evicted), at a constant speed."""

    def __init__(self, cold: float) -> None:
        self.cold, self.prev, self.last = cold, None, 0.0

    def call(self, name: str, cost: float) -> None:
        self.last = cost * (1 + (self.cold if self.prev not in (None, name) else 0.0))
        self.prev = name

    def time_calls(self, fn, k: int) -> list[float]:
        out = []
        for _ in range(k):
            fn()
            out.append(self.last)
        return out


def test_burst_mode_times_every_call_warm_while_call_mode_times_them_cold() -> None:
    cfg = TimingConfig(warmup=2, min_calls=10, min_seconds=0.0, max_seconds=100.0, remeasure=0)
    canary_cost = 1e-3
    for cost in (2e-4, 5e-3, 0.05):  # a config faster than the canary, a little slower, much slower
        for mode, expect in (("call", 1.3), ("burst", 1.0)):
            m = CacheMachine(cold=0.3)
            p = time_interleaved(lambda c=cost, m=m: m.call("row", c), lambda m=m: m.call("canary", canary_cost), m,
                                 cfg, mode=mode, chunk_seconds=0.01)
            # call by call, both the row and the canary run cold; in bursts, both run as a back-to-back loop would
            assert p.target.median_ms == pytest.approx(cost * 1e3 * expect)
            assert p.canary.median_ms == pytest.approx(canary_cost * 1e3 * expect)
            assert p.mode == mode and p.target.n >= 10


def test_burst_mode_sizes_bursts_and_still_tracks_drift() -> None:
    cfg = TimingConfig(warmup=1, min_calls=20, min_seconds=0.0, max_seconds=100.0, remeasure=0)
    m = Machine([(1.0, 0.05), (1.4, 0.05)])
    canary_cost = true_cost(CANARY_ARCH, CANARY_SHAPE)
    cost = 3 * canary_cost
    p = time_interleaved(lambda: m.call(cost), lambda: m.call(canary_cost), m, cfg, mode="burst", chunk_seconds=0.004)
    assert p.target.n >= 20 and p.canary.n > p.target.n  # bursts of ~equal seconds: more calls of the faster canary
    assert p.ratio == pytest.approx(cost / canary_cost, rel=0.02)


# -- the canary now, and the calibration of predictions -------------------------------------------------------
def test_canary_now_times_bursts_and_the_factor_is_the_scripted_slowdown() -> None:
    m = Machine([(1.25, 10.0)])  # a constant slowdown of 25 %
    now = canary_now("torch", 1, seconds=0.05, bursts=5, backend_obj=FakeBackend(m))
    assert len(now.burst_ms) == 5
    assert now.canary_ms == pytest.approx(true_cost(CANARY_ARCH, CANARY_SHAPE) * 1e3 * 1.25)
    cal = calibration_from_canary(now.canary_ms, now.burst_ms, true_cost(CANARY_ARCH, CANARY_SHAPE) * 1e3)
    assert cal.factor == pytest.approx(1.25) and cal.log_sd == 0.0 and cal.bursts == 5
    bursts = time_bursts(lambda: m.call(0.001), m, seconds=0.02, bursts=4)
    assert len(bursts) == 4 and all(len(b) >= 3 and sum(b) >= 0.005 for b in bursts)


def test_calibration_scales_predictions_and_widens_intervals() -> None:
    bursts = [2.0, 2.2, 1.9, 2.1, 9.0]  # one burst disturbed by another process
    cal = calibration_from_canary(2.05, bursts, reference_ms=1.64)
    logs = np.log(bursts)
    sd = 1.4826 * float(np.median(np.abs(logs - np.median(logs)))) * math.sqrt(1 + 1 / 5)
    assert sd < 0.1 < float(np.std(logs, ddof=1))  # the disturbed burst barely widens it
    assert cal.factor == pytest.approx(2.05 / 1.64) and cal.log_sd == pytest.approx(sd)
    pred = Prediction(np.array([9.0, 18.0]), np.array([10.0, 20.0]), np.array([11.0, 22.0]), np.array([False, True]))
    out = apply(pred, cal)
    w = math.exp(Z_90 * sd)
    np.testing.assert_allclose(out.mid, pred.mid * cal.factor)
    np.testing.assert_allclose(out.low, pred.low * cal.factor / w)
    np.testing.assert_allclose(out.high, pred.high * cal.factor * w)
    assert list(out.out_of_range) == [False, True]
    assert apply(pred, None) is pred
    with pytest.raises(PredictorError, match="factor"):
        Calibration(float("nan"), 0.0, 1.0, 1.0)


def test_predictor_at_the_speed_now_end_to_end(tmp_path: Path) -> None:
    scripted_profile(tmp_path / "p", 40)
    fit_and_save("dev", "torch", 1, store=tmp_path / "p", out=tmp_path / "pred")
    p = load_predictor("dev", "torch", 1, root=tmp_path / "pred")
    ref = p.meta["drift"]["reference_canary_ms"]
    assert p.meta["drift"]["interleave"] == ["call"]
    # the machine now runs at exactly 1.5 × the canary's reference time
    slow = Machine([(1.5 * ref / (true_cost(CANARY_ARCH, CANARY_SHAPE) * 1e3), 10.0)])
    cal = measure_calibration(p, seconds=0.05, bursts=4, backend_obj=FakeBackend(slow), check_device=False)
    assert cal.factor == pytest.approx(1.5) and cal.note is not None  # rows timed call by call: the note says so
    now = p.with_calibration(cal)
    base, calib = p.predict_interval(GRID), now.predict_interval(GRID)
    np.testing.assert_allclose(calib.mid, base.mid * 1.5)
    np.testing.assert_allclose(now.predict(GRID), p.predict(GRID) * 1.5)
    frame = now.frame(GRID)
    assert list(frame["speed_factor"]) == pytest.approx([1.5, 1.5]) and "speed_factor" not in p.frame(GRID)
    with pytest.raises(PredictorError, match="this machine is"):  # "dev" is not this machine
        measure_calibration(p, seconds=0.01, bursts=2)
    with pytest.raises(PredictorError, match="unknown speed"):
        load_predictor("dev", "torch", 1, root=tmp_path / "pred", speed="later")
    fit_and_save("dev", "torch", 1, store=tmp_path / "p", out=tmp_path / "raw", drift="none")
    raw = load_predictor("dev", "torch", 1, root=tmp_path / "raw")
    with pytest.raises(PredictorError, match="raw medians"):
        measure_calibration(raw, seconds=0.01, bursts=2, backend_obj=FakeBackend(slow), check_device=False)


# -- identity: the fingerprint beside the device id --------------------------------------------------------------
FP = {"vendor": "AuthenticAMD", "family": "26", "model": "2", "stepping": "1",
      "isa": ["avx2", "avx512_bf16", "avx512_vnni", "avx512f", "fma"], "cache_kib": {"L1d": 48, "L2": 1024, "L3": 32768}}


def test_fingerprint_mismatch_warns_once_and_names_the_difference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identity, "_warned", set())
    key = DatasetKey("amd-epyc-2c-243f6e", "torch", 1)
    meta = {"machine": {"fingerprint": {**FP, "id": fingerprint_id(FP)}}}
    older = {**FP, "family": "25", "isa": ["avx2", "fma", "avx512f"], "cache_kib": {"L1d": 32, "L2": 1024, "L3": 32768}}
    assert fingerprint_warning(key, meta, FP, key.device_id) is None  # the same CPU
    assert fingerprint_warning(key, meta, older, "another-device-1c-000000") is None  # predicting for another machine
    msg = fingerprint_warning(key, meta, older, key.device_id)
    assert msg is not None and "family 26 → 25" in msg and "no avx512_bf16, avx512_vnni" in msg
    assert "L1d 48 → 32 KiB" in msg and "kdnas-bench profile" in msg and "\n" not in msg
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert warn_once(key, "fingerprint", msg) == msg
        assert warn_once(key, "fingerprint", msg) is None
    assert [w.category for w in seen] == [MachineWarning]
    assert differences(FP, FP) == []


def test_speed_outside_the_profiles_band_warns() -> None:
    key = DatasetKey("dev", "torch", 1)
    meta = {"machine": {"speed_band": [0.9, 1.12]}}
    assert speed_warning(key, meta, 1.05) is None and speed_warning(key, meta, 0.85) is None  # within ±10 % margin
    msg = speed_warning(key, meta, 1.6)
    assert msg is not None and "×1.60" in msg and "kdnas-bench profile" in msg
    assert speed_warning(key, {}, 3.0) is None  # an older predictor without a band


def test_fit_records_the_rows_fingerprint_and_speed_band(tmp_path: Path) -> None:
    _, ds = scripted_profile(tmp_path / "p", 24)
    df = ds.read()
    env = json.loads(df["env"].iloc[-1])
    assert env["fingerprint"]["id"] and "fingerprint" not in json.dumps({k: v for k, v in env.items() if k != "fingerprint"})
    _, meta = fit_and_save("dev", "torch", 1, store=tmp_path / "p", out=tmp_path / "pred")
    mach = meta["machine"]
    assert mach["fingerprint"] == env["fingerprint"] and mach["fingerprints"] == 1
    lo, hi = mach["speed_band"]
    assert lo < 1 < hi  # the scripted regimes run from -20 % to +50 %
    old = df.assign(env="{}")  # rows stamped before fingerprints existed
    assert machine_meta(old, None) == {"fingerprint": None, "fingerprints": 0, "speed_band": None}


def test_committed_predictors_without_a_fingerprint_still_load_and_predict(tmp_path: Path) -> None:
    root = tmp_path / "predictors"
    shutil.copytree(ROOT / "predictors", root)
    for meta_path in root.glob("*/*/meta.json"):
        meta = json.loads(meta_path.read_text())
        meta.pop("machine", None)  # as fitted before fingerprints: no machine entry
        meta["drift"].pop("interleave", None) if meta.get("drift") else None
        meta_path.write_text(json.dumps(meta))
        key = meta_path.parent
        backend, _, threads = key.name.rpartition("-t")
        with warnings.catch_warnings():
            warnings.simplefilter("error", MachineWarning)
            p = load_predictor(key.parent.name, backend, int(threads), root=root)
        assert np.all(p.predict(GRID) > 0) and p.calibration is None


def test_cli_speed_choices_are_the_librarys() -> None:
    from kdnas_bench.cli.predict_cmds import SPEED_CHOICES
    from kdnas_bench.predictors.lookup import SPEEDS

    assert SPEED_CHOICES == SPEEDS


def test_predict_cli_speed_now_scales_and_records_the_factor(run_cli, monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    import kdnas_bench.predictors.calibrate as calibrate

    scripted_profile(tmp_path / "p", 30)
    fit_and_save("dev", "torch", 1, store=tmp_path / "p", out=tmp_path / "pred")
    cal = calibration_from_canary(3.0, [2.9, 3.0, 3.1], reference_ms=2.5)
    monkeypatch.setattr(calibrate, "measure_calibration", lambda p, **kw: cal)
    args = ("predict", "--device", "dev", "--predictors", str(tmp_path / "pred"), "--arch", "2,64,2,128", "--seq", "16",
            "--batch", "2", "--json")
    code, out, _ = run_cli(*args)
    code_now, out_now, err_now = run_cli(*args, "--speed", "now")
    assert code == code_now == 0
    (ref,), (now,) = json.loads(out), json.loads(out_now)
    assert now["latency_ms"] == pytest.approx(ref["latency_ms"] * 1.2)
    assert now["latency_ms_high"] == pytest.approx(ref["latency_ms_high"] * 1.2 * math.exp(cal.widening))
    assert now["speed_factor"] == pytest.approx(1.2) and now["speed_factor_rel_sd"] == pytest.approx(cal.rel_sd)
    assert "speed now: ×1.200" in err_now and "speed_factor" not in ref


def test_measure_reports_the_speed_factor_against_the_devices_predictor(tmp_path: Path) -> None:
    from kdnas_bench.cli.predict_cmds import speed_fields

    scripted_profile(tmp_path / "p", 30)
    fit_and_save("dev", "torch", 1, store=tmp_path / "p", out=tmp_path / "pred")
    ref = load_predictor("dev", "torch", 1, root=tmp_path / "pred").meta["drift"]["reference_canary_ms"]
    out = speed_fields(1.1 * ref, 22.0, "dev", "torch", 1, str(tmp_path / "pred"))
    assert out["speed_factor"] == pytest.approx(1.1) and out["at_reference_ms"] == pytest.approx(20.0)
    none = speed_fields(1.0, 22.0, "other-device", "torch", 1, str(tmp_path / "pred"))
    assert none["speed_factor"] is None and "unknown device id" in none["speed_note"]
    assert speed_fields(None, 22.0, "dev", "torch", 1, str(tmp_path / "pred")) == {}


def test_search_request_takes_a_speed() -> None:
    from kdnas_bench.errors import KdnasError
    from kdnas_bench.search.api import SearchRequest

    key = DatasetKey("dev", "torch", 1)
    assert SearchRequest(key=key, budgets_ms=(10.0,), task="sst2", speed="now").speed == "now"
    with pytest.raises(KdnasError, match="unknown speed 'later'"):
        SearchRequest(key=key, budgets_ms=(10.0,), task="sst2", speed="later")


def test_compare_at_speed_now_calibrates_this_machines_predictors(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    import kdnas_bench.predictors.calibrate as calibrate
    import kdnas_bench.profiling.device as device
    from kdnas_bench.report.compare import compare
    from kdnas_bench.report.students import resolve_students

    scripted_profile(tmp_path / "p", 30)
    fit_and_save("dev", "torch", 1, store=tmp_path / "p", out=tmp_path / "pred")
    cal = calibration_from_canary(3.0, [3.0, 3.0, 3.0], reference_ms=2.0)
    monkeypatch.setattr(calibrate, "measure_calibration", lambda p, **kw: cal)
    monkeypatch.setattr(device, "hardware", lambda with_gpu=False: device.Hardware("x", 2, None, None))
    monkeypatch.setattr(device.Hardware, "device_id", property(lambda self: "dev"))
    students = resolve_students("tinybert-4l,minilm-l6")
    ref = compare(students, measure=False, predictors_root=tmp_path / "pred")
    now = compare(students, measure=False, predictors_root=tmp_path / "pred", speed="now")
    for a, b in zip(ref.rows, now.rows, strict=True):
        assert b.latency_ms == pytest.approx(a.latency_ms * 1.5) and b.speed_factor == pytest.approx(1.5)
        assert a.speed_factor is None
