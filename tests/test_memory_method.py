"""Memory-measuring methods: the per-row ``memory_method`` column (schema 4; older rows read as method 1),
revisions of stored rows, memory models that never mix methods, and ``remeasure --memory-only``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kdnas_bench.errors import KdnasError, StoreError
from kdnas_bench.predictors.memory import MEMORY_FILE, fit_memory, load_memory, memory_terms, save_memory
from kdnas_bench.profiling.memory import METHOD, unsupported
from kdnas_bench.profiling.store import META_KEY, SCHEMA, V3_FIELDS, ProfileStore
from kdnas_bench.space import Arch

from .helpers import real_rows, write_store

MEMORY = ["weight_bytes", "model_rss_bytes", "peak_rss_bytes", "forward_rss_bytes", "memory_error", "memory_method"]


def _with_memory(tmp_path: Path, n: int = 6) -> tuple[ProfileStore, pd.DataFrame]:
    """A store of ``n`` real rows (plus a failed one) whose ok rows carry memory, written as schema 3."""
    write_store(tmp_path, "dev", real_rows().head(n))
    ds = ProfileStore(tmp_path).dataset("dev", "torch", 1)
    df = ds.read()
    ok = df["status"] == "ok"
    df.loc[ok, "weight_bytes"] = 1000
    df.loc[ok, "model_rss_bytes"] = 2000
    df.loc[ok, "peak_rss_bytes"] = 5000
    df.loc[ok, "forward_rss_bytes"] = 3000
    v3 = pa.schema(list(SCHEMA)[:V3_FIELDS])
    table = pa.Table.from_pandas(df[[f.name for f in v3]], schema=v3, preserve_index=False)
    for f in ds.path.glob("*.parquet"):
        f.unlink()
    pq.write_table(table.replace_schema_metadata({META_KEY: b"3"}), ds.path / "data-1.parquet")
    return ProfileStore(tmp_path), df


def test_schema3_memory_reads_as_method_1_and_new_rows_carry_theirs(tmp_path: Path) -> None:
    store, _ = _with_memory(tmp_path)
    ds = store.dataset("dev", "torch", 1)
    df = ds.read()
    ok = df["status"] == "ok"
    assert (df.loc[ok, "memory_method"] == 1).all() and df.loc[~ok, "memory_method"].isna().all()
    row = {**df[ok].iloc[0].to_dict(), "row_id": "new-row", "memory_method": 2, "times_ms": None, "timestamp": None}
    row = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
    with ds.writer():
        ds.append([row])
        ds.compact()  # the schema-3 file and the schema-4 part merged: the method survives the rewrite
    again = ds.read()
    assert again.set_index("row_id").loc["new-row", "memory_method"] == 2
    assert (again[again["row_id"] != "new-row"].query("status == 'ok'")["memory_method"] == 1).all()
    assert pq.ParquetFile(next(ds.path.glob("data-*.parquet"))).schema_arrow.metadata[META_KEY] == b"4"


def test_revise_replaces_rows_in_place_and_refuses_unknown_ids(tmp_path: Path) -> None:
    store, _ = _with_memory(tmp_path)
    ds = store.dataset("dev", "torch", 1)
    table = ds.read_table()
    before = ds.read()
    sub = table.take([1, 3])
    idx = sub.schema.get_field_index("peak_rss_bytes")
    sub = sub.set_column(idx, SCHEMA.field("peak_rss_bytes"), pa.array([7777, 8888], pa.int64()))
    with ds.writer():
        ds.revise(sub)
        after = ds.read()
        assert after["row_id"].tolist() == before["row_id"].tolist()  # same rows, same order
        assert after["peak_rss_bytes"].iloc[[1, 3]].tolist() == [7777, 8888]
        assert after.drop(index=[1, 3])["peak_rss_bytes"].equals(before.drop(index=[1, 3])["peak_rss_bytes"])
        bad = table.take([0]).set_column(0, SCHEMA.field("row_id"), pa.array(["not-stored"]))
        with pytest.raises(StoreError, match="does not hold"):
            ds.revise(bad)
        ds.compact()
    assert pd.read_parquet(ds.path)["peak_rss_bytes"].iloc[[1, 3]].tolist() == [7777, 8888]
    assert len(pd.read_parquet(ds.path)) == len(before)


def _synthetic(n_archs: int, method: int, scale: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_archs):
        a = Arch(int(rng.integers(1, 7)), int(rng.choice([128, 256, 384])), 4, int(rng.choice([256, 512, 1024])))
        for b, s in ((1, 16), (1, 128), (4, 64), (8, 32)):
            rows.append({**a.to_dict(), "batch": b, "seq": s, "status": "ok", "memory_method": method})
    df = pd.DataFrame(rows)
    coef = np.array([30.0, 4.0, 4.0, 4.0, 0.5, 8.0, 4.0, 4.0, 2.0])
    df["peak_rss_bytes"] = (memory_terms(df) @ coef * scale * 1e6).round()
    df["weight_bytes"] = (memory_terms(df)[:, 1:4] @ coef[1:4] * 1e6).round()
    return df


def test_memory_fit_uses_the_newest_method_only_and_records_it(tmp_path: Path) -> None:
    old, new = _synthetic(20, 1, 1.5, 0), _synthetic(10, 2, 1.0, 1)  # method 1 read 50 % more
    models = fit_memory(pd.concat([old, new], ignore_index=True))
    peak = models["peak_rss_bytes"]
    assert peak.method == 2 and peak.metrics["rows"] == len(new) and peak.metrics["rows_other_methods"] == {"1": len(old)}
    pred = peak.predict_bytes(new) / new["peak_rss_bytes"].to_numpy()
    assert np.abs(pred - 1).max() < 0.01  # mixing in the method-1 rows would pull the fit up
    save_memory(tmp_path, models)
    doc = json.loads((tmp_path / MEMORY_FILE).read_text())
    assert doc["memory_method"] == 2 and "anonymous" in doc["memory_method_label"]
    assert {m.method for m in load_memory(tmp_path).values()} == {2}  # type: ignore[union-attr]
    del doc["memory_method"]  # written before methods were recorded
    (tmp_path / MEMORY_FILE).write_text(json.dumps(doc))
    assert {m.method for m in load_memory(tmp_path).values()} == {1}  # type: ignore[union-attr]
    with pytest.raises(KdnasError, match="one measuring method"):
        save_memory(tmp_path, {"peak_rss_bytes": peak, "weight_bytes": fit_memory(old)["weight_bytes"]})
    with pytest.raises(KdnasError, match=r"not mixed.*remeasure --memory-only"):  # enough rows only if mixed
        fit_memory(pd.concat([old, new.head(8)], ignore_index=True))
    no_column = old.drop(columns="memory_method")  # a frame from an older store: method 1
    assert fit_memory(no_column)["peak_rss_bytes"].method == 1


@pytest.mark.skipif(unsupported() is not None, reason=str(unsupported()))
def test_remeasure_memory_only_keeps_latency_and_resumes(tmp_path: Path, tiny_space_path: Path, run_cli) -> None:
    store = tmp_path / "p"
    code, _, err = run_cli("profile", "--space", str(tiny_space_path), "--samples", "5", "--store", str(store),
                           "--warmup", "1", "--min-calls", "3", "--min-seconds", "0", "--canary", "none", "--no-memory",
                           "--json")
    assert code == 0, err
    folder = next(store.glob("*/torch-t1"))
    ds = ProfileStore(store).dataset(folder.parent.name, "torch", 1)
    table = ds.read_table()
    ok = [i for i, s in enumerate(table.column("status").to_pylist()) if s == "ok"]
    stale = table.take(ok[:3])  # three rows "measured with method 1": made-up bytes
    for name, value, typ in (("peak_rss_bytes", 1, pa.int64()), ("weight_bytes", 1, pa.int64()),
                             ("model_rss_bytes", 0, pa.int64()), ("forward_rss_bytes", 1, pa.int64()),
                             ("memory_method", 1, pa.int8())):
        stale = stale.set_column(stale.schema.get_field_index(name), SCHEMA.field(name), pa.array([value] * 3, typ))
    with ds.writer():
        ds.revise(stale)
    before = ds.read()
    latency = [c for c in before.columns if c not in MEMORY]
    args = ["remeasure", "--memory-only", "--space", str(tiny_space_path), "--store", str(store), "--json"]

    code, out, err = run_cli(*args, "--samples", "2")  # part of the stale rows, then stop
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["pending"], doc["measured"], doc["failed"], doc["method"]) == (3, 2, 0, METHOD)
    mid = ds.read()  # pending counted the stale rows only, not the rows without memory
    assert (mid["memory_method"] == METHOD).sum() == 2 and (mid["memory_method"] == 1).sum() == 1
    code, out, err = run_cli(*args, "--include-unmeasured")  # resumes: the stale row left, then those without
    assert code == 0, err
    assert (json.loads(out)["pending"], json.loads(out)["measured"]) == (1 + len(ok) - 3, 1 + len(ok) - 3)
    after = ds.read()
    done = after["status"] == "ok"
    assert len(after) == len(before) and after["row_id"].tolist() == before["row_id"].tolist()
    pd.testing.assert_frame_equal(after[latency].drop(columns="times_ms"), before[latency].drop(columns="times_ms"))
    assert all(np.array_equal(a, b) for a, b in zip(after["times_ms"], before["times_ms"], strict=True))
    assert (after.loc[done, "memory_method"] == METHOD).all() and after.loc[done, "memory_error"].isna().all()
    assert (after.loc[done, "peak_rss_bytes"] >= after.loc[done, "model_rss_bytes"]).all()
    assert (after.loc[done, "peak_rss_bytes"] > 1024).all() and (after.loc[done, "weight_bytes"] > 1024).all()
    assert len(list(folder.glob("*.parquet"))) == 1  # compacted
    code, out, err = run_cli(*args)
    assert code == 0 and json.loads(out)["pending"] == 0  # nothing left: nothing measured


def test_remeasure_memory_only_bad_input(tmp_path: Path, run_cli) -> None:
    for extra, msg in ((["--fresh", "3"], "--fresh measures latency"), (["--samples", "0"], "--samples"),
                       (["--canary", "none"], "--canary measures latency")):
        code, _, err = run_cli("remeasure", "--memory-only", "--store", str(tmp_path), *extra)
        assert code != 0 and msg in err and len(err.strip().splitlines()) == 1, err
    code, _, err = run_cli("remeasure", "--memory-only", "--store", str(tmp_path / "empty"))
    assert code != 0 and "no profile of this device" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("remeasure", "--include-unmeasured", "--store", str(tmp_path))
    assert code != 0 and "goes with --memory-only" in err


def test_search_budget_mb_names_the_memory_method(tmp_path: Path, run_cli) -> None:
    from kdnas_bench.predictors.registry import fit_and_save
    from kdnas_bench.space import SearchSpace, sample_archs

    from .helpers import DEV, ROOT

    write_store(tmp_path / "p", DEV, real_rows())
    ds = ProfileStore(tmp_path / "p").dataset(DEV, "torch", 1)
    table = ds.read_table()
    ok = [i for i, s in enumerate(table.column("status").to_pylist()) if s == "ok"]
    sub = table.take(ok)
    frame = sub.select(["layers", "hidden", "heads", "ffn", "batch", "seq"]).to_pandas()
    coef = np.array([30.0, 4.0, 4.0, 4.0, 0.5, 8.0, 4.0, 4.0, 2.0])
    peak = (memory_terms(frame) @ coef * 1e6).round().astype(np.int64)
    weights = (memory_terms(frame)[:, 1:4] @ coef[1:4] * 1e6).round().astype(np.int64)
    for name, vals in (("peak_rss_bytes", peak), ("weight_bytes", weights), ("model_rss_bytes", weights),
                       ("forward_rss_bytes", peak - weights), ("memory_method", np.full(len(ok), 2, np.int8))):
        sub = sub.set_column(sub.schema.get_field_index(name), SCHEMA.field(name), pa.array(vals, SCHEMA.field(name).type))
    with ds.writer():
        ds.revise(sub)
    fit_and_save(DEV, "torch", 1, store=tmp_path / "p", out=tmp_path / "pred", max_load=None)
    space = SearchSpace.load(ROOT / "search" / "spaces" / "bert.toml")
    archs = sorted(set(sample_archs(space, 60, sampler="sobol", seed=5)))
    (tmp_path / "t.json").write_text(json.dumps([{**a.to_dict(), "metric": 0.5 + a.layers / 100, "metric_name": "accuracy"}
                                                 for a in archs]))
    args = ["search", "--device", DEV, "--backend", "torch", "--budget-ms", "40", "--budget-mb", "400", "--task", "sst2",
            "--table", str(tmp_path / "t.json"), "--predictors", str(tmp_path / "pred"), "--episodes", "2",
            "--candidates", "3", "--strategy", "evolution"]
    code, out, err = run_cli(*args, "--out", str(tmp_path / "r1"), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["memory_method"] == 2 and all("predicted_peak_mb" in w for w in doc["winners"])
    code, out, err = run_cli(*args, "--out", str(tmp_path / "r2"))
    assert code == 0, err
    assert "method 2 (anonymous memory only" in " ".join(out.split())
