"""Peak memory: the fresh-process measurement, the schema-3 store columns (older stores still read), the
memory model (fit, save, load, predict) and ``search --budget-mb``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kdnas_bench.errors import KdnasError
from kdnas_bench.predictors.memory import MEMORY_FILE, TERMS, MemoryModel, fit_memory, load_memory, memory_terms, save_memory
from kdnas_bench.predictors.registry import fit_and_save, load_predictor
from kdnas_bench.profiling.backends import make_backend
from kdnas_bench.profiling.memory import MemoryProbe, MemoryResult, unsupported
from kdnas_bench.profiling.store import META_KEY, SCHEMA, V2_FIELDS, ProfileStore
from kdnas_bench.search.domain import SearchError
from kdnas_bench.search.memory_budget import within_memory
from kdnas_bench.space import Arch, Shape

from .helpers import real_rows, write_store

pytestmark = pytest.mark.skipif(unsupported() is not None, reason=str(unsupported()))
ARCH = Arch(1, 64, 2, 128)
MIB = 2**20


@pytest.fixture(scope="module")
def probe() -> MemoryProbe:
    p = MemoryProbe("torch", 1)
    yield p
    p.close()


def test_peak_memory_is_measured_in_a_fresh_process(probe: MemoryProbe) -> None:
    small = probe.measure(ARCH, Shape(1, 8))
    again = probe.measure(ARCH, Shape(1, 8))
    big = probe.measure(ARCH, Shape(16, 256))  # 16 x 2 heads x 256^2 fp32 attention scores: 8 MiB live at once
    b = make_backend("torch", 1)
    b.load(ARCH, Shape(1, 8))
    assert small.weight_bytes == b.weight_bytes()  # the weights as the backend holds them
    assert small.model_rss_bytes >= 0.9 * small.weight_bytes  # the loaded weights are resident
    assert small.peak_rss_bytes == small.model_rss_bytes + small.forward_rss_bytes
    # a fresh process each time: the same config gives the same bytes (to a few pages), whatever ran before
    assert abs(again.peak_rss_bytes - small.peak_rss_bytes) <= 256 * 1024
    assert big.forward_rss_bytes > small.forward_rss_bytes + 6 * MIB
    assert abs(big.model_rss_bytes - small.model_rss_bytes) <= 512 * 1024


def test_a_failing_child_is_an_error_not_a_crash(probe: MemoryProbe) -> None:
    with pytest.raises(KdnasError, match="memory measurement failed"):
        probe.measure(ARCH, Shape(1, 1024))  # beyond 512 positions: the model raises in the child
    assert probe.measure(ARCH, Shape(1, 8)).peak_rss_bytes > 0  # the server carries on


def test_measure_memory_flag(run_cli) -> None:
    code, out, err = run_cli("measure", "--arch", "1,64,2,128", "--seq", "8", "--batch", "1", "--memory", "--warmup", "1",
                             "--min-calls", "3", "--min-seconds", "0", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["peak_rss_bytes"] >= doc["model_rss_bytes"] > 0 and doc["memory_error"] is None


def test_memory_result_is_validated() -> None:
    with pytest.raises(KdnasError):
        MemoryResult(10, 5, 3, 4)  # peak below the forward part
    with pytest.raises(KdnasError):
        MemoryResult(10, 5, 9.5, 4)  # type: ignore[arg-type]


def test_schema2_files_read_with_empty_memory_columns(tmp_path: Path) -> None:
    write_store(tmp_path, "dev", real_rows().head(5))
    ds = ProfileStore(tmp_path).dataset("dev", "torch", 1)
    old = ds.read()
    v2 = pa.schema(list(SCHEMA)[:V2_FIELDS])
    table = pa.Table.from_pandas(old[[f.name for f in v2]], schema=v2, preserve_index=False)
    for f in ds.path.glob("*.parquet"):
        f.unlink()
    pq.write_table(table.replace_schema_metadata({META_KEY: b"2"}), ds.path / "data-1.parquet")
    df = ds.read()
    assert len(df) == len(old) and df["peak_rss_bytes"].isna().all() and df["weight_bytes"].isna().all()
    assert pd.read_parquet(ds.path)["row_id"].tolist() == df["row_id"].tolist()


def test_profile_stores_memory_and_fit_writes_a_memory_model(tmp_path: Path, tiny_space_path: Path, run_cli) -> None:
    code, _, err = run_cli("profile", "--space", str(tiny_space_path), "--samples", "14", "--store", str(tmp_path / "p"),
                             "--warmup", "1", "--min-calls", "3", "--min-seconds", "0", "--canary", "none", "--json")
    assert code == 0, err
    df = pd.read_parquet(next((tmp_path / "p").glob("*/torch-t1")))
    ok = df[df["status"] == "ok"]
    assert len(ok) >= 14 and ok["peak_rss_bytes"].notna().all() and ok["memory_error"].isna().all()
    assert (ok["peak_rss_bytes"] >= ok["model_rss_bytes"]).all() and (ok["weight_bytes"] > 0).all()
    device = ok["device_id"].iloc[0]
    folder, meta = fit_and_save(device, "torch", 1, store=tmp_path / "p", out=tmp_path / "pred", max_load=None)
    assert (folder / MEMORY_FILE).is_file() and set(meta["memory"]) == {"peak_rss_bytes", "weight_bytes"}
    p = load_predictor(device, "torch", 1, root=tmp_path / "pred")
    frame = p.frame(ok[["layers", "hidden", "heads", "ffn", "seq", "batch"]])
    rel = frame["peak_mb"].to_numpy() / (ok["peak_rss_bytes"].to_numpy() / MIB) - 1
    assert np.median(np.abs(rel)) < 0.05  # in-sample: the analytic model fits what it was fitted on
    w = frame["weight_mb"].to_numpy() / (ok["weight_bytes"].to_numpy() / MIB) - 1
    assert np.abs(w).max() < 0.01  # weight bytes are analytic: exact up to rounding
    # --memory-only: the memory model of an existing predictor, its latency model untouched
    model_txt = (folder / "model.txt").read_bytes()
    (folder / MEMORY_FILE).unlink()
    code, _, err = run_cli("fit", "--device", device, "--backend", "torch", "--store", str(tmp_path / "p"), "--out",
                             str(tmp_path / "pred"), "--memory-only", "--json")
    assert code == 0, err
    assert (folder / MEMORY_FILE).is_file() and (folder / "model.txt").read_bytes() == model_txt
    assert load_predictor(device, "torch", 1, root=tmp_path / "pred").memory is not None
    write_store(tmp_path / "old", device, real_rows().head(20))  # rows without memory (an older profile)
    fit_and_save(device, "torch", 1, store=tmp_path / "old", out=tmp_path / "oldpred", max_load=None)
    code, _, err = run_cli("fit", "--device", device, "--backend", "torch", "--store", str(tmp_path / "old"), "--out",
                           str(tmp_path / "oldpred"), "--memory-only")
    assert code != 0 and "carry memory" in err and len(err.strip().splitlines()) == 1


def _synthetic(n_archs: int = 30, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_archs):
        h = int(rng.choice([128, 256, 384, 512]))
        a = Arch(int(rng.integers(1, 7)), h, 4, int(rng.choice([256, 512, 1024, 1536])))
        for b, s in ((1, 16), (1, 128), (4, 64), (8, 32)):
            rows.append({**a.to_dict(), "batch": b, "seq": s, "status": "ok"})
    df = pd.DataFrame(rows)
    coef = np.array([30.0, 4.0, 4.0, 4.0, 0.5, 8.0, 4.0, 4.0, 2.0])  # MB: runtime, fp32 weights, per layer, activations
    df["peak_rss_bytes"] = (memory_terms(df) @ coef * 1e6 * rng.normal(1, 0.01, len(df))).round()
    df["weight_bytes"] = (memory_terms(df)[:, 1:4] @ coef[1:4] * 1e6).round()
    return df


def test_memory_model_recovers_a_known_formula_and_round_trips(tmp_path: Path) -> None:
    models = fit_memory(_synthetic())
    peak = models["peak_rss_bytes"]
    assert peak.metrics["heldout"]["within_10pct"] == 1.0 and peak.metrics["heldout"]["mape"] < 0.02
    assert models["weight_bytes"].coef[1] == pytest.approx(4.0, rel=1e-3)
    save_memory(tmp_path, models)
    loaded = load_memory(tmp_path)
    assert loaded is not None and loaded["peak_rss_bytes"].coef == peak.coef
    doc = json.loads((tmp_path / MEMORY_FILE).read_text())
    doc["models"]["peak_rss_bytes"]["coef"][0] = -1
    (tmp_path / MEMORY_FILE).write_text(json.dumps(doc))
    with pytest.raises(KdnasError, match="corrupt memory model"):
        load_memory(tmp_path)
    (tmp_path / MEMORY_FILE).write_text("{not json")
    with pytest.raises(KdnasError, match="corrupt memory model"):
        load_memory(tmp_path)
    with pytest.raises(KdnasError, match="at least"):
        fit_memory(_synthetic().head(5))
    assert load_memory(tmp_path / "none") is None


class _FakePredictor:
    def __init__(self, memory: dict[str, MemoryModel] | None) -> None:
        from kdnas_bench.keys import DatasetKey as PredictorKey

        self.key = PredictorKey("dev", "torch", 1)
        self.memory = memory

    def predict_memory_mb(self, configs: pd.DataFrame) -> np.ndarray:
        assert self.memory is not None
        return self.memory["peak_rss_bytes"].predict_mb(configs)


def test_budget_mb_is_a_hard_constraint() -> None:
    coef = tuple(float(c) for c in (10.0, 4.0, 4.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0))
    pred = _FakePredictor({"peak_rss_bytes": MemoryModel("peak_rss_bytes", coef)})
    archs = [Arch(2, 128, 2, 256), Arch(6, 384, 6, 1536), Arch(12, 768, 12, 3072)]
    kept, mb = within_memory(pred, archs, Shape(1, 128), 200.0)
    assert kept == [a for a in archs if mb[a] <= 200] and 0 < len(kept) < 3
    with pytest.raises(SearchError, match="below every arch"):
        within_memory(pred, archs, Shape(1, 128), 1.0)
    with pytest.raises(SearchError, match="needs a memory model"):
        within_memory(_FakePredictor(None), archs, Shape(1, 128), 200.0)
    assert len(TERMS) == len(coef)
