from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kdnas_bench.errors import StoreError
from kdnas_bench.profiling.store import ProfileStore, row_id


def make_row(i: int, status: str = "ok") -> dict:
    arch = dict(layers=1 + i % 3, hidden=64, heads=2, ffn=128)
    return {
        "row_id": row_id("dev", "torch", 1, *arch.values(), 1, 8 + i),
        "device_id": "dev", "backend": "torch", "threads": 1, **arch, "batch": 1, "seq": 8 + i,
        "status": status, "error": None if status == "ok" else "RuntimeError: boom",
        "median_ms": 1.0 + i, "times_ms": [1.0 + i, 1.1 + i], "n": 2, "timestamp": datetime.now(UTC),
        "env": "{}",
    }


def test_append_read_compact_roundtrip(tmp_path: Path) -> None:
    ds = ProfileStore(tmp_path).dataset("dev", "torch", 1)
    with ds.writer():
        ds.append([make_row(0), make_row(1)])
        ds.append([make_row(2, status="failed")])
        ds.append([make_row(1)])  # the same config again (e.g. a crash mid-compaction): read once
    df = ds.read()
    assert list(df["seq"]) == [8, 9, 10]
    assert list(df["status"]) == ["ok", "ok", "failed"]
    assert df["times_ms"].iloc[1].tolist() == pytest.approx([2.0, 2.1])
    with ds.writer():
        assert ds.compact() == 3
    files = list(ds.path.glob("*.parquet"))
    assert len(files) == 1 and files[0].name.startswith("data-")
    # a pandas user opens the folder directly
    assert len(pd.read_parquet(files[0])) == 3
    assert ProfileStore(tmp_path).datasets()[0].key == ds.key


def test_temp_files_from_a_killed_writer_are_ignored(tmp_path: Path) -> None:
    ds = ProfileStore(tmp_path).dataset("dev", "torch", 1)
    with ds.writer():
        ds.append([make_row(0)])
    (ds.path / "part-99999999999999999-1.parquet.123.tmp").write_bytes(b"PAR1 torn")
    assert len(ds.read()) == 1
    with ds.writer():  # the next writer cleans them up
        pass
    assert not list(ds.path.glob("*.tmp"))


def test_corrupt_file_is_reported_and_left_alone(tmp_path: Path) -> None:
    ds = ProfileStore(tmp_path).dataset("dev", "torch", 1)
    with ds.writer():
        ds.append([make_row(0)])
    good = next(ds.path.glob("part-*.parquet"))
    bad = ds.path / "part-1-1.parquet"
    bad.write_bytes(b"this is not parquet")
    before = {p.name: p.read_bytes() for p in ds.path.glob("*.parquet")}
    with pytest.raises(StoreError, match="corrupt profile file"):
        ds.read()
    with pytest.raises(StoreError, match="corrupt"), ds.writer():
        ds.compact()
    assert {p.name: p.read_bytes() for p in ds.path.glob("*.parquet")} == before
    assert good.exists()


def test_foreign_parquet_is_rejected(tmp_path: Path) -> None:
    ds = ProfileStore(tmp_path).dataset("dev", "torch", 1)
    with ds.writer():
        ds.append([make_row(0)])
    pq.write_table(pa.table({"x": [1, 2]}), ds.path / "part-2-2.parquet")
    with pytest.raises(StoreError, match="not a kdnas-bench profile file"):
        ds.read()


def test_foreign_dataset_metadata_is_rejected(tmp_path: Path) -> None:
    ds = ProfileStore(tmp_path).dataset("dev", "torch", 1)
    ds.path.mkdir(parents=True)
    (ds.path / "dataset.json").write_text('{"kind": "something-else"}')
    with pytest.raises(StoreError, match="not a kdnas-bench profile dataset"):
        ds.read()


def test_second_writer_is_refused(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path)
    first = store.dataset("dev", "torch", 1)
    second = store.dataset("dev", "torch", 1)
    with first.writer(), pytest.raises(StoreError, match="another profiler"), second.writer():
        pass
    with second.writer():  # free again once the first is done
        second.append([make_row(0)])
    assert len(second.read()) == 1


def test_append_needs_the_lock(tmp_path: Path) -> None:
    ds = ProfileStore(tmp_path).dataset("dev", "torch", 1)
    with pytest.raises(RuntimeError):
        ds.append([make_row(0)])
    assert not os.path.exists(ds.path / "data")
