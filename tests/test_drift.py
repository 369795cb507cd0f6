"""Drift-aware measurement, the noise floor, adaptive profiling and the schema-2 store.

Timings here come from a scripted machine (virtual time, an injected slowdown), never from the clock,
so every assertion is exact or a ratio (GUIDE §2 rule 11)."""

from __future__ import annotations

import json
import math
import random
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kdnas_bench.errors import KdnasError, StoreError
from kdnas_bench.predictors.crossval import cross_validate
from kdnas_bench.predictors.registry import fit_and_save, load_predictor
from kdnas_bench.profiling.adaptive import CURVE_FILE, AdaptiveConfig, run_adaptive
from kdnas_bench.profiling.canary import CANARY_ARCH, CANARY_SHAPE, drift_summary, newest_protocol, normalise, protocols
from kdnas_bench.profiling.floor import FLOOR_FILE, remeasure
from kdnas_bench.profiling.runner import CampaignConfig, Canary, run_campaign
from kdnas_bench.profiling.store import SCHEMA, V1_FIELDS, ProfileStore
from kdnas_bench.profiling.timing import TimingConfig, time_interleaved
from kdnas_bench.space import Arch, SearchSpace, Shape

from .conftest import FAST_TIMING, ROOT, TINY_SPACE, cli_subprocess_cmd


class Machine:
    """A scripted shared VM: each call costs its config's true time × the machine's slowdown at that
    virtual moment; the slowdown steps through ``regimes`` (factor, seconds) in a loop."""

    def __init__(self, regimes: list[tuple[float, float]]) -> None:
        self.t = 0.0
        self.regimes = regimes
        self.last = 0.0

    def slowdown(self) -> float:
        period = sum(d for _, d in self.regimes)
        x = self.t % period
        for factor, dur in self.regimes:
            if x < dur:
                return factor
            x -= dur
        return self.regimes[-1][0]

    def call(self, cost_s: float) -> None:
        self.last = cost_s * self.slowdown()
        self.t += self.last

    def time_calls(self, fn, k: int) -> list[float]:  # the Clock protocol
        out = []
        for _ in range(k):
            fn()
            out.append(self.last)
        return out


def true_cost(arch: Arch, shape: Shape) -> float:
    """Seconds at the reference speed: a smooth function of the config (learnable by the predictor)."""
    return 2e-4 + 1e-12 * arch.layers * shape.batch * shape.seq * arch.hidden * (arch.hidden + arch.ffn) * (1 + shape.seq / 512)


@dataclass
class FakeBackend:
    machine: Machine
    name: str = "torch"
    device: str = "cpu"
    threads: int = 1

    def load(self, arch: Arch, shape: Shape) -> float:
        return true_cost(arch, shape)

    def run(self, handle: float) -> object:
        self.machine.call(handle)
        return None

    def sync(self) -> None:
        pass

    def clock(self) -> Machine:
        return self.machine

    def close(self) -> None:
        pass


TIMING = TimingConfig(warmup=1, min_calls=5, min_seconds=0.0, max_seconds=100.0, remeasure=0)
REGIMES = [(1.0, 0.02), (1.5, 0.012), (0.8, 0.016)]  # -20 % to +50 %, each lasting a few rows


def test_interleaving_recovers_the_true_ratio_under_an_injected_slowdown() -> None:
    m = Machine(REGIMES)
    canary_cost = true_cost(CANARY_ARCH, CANARY_SHAPE)
    medians, ratios, truths = [], [], []
    for arch in (Arch(1, 32, 2, 64), Arch(2, 64, 4, 128), Arch(2, 64, 2, 64)) * 6:
        cost = true_cost(arch, Shape(1, 16))
        for mode in ("call", "chunk"):
            p = time_interleaved(lambda c=cost: m.call(c), lambda: m.call(canary_cost), m, TIMING, mode=mode,
                                 chunk_seconds=0.002)
            medians.append(p.target.median_ms / (cost * 1e3))
            ratios.append(p.ratio)
            truths.append(cost / canary_cost)
    raw_error = np.abs(np.asarray(medians) - 1)
    ratio_error = np.abs(np.asarray(ratios) / np.asarray(truths) - 1)
    assert np.mean(raw_error > 0.15) > 0.3  # the slowdown reached the raw medians...
    # ...and the canary ratio removed it, except in a row or two that straddled a change of regime
    assert np.mean(ratio_error < 1e-9) >= 0.9 and np.median(ratio_error) < 1e-9


def scripted_profile(store: Path, samples: int, shapes_per_arch: int = 4) -> tuple[Machine, Any]:
    """A profile of ``samples`` tiny-space rows on a fresh scripted machine, with the canary."""
    m = Machine(REGIMES)
    ds = ProfileStore(store).dataset("dev", "torch", 1)
    run_campaign(SearchSpace.load(TINY_SPACE), ds, FakeBackend(m),
                 CampaignConfig(samples=samples, timing=TIMING, shapes_per_arch=shapes_per_arch),
                 canary=Canary(FakeBackend(m), "call"))
    return m, ds


def test_campaign_rows_normalise_to_the_true_latencies(tmp_path: Path) -> None:
    _, ds = scripted_profile(tmp_path, 24, shapes_per_arch=2)
    df = ds.read()
    assert df["canary_ms"].notna().all() and (df["interleave"] == "call").all()
    truth = np.array([true_cost(Arch(r.layers, r.hidden, r.heads, r.ffn), Shape(r.batch, r.seq)) * 1e3
                      for r in df.itertuples()])
    raw = df["median_ms"].to_numpy() / truth
    norm, info = normalise(df)
    fixed = norm["median_ms"].to_numpy() / truth
    assert raw.max() / raw.min() > 1.3  # rows measured in different regimes
    assert fixed.max() / fixed.min() < 1.03  # one common factor left: the reference speed
    assert info["mode"] == "canary" and info["reference_canary_ms"] == pytest.approx(df["canary_ms"].median())
    assert drift_summary(df)["rows"] == 24


def test_fit_learns_only_the_newest_canary_protocol_and_keeps_the_older_rows(tmp_path: Path) -> None:
    m, ds = scripted_profile(tmp_path / "p", 24)  # the older protocol: the canary call by call
    run_campaign(SearchSpace.load(TINY_SPACE), ds, FakeBackend(m), CampaignConfig(samples=40, timing=TIMING),
                 canary=Canary(FakeBackend(m), "burst"))  # the same dataset re-profiled in bursts
    stored = ds.read()
    assert (stored["interleave"] == "call").sum() == 24 and (stored["interleave"] == "burst").sum() == 16
    burst = stored[stored["interleave"] == "burst"]
    _, meta = fit_and_save("dev", "torch", 1, store=tmp_path / "p", out=tmp_path / "pred")
    assert meta["rows"] == 16 and meta["drift"]["interleave"] == ["burst"]
    assert meta["drift"]["reference_canary_ms"] == pytest.approx(burst["canary_ms"].median())
    assert meta["data"]["first_timestamp"] == str(burst["timestamp"].min())
    assert meta["data"]["protocol"] == {"interleave": "burst", "rows_left_out": {"call": 24},
                                        "rule": "only the rows timed with the canary protocol of the dataset's newest row"}
    assert len(ds.read()) == 40  # nothing was deleted
    # a dataset of one protocol is fitted on all its rows, as before
    scripted_profile(tmp_path / "one", 24)
    _, one = fit_and_save("dev", "torch", 1, store=tmp_path / "one", out=tmp_path / "pred1")
    assert one["rows"] == 24 and "protocol" not in one["data"]


def test_newest_protocol_names_rows_without_a_canary() -> None:
    t = pd.Timestamp("2026-01-01", tz="UTC")
    df = pd.DataFrame({"canary_ms": [1.0, np.nan, 1.1, 1.2], "interleave": ["call", None, None, "burst"],
                       "timestamp": [t, t + pd.Timedelta(1, "s"), t + pd.Timedelta(2, "s"), t + pd.Timedelta(3, "s")]})
    assert list(protocols(df)) == ["call", "none", "unrecorded", "burst"]
    kept, left = newest_protocol(df)
    assert list(kept["canary_ms"]) == [1.2] and left == {"call": 1, "none": 1, "unrecorded": 1}
    kept, left = newest_protocol(df.iloc[[1]])
    assert len(kept) == 1 and left == {}


def test_fit_learns_the_normalised_target_and_stores_the_reference(tmp_path: Path) -> None:
    scripted_profile(tmp_path / "p", 40)
    _, meta = fit_and_save("dev", "torch", 1, store=tmp_path / "p", out=tmp_path / "pred")
    assert meta["drift"]["mode"] == "canary" and meta["drift"]["rows_normalised"] == 40
    _, raw_meta = fit_and_save("dev", "torch", 1, store=tmp_path / "p", out=tmp_path / "raw", drift="none")
    # the drift-free target is far easier to predict than the drifting raw medians
    assert meta["metrics"]["cv"]["mape"] < raw_meta["metrics"]["cv"]["mape"] / 2
    p = load_predictor("dev", "torch", 1, root=tmp_path / "pred")
    ref = p.meta["drift"]["reference_canary_ms"]
    assert ref > 0
    # the same rows at a reference twice as slow (a busy machine's profile fitted at a quiet one's speed)
    fit_and_save("dev", "torch", 1, store=tmp_path / "p", out=tmp_path / "slow", reference_ms=2 * ref)
    slow = load_predictor("dev", "torch", 1, root=tmp_path / "slow")
    grid = [{"layers": 2, "hidden": 64, "heads": 2, "ffn": 128, "seq": 16, "batch": 2}]
    assert slow.predict(grid)[0] / p.predict(grid)[0] == pytest.approx(2.0, rel=0.02)


def test_remeasure_writes_the_floor_and_leaves_rows_alone(tmp_path: Path) -> None:
    m, ds = scripted_profile(tmp_path, 20)
    before = ds.read()
    doc = remeasure(ds, FakeBackend(m), samples=10, fresh=4, space=SearchSpace.load(TINY_SPACE),
                    canary=Canary(FakeBackend(m), "call"), timing=TIMING)  # as the rows were timed
    # the scripted drift shows in the raw re-measurement, not in the normalised one (bar a row that
    # straddled a change of regime)
    assert doc["normalised"]["rows"] == 10 and doc["normalised"]["median_abs"] < 1e-9
    assert doc["normalised"]["within_5pct"] >= 0.8 > doc["raw"]["within_5pct"]
    assert len(doc["fresh"]) == 4 and not set(r["row_id"] for r in doc["fresh"]) & set(before["row_id"])
    assert json.loads((ds.path / FLOOR_FILE).read_text())["kind"] == "kdnas-bench-noise-floor"
    pd.testing.assert_frame_equal(ds.read(), before)


def test_remeasure_samples_the_rows_of_the_newest_canary_protocol(tmp_path: Path) -> None:
    """The floor is of the rows a predictor learns from: after a re-profile in bursts, the older call-by-call rows
    are never the ones re-measured."""
    m, ds = scripted_profile(tmp_path / "p", 24)  # call by call
    run_campaign(SearchSpace.load(TINY_SPACE), ds, FakeBackend(m), CampaignConfig(samples=40, timing=TIMING),
                 canary=Canary(FakeBackend(m), "burst"))
    stored = ds.read()
    burst = set(stored.loc[protocols(stored) == "burst", "row_id"])
    doc = remeasure(ds, FakeBackend(m), samples=12, canary=Canary(FakeBackend(m), "burst"), timing=TIMING)
    again = {r["row_id"] for r in doc["remeasured"]}
    assert len(again) == 12 and again <= burst


def test_adaptive_stops_at_its_time_limit(tmp_path: Path) -> None:
    m = Machine(REGIMES)
    space = SearchSpace.load(ROOT / "search" / "spaces" / "bert.toml")
    ds = ProfileStore(tmp_path).dataset("dev", "torch", 1)
    budget_min = 0.01  # 0.6 s of (virtual) profiling, ~40 rows
    cfg = AdaptiveConfig(minutes=budget_min, timing=TIMING, first_archs=4, round_archs=3, pool=40)
    res = run_adaptive(space, ds, FakeBackend(m), cfg, cross_validate=cross_validate, canary=Canary(FakeBackend(m)),
                       now=lambda: m.t)
    df = ds.read()
    assert res.stopped_by == "minutes"
    # it stops within one row of the limit (a row here takes at most ~0.1 virtual seconds)
    assert 60 * budget_min <= m.t <= 60 * budget_min + 0.1
    assert len(df) == df["row_id"].nunique() == res.measured
    assert df["round"].max() >= 2  # several rounds of active learning happened
    curve = json.loads((ds.path / CURVE_FILE).read_text())["curve"]
    assert curve[-1]["rows"] == len(df) and curve[-1]["cv_grouped_by_arch"]["within_10pct"] >= 0
    # the next run resumes: earlier rows kept, none measured twice, rounds continue
    more = run_adaptive(space, ds, FakeBackend(m), cfg, cross_validate=cross_validate, canary=Canary(FakeBackend(m)),
                        now=lambda: m.t)
    df2 = ds.read()
    assert set(df["row_id"]) < set(df2["row_id"]) and len(df2) == df2["row_id"].nunique()
    assert more.rows_before == len(df) and df2["round"].max() > df["round"].max()


def test_adaptive_reprofile_under_a_new_canary_protocol_keeps_the_older_rows(tmp_path: Path) -> None:
    """A dataset of raw rows (no canary) re-profiled adaptively with the burst canary: the rounds start from this
    protocol's own rows (a space-filling seed round, then cross-validation on the new rows only), and every older
    row stays as it was (none measured again, so none replaced)."""
    m = Machine(REGIMES)
    space = SearchSpace.load(ROOT / "search" / "spaces" / "bert.toml")
    ds = ProfileStore(tmp_path).dataset("dev", "torch", 1)
    run_campaign(space, ds, FakeBackend(m), CampaignConfig(samples=60, timing=TIMING))  # raw rows
    before = ds.read()
    assert set(protocols(before)) == {"none"}
    cfg = AdaptiveConfig(minutes=0.01, timing=TIMING, first_archs=4, round_archs=3, pool=40)
    res = run_adaptive(space, ds, FakeBackend(m), cfg, cross_validate=cross_validate, canary=Canary(FakeBackend(m)),
                       now=lambda: m.t)
    after = ds.read()
    new = after[~after["row_id"].isin(before["row_id"])]
    assert res.stopped_by == "minutes" and set(protocols(new)) == {"burst"} and len(new) == res.measured
    assert new.drop_duplicates(["layers", "hidden", "heads", "ffn"]).shape[0] >= 4 and new["round"].max() >= 2
    kept = after[after["row_id"].isin(before["row_id"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept[before.columns.tolist()], before, check_dtype=False)
    curve = json.loads((ds.path / CURVE_FILE).read_text())["curve"]
    assert curve[-1]["rows"] == len(new)


def test_adaptive_stops_at_a_target() -> None:
    with pytest.raises(KdnasError, match="--minutes, --target or --samples"):
        AdaptiveConfig()
    with pytest.raises(KdnasError, match="--target"):
        AdaptiveConfig(target=1.5)


def test_adaptive_resumes_after_kill_9(tmp_path: Path) -> None:
    cmd = cli_subprocess_cmd("profile", "--space", str(TINY_SPACE), "--store", str(tmp_path), "--minutes", "0.08",
                             "--seed", "3", *FAST_TIMING)
    rng = random.Random(99)
    kept: set[str] = set()
    for _ in range(2):
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        n_files = len(list(tmp_path.glob("*/*/*.parquet")))
        deadline = time.time() + 120
        while time.time() < deadline and len(list(tmp_path.glob("*/*/*.parquet"))) <= n_files:
            time.sleep(0.05)  # until this run stores rows (start-up time varies with the machine's load)
        time.sleep(rng.uniform(0.0, 1.5))  # then kill it while measuring, writing or refitting
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        stores = ProfileStore(tmp_path).datasets()
        if stores:
            ids = set(stores[0].read()["row_id"])
            assert kept <= ids  # nothing stored before a kill is lost
            kept = ids
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    (ds,) = ProfileStore(tmp_path).datasets()
    df = ds.read()
    assert kept <= set(df["row_id"]) and len(df) == df["row_id"].nunique() > len(kept) > 0
    on_disk = sum(pq.read_metadata(f).num_rows for f in ds.path.glob("*.parquet"))
    assert on_disk == len(df)  # compacted, no duplicated rows on disk
    assert json.loads((ds.path / CURVE_FILE).read_text())["curve"]


# -- the store: schema 2, migration of schema-1 folders, pandas ------------------------------------
def _write_v1_dataset(root: Path, version: int = 1) -> Path:
    folder = root / "dev" / "torch-t1"
    folder.mkdir(parents=True)
    (folder / "dataset.json").write_text(json.dumps({"kind": "kdnas-bench-profile", "schema_version": version,
                                                      "device_id": "dev", "backend": "torch", "threads": 1}))
    v1 = pa.schema(list(SCHEMA)[:V1_FIELDS])
    rows = [{"row_id": f"r{i}", "device_id": "dev", "backend": "torch", "threads": 1, "layers": 1, "hidden": 64,
             "heads": 2, "ffn": 128, "batch": 1, "seq": 8 + i, "status": "ok", "median_ms": 1.0 + i, "env": "{}"}
            for i in range(3)]
    table = pa.Table.from_pylist(rows, schema=v1).replace_schema_metadata(
        {b"kdnas_bench_profile_schema": str(version).encode()})
    pq.write_table(table, folder / "data-1.parquet")
    return folder


def test_schema_1_store_is_read_then_migrated_and_pandas_opens_it(tmp_path: Path) -> None:
    folder = _write_v1_dataset(tmp_path)
    (ds,) = ProfileStore(tmp_path).datasets()
    df = ds.read()
    assert list(df["median_ms"]) == [1.0, 2.0, 3.0] and df["canary_ms"].isna().all()
    with ds.writer():  # the next writer renames dataset.json, which broke pd.read_parquet(folder)
        pass
    assert not (folder / "dataset.json").exists()
    assert json.loads((folder / "_dataset.json").read_text())["migrated_from_schema"] == 1
    assert len(pd.read_parquet(folder)) == 3
    assert len(ProfileStore(tmp_path).datasets()[0].read()) == 3


def test_a_newer_schema_is_refused_in_one_line(tmp_path: Path, run_cli) -> None:
    _write_v1_dataset(tmp_path, version=5)
    with pytest.raises(StoreError, match="schema version 5"):
        ProfileStore(tmp_path).datasets()[0].read()
    code, out, err = run_cli("devices", "--store", str(tmp_path))
    assert code != 0 and "schema version 5" in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err + out


def test_pandas_reads_a_fresh_dataset_folder(tmp_path: Path) -> None:
    _, ds = scripted_profile(tmp_path, 6)
    ds.write_json("_floor.json", {"kind": "x"})
    df = pd.read_parquet(ds.path)
    assert len(df) == 6 and math.isfinite(df["ratio"].iloc[0])


def test_committed_profiles_open_with_pandas() -> None:
    for folder in sorted((ROOT / "profiles").glob("*/*")):
        assert len(pd.read_parquet(folder)) > 0, folder


@pytest.mark.parametrize(("args", "message"), [
    (["profile", "--minutes", "0"], "--minutes must be positive"),
    (["profile", "--target", "1.5"], "--target is a share"),
    (["remeasure", "--samples", "0"], "one of them positive"),
])
def test_bad_adaptive_and_remeasure_options_are_one_line(run_cli, tmp_path: Path, args: list[str], message: str) -> None:
    code, out, err = run_cli(*args, "--store", str(tmp_path))
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in out + err
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_predictors_show_the_device_floor(tmp_path: Path, run_cli) -> None:
    m, ds = scripted_profile(tmp_path / "p", 30)
    fit_and_save("dev", "torch", 1, store=tmp_path / "p", out=tmp_path / "pred")
    remeasure(ds, FakeBackend(m), samples=8, canary=Canary(FakeBackend(m)), timing=TIMING)
    code, out, _ = run_cli("predictors", "--predictors", str(tmp_path / "pred"), "--store", str(tmp_path / "p"), "--json")
    (entry,) = json.loads(out)
    assert code == 0 and entry["drift"] == "canary" and entry["floor"]["normalised"]["rows"] == 8
