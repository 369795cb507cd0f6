"""The profile store: Parquet datasets, one per (device id, backend, threads), append-only.

Layout::

    profiles/<device_id>/<backend>-t<threads>/
        _dataset.json           schema version and keys of this dataset (``dataset.json`` before schema 2)
        _adaptive.json          rows-vs-accuracy curve of adaptive profiling (``profile --minutes``)
        _floor.json             the device's noise floor (``kdnas-bench remeasure``)
        data-*.parquet          compacted rows            (pandas: pd.read_parquet(folder))
        part-*.parquet          rows appended since the last compaction
        .lock                   held by the profiler writing here

Names starting with ``_`` or ``.`` are skipped by pyarrow's dataset discovery, so
``pd.read_parquet(folder)`` reads exactly the Parquet rows.

Schema 2 added the drift columns (the canary timed in the same seconds as each row, see
:mod:`.canary`), schema 3 the memory columns (:mod:`.memory`), schema 4 ``memory_method`` (which
measuring method gave a row's memory columns: files of schema 3 were all measured with method 1, and
read so); older files are read as schema 4 with the newer columns empty, and a schema-1 folder's
``dataset.json`` is renamed to ``_dataset.json`` the next time a profiler writes to it.

Crash safety: every file is written to a ``*.tmp`` name, fsynced and renamed, so a SIGKILL leaves at
most an ignored temp file, never a torn Parquet file. Each row carries a ``row_id`` (device, backend,
threads, arch, shape); readers drop repeated ids, which makes a crash in the middle of a compaction
harmless. Nothing is ever rewritten in place: compaction writes a new file before deleting parts.

:meth:`Dataset.revise` appends newer copies of stored rows (``remeasure --memory-only``); readers return
each row id's newest copy at the place of its first, so rows keep their order.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import StoreError
from ..keys import DatasetKey
from .storecheck import check_dataset_folders

SCHEMA_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
_DATA_NAME = re.compile(r"^(data-\d+|part-\d+-\d+)\.parquet$")
META_KEY = b"kdnas_bench_profile_schema"
META_NAME = "_dataset.json"
LEGACY_META_NAME = "dataset.json"  # schema 1: breaks pd.read_parquet(folder), renamed on the next write

SCHEMA = pa.schema(
    [
        ("row_id", pa.string()),
        ("device_id", pa.string()),
        ("backend", pa.string()),
        ("threads", pa.int16()),
        ("layers", pa.int16()),
        ("hidden", pa.int32()),
        ("heads", pa.int16()),
        ("ffn", pa.int32()),
        ("batch", pa.int32()),
        ("seq", pa.int32()),
        ("status", pa.string()),  # "ok" or "failed"
        ("error", pa.string()),
        ("median_ms", pa.float64()),
        ("mean_ms", pa.float64()),
        ("p90_ms", pa.float64()),
        ("p99_ms", pa.float64()),
        ("min_ms", pa.float64()),
        ("std_ms", pa.float64()),
        ("cv", pa.float64()),
        ("iqr_ratio", pa.float64()),
        ("n", pa.int32()),
        ("attempts", pa.int16()),
        ("noisy", pa.bool_()),
        ("times_ms", pa.list_(pa.float32())),
        ("warmup", pa.int32()),
        ("min_calls", pa.int32()),
        ("min_seconds", pa.float32()),
        ("load_before", pa.float32()),
        ("load_after", pa.float32()),
        ("timestamp", pa.timestamp("ms", tz="UTC")),
        ("sampler", pa.string()),
        ("seed", pa.int64()),
        ("sample_index", pa.int64()),
        ("env_id", pa.string()),
        ("env", pa.string()),  # JSON of the full environment stamp
        # schema 2: drift. The canary (a fixed small config) timed interleaved with the row, same seconds
        ("canary_ms", pa.float64()),  # canary median during this row
        ("canary_n", pa.int32()),
        ("canary_iqr_ratio", pa.float64()),
        ("canary_shift", pa.float64()),  # canary median, 2nd half of the row over 1st half, minus 1
        ("ratio", pa.float64()),  # median_ms / canary_ms: what drift leaves unchanged
        ("drift_flag", pa.bool_()),  # the canary moved strongly during the row
        ("interleave", pa.string()),  # "burst", "call" or "chunk"; null: without a canary
        ("round", pa.int32()),  # adaptive profiling round (null: a plain campaign)
        ("wall_seconds", pa.float32()),  # seconds spent measuring the row (canary included)
        # schema 3: memory (kdnas_bench.profiling.memory: a fresh child process per row, anonymous peak RSS)
        ("weight_bytes", pa.int64()),  # the weights as the backend holds them (fp32 / bf16 / int8 + scales)
        ("model_rss_bytes", pa.int64()),  # resident set of the loaded model over the bare runtime's
        ("peak_rss_bytes", pa.int64()),  # peak resident set of one forward pass over the bare runtime's
        ("forward_rss_bytes", pa.int64()),  # of which the forward pass itself (peak minus loaded)
        ("memory_error", pa.string()),  # why the memory of an ok row was not measured
        ("memory_method", pa.int8()),  # schema 4: the method that measured the memory columns (memory.METHOD)
    ]
)
V1_FIELDS, V2_FIELDS, V3_FIELDS = 35, 44, 49  # schema 1 had the first 35 columns, schema 2 44, schema 3 49
LEGACY_MEMORY_METHOD = 1  # schema-3 rows: VmRSS / VmHWM, file-backed pages included


def row_id(
    device_id: str, backend: str, threads: int, layers: int, hidden: int, heads: int, ffn: int, batch: int, seq: int
) -> str:
    key = f"{device_id}|{backend}|{threads}|{layers},{hidden},{heads},{ffn}|{batch}x{seq}"
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tmp_name(final: Path) -> Path:
    """A hidden temp name (``.`` prefix: pyarrow and glob("*.parquet") skip it)."""
    return final.with_name(f".{final.name}.{os.getpid()}.tmp")


def write_json_atomic(path: Path, doc: Any) -> None:
    tmp = _tmp_name(path)
    tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _upgrade(table: pa.Table) -> pa.Table:
    """An older table (schema 1 to 3) with the newer columns added, empty; memory measured before schema 4
    is marked as method 1 (the only one there was)."""
    for f in SCHEMA:
        if f.name not in table.column_names:
            col = pc.if_else(pc.is_valid(table.column("peak_rss_bytes")), pa.scalar(LEGACY_MEMORY_METHOD, f.type),
                             pa.scalar(None, f.type)) if f.name == "memory_method" else pa.nulls(table.num_rows, f.type)
            table = table.append_column(f, col)
    return table.select(SCHEMA.names)


def _write_atomic(table: pa.Table, final: Path) -> None:
    tmp = _tmp_name(final)
    table = table.replace_schema_metadata({META_KEY: str(SCHEMA_VERSION).encode()})
    with open(tmp, "wb") as fh:
        pq.write_table(table, fh, compression="zstd")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    _fsync_dir(final.parent)


class Dataset:
    """One (device, backend, threads) dataset of profile rows."""

    def __init__(self, root: Path, key: DatasetKey) -> None:
        self.root = Path(root)
        self.key = key
        self.path = self.root / key.relpath
        self._lock_fh: Any = None

    # -- metadata ---------------------------------------------------------------------------------
    def _meta_path(self) -> Path:
        new = self.path / META_NAME
        legacy = self.path / LEGACY_META_NAME
        return legacy if legacy.exists() and not new.exists() else new

    def _check_meta(self) -> None:
        meta_path = self._meta_path()
        if not meta_path.exists():
            if self.path.exists() and any(self.path.glob("*.parquet")):
                raise StoreError(f"{self.path} holds Parquet files but no {META_NAME}: not a kdnas-bench dataset")
            return
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StoreError(f"corrupt dataset metadata {meta_path}: {exc}") from None
        if not isinstance(meta, dict) or meta.get("kind") != "kdnas-bench-profile":
            raise StoreError(f"{meta_path} is not a kdnas-bench profile dataset")
        if meta.get("schema_version") not in READABLE_VERSIONS:
            raise StoreError(f"{meta_path} has schema version {meta.get('schema_version')}, this kdnas-bench reads "
                             f"{', '.join(map(str, READABLE_VERSIONS))}; use the kdnas-bench that wrote it")
        if (meta.get("device_id"), meta.get("backend"), meta.get("threads")) != (
            self.key.device_id,
            self.key.backend,
            self.key.threads,
        ):
            raise StoreError(f"{meta_path} describes another dataset than its folder name says")

    def _ensure_meta(self) -> None:
        """Create the metadata, or migrate a schema-1 ``dataset.json`` to ``_dataset.json`` (schema 2:
        its Parquet files stay as they are and are read as schema 2)."""
        self._check_meta()
        meta_path = self.path / META_NAME
        legacy = self.path / LEGACY_META_NAME
        if meta_path.exists():
            legacy.unlink(missing_ok=True)  # a migration killed between its two steps
            return
        self.path.mkdir(parents=True, exist_ok=True)
        meta = {
            "kind": "kdnas-bench-profile",
            "schema_version": SCHEMA_VERSION,
            "device_id": self.key.device_id,
            "backend": self.key.backend,
            "threads": self.key.threads,
        }
        if legacy.exists():
            meta["migrated_from_schema"] = json.loads(legacy.read_text(encoding="utf-8"))["schema_version"]
        write_json_atomic(meta_path, meta)
        legacy.unlink(missing_ok=True)

    def read_json(self, name: str) -> Any:
        """A side file of the dataset (``_adaptive.json``, ``_floor.json``); ``None`` when absent."""
        path = self.path / name
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StoreError(f"corrupt {path}: {exc}; move it away") from None

    def write_json(self, name: str, doc: Any) -> None:
        if not name.startswith("_"):
            raise ValueError("dataset side files start with '_' so that pd.read_parquet(folder) skips them")
        self.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path / name, doc)

    # -- locking ----------------------------------------------------------------------------------
    @contextmanager
    def writer(self) -> Iterator[Dataset]:
        """Exclusive right to append to this dataset. A second profiler gets a clear error."""
        self._ensure_meta()
        lock_path = self.path / ".lock"
        fh = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole block
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise StoreError(f"dataset {self.path} is being written by another profiler ({holder}); wait for it") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        self._lock_fh = fh
        try:
            # left by a killed writer; never a committed file
            for stale in [*self.path.glob("*.tmp"), *self.path.glob(".*.tmp")]:
                stale.unlink(missing_ok=True)
            yield self
        finally:
            self._lock_fh = None
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            fh.close()

    def _require_lock(self) -> None:
        if self._lock_fh is None:
            raise RuntimeError("write to a dataset inside `with dataset.writer():`")

    # -- writing ----------------------------------------------------------------------------------
    def append(self, rows: list[dict[str, Any]]) -> None:
        self._require_lock()
        if not rows:
            return
        table = pa.Table.from_pylist(rows, schema=SCHEMA)
        _write_atomic(table, self.path / f"part-{time.time_ns()}-{os.getpid()}.parquet")

    def revise(self, table: pa.Table) -> None:
        """Append newer copies of stored rows (``table`` in the store's schema, row ids that the dataset
        holds); readers return them in place of the older copies. Nothing stored is deleted."""
        self._require_lock()
        if not table.num_rows:
            return
        if table.schema.names != SCHEMA.names:
            raise StoreError("a revision must carry every column of the profile schema")
        unknown = sorted(set(table.column("row_id").to_pylist()) - set(self.read_table().column("row_id").to_pylist()))
        if unknown:
            raise StoreError(f"{self.path}: cannot revise {len(unknown)} row(s) it does not hold (first {unknown[0]})")
        _write_atomic(table.cast(SCHEMA), self.path / f"part-{time.time_ns()}-{os.getpid()}.parquet")

    def compact(self) -> int:
        """Merge all files into one ``data-*.parquet``; returns the row count."""
        self._require_lock()
        files = self._files()
        if len(files) <= 1:
            return len(self.read())
        table = self._read_table(files)
        final = self.path / f"data-{time.time_ns()}.parquet"
        _write_atomic(table, final)
        for f in files:
            f.unlink(missing_ok=True)
        _fsync_dir(self.path)
        return table.num_rows

    # -- reading ----------------------------------------------------------------------------------
    def _files(self) -> list[Path]:
        if not self.path.exists():
            return []
        files = [*self.path.glob("data-*.parquet"), *self.path.glob("part-*.parquet")]
        for f in files:
            if not _DATA_NAME.match(f.name):
                raise StoreError(f"{f} is not a kdnas-bench profile file name (data-<ns>.parquet or "
                                 "part-<ns>-<pid>.parquet); nothing was changed, move it out of the store")
        return sorted(files, key=lambda p: int(p.name.split("-")[1].split(".")[0]))

    def _read_file(self, path: Path) -> pa.Table:
        try:
            pf = pq.ParquetFile(path)
            meta = pf.schema_arrow.metadata or {}
            if META_KEY not in meta:
                raise StoreError(f"{path} is not a kdnas-bench profile file; move it out of the store")
            version = meta[META_KEY].decode(errors="replace")
            if version not in {str(v) for v in READABLE_VERSIONS}:
                raise StoreError(f"{path} has profile schema {version}, this kdnas-bench reads "
                                 f"{', '.join(map(str, READABLE_VERSIONS))}; use the kdnas-bench that wrote it")
            table = pf.read()
            return (_upgrade(table) if version != str(SCHEMA_VERSION) else table).cast(SCHEMA)
        except StoreError:
            raise
        except (OSError, pa.ArrowException, ValueError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StoreError(f"corrupt profile file {path} ({msg}); nothing was changed, move it out of the store") from None

    def _read_table(self, files: list[Path]) -> pa.Table:
        if not files:
            return SCHEMA.empty_table()
        table = pa.concat_tables([self._read_file(f) for f in files])
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        for i, r in enumerate(table.column("row_id").to_pylist()):
            first.setdefault(r, i)
            last[r] = i
        if len(first) == table.num_rows:
            return table
        return table.take([last[r] for r in first])  # the newest copy, where the row first appeared

    def read_table(self) -> pa.Table:
        """All rows as an Arrow table in the store's schema (one per row id, newest copy, oldest first)."""
        self._check_meta()
        for _ in range(5):
            files = self._files()
            try:
                return self._read_table(files)
            except StoreError:
                if all(f.exists() for f in files):
                    raise
                time.sleep(0.05)  # a compaction replaced files under us: read again
        return self._read_table(self._files())

    def read(self) -> pd.DataFrame:
        """All rows (ok and failed), one per row id, oldest first."""
        return self.read_table().to_pandas()


class ProfileStore:
    """A folder of datasets."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"store {self.root} is not a folder")

    def dataset(self, device_id: str, backend: str, threads: int) -> Dataset:
        return Dataset(self.root, DatasetKey(device_id, backend, int(threads)))

    def datasets(self) -> list[Dataset]:
        """Every dataset; a folder with Parquet files but no dataset.json, or whose dataset.json names
        another dataset than the folder, is an error (never hidden, never shown as a phantom)."""
        return [Dataset(self.root, key) for key in check_dataset_folders(self.root)]

    def find(self, device_id: str, backend: str | None = None, threads: int | None = None) -> list[Dataset]:
        return [
            d
            for d in self.datasets()
            if d.key.device_id == device_id
            and (backend is None or d.key.backend == backend)
            and (threads is None or d.key.threads == threads)
        ]
