"""Shared pieces of the bad-input table (tests/test_bad_input.py): the workspace layout, the command
prefixes, the ``Case`` row and the ways to break one thing in a workspace."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kdnas_bench.profiling.device import hardware

DEV = "intel-xeon-processor-2c-cfff2f"  # the committed predictors' device
STORE_DEV = "test-cpu-0000"
DS = f"store/{STORE_DEV}/torch-t1"
PRED = f"preds/{DEV}/torch-t1"
FAST = ("--warmup", "1", "--min-calls", "3", "--min-seconds", "0.01", "--max-seconds", "0.2")
SEARCH = (
    "search",
    "--device",
    DEV,
    "--backend",
    "torch",
    "--task",
    "sst2",
    "--table",
    "{ws}/table.json",
    "--space",
    "{ws}/students.toml",
    "--predictors",
    "{ws}/preds",
    "--episodes",
    "2",
    "--candidates",
    "3",
    "--out",
    "{ws}/run",
)
PREDICT = ("predict", "--device", DEV, "--backend", "torch", "--threads", "1", "--predictors", "{ws}/preds")
PREDICT_ARCH = (*PREDICT, "--arch", "2,128,2,512", "--seq", "16", "--batch", "1")
SPACE_SHOW = ("space", "show", "--space", "{ws}/bad.toml")
FINETUNE = (
    "teacher",
    "finetune",
    "--task",
    "sst2",
    "--data-dir",
    "{ws}/glue",
    "--max-examples",
    "20",
    "--epochs",
    "0.01",
    "--out",
    "{ws}/newteacher",
)
DISTILL = (
    "distill",
    "--teacher",
    "{ws}/noteacher",
    "--task",
    "sst2",
    "--arch",
    "1,64,2,128",
    "--data-dir",
    "{ws}/glue",
    "--max-examples",
    "20",
    "--epochs",
    "0.01",
)

Setup = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    fragment: str
    setup: Setup | None = None
    code: int = 2
    subprocess: bool = False


# -- ways to break the workspace ------------------------------------------------------------------------
def write(rel: str, data: bytes | str) -> Setup:
    def _do(ws: Path) -> None:
        p = ws / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)

    return _do


def edit_json(rel: str, fn: Callable[[dict], object]) -> Setup:
    """Change a JSON file in place (``fn`` mutates the document)."""

    def _do(ws: Path) -> None:
        p = ws / rel
        doc = json.loads(p.read_text())
        fn(doc)
        p.write_text(json.dumps(doc))

    return _do


def drop(base: tuple[str, ...], name: str) -> tuple[str, ...]:
    """``base`` without option ``name`` and its value."""
    i = base.index(name)
    return (*base[:i], *base[i + 2 :])


def opt(base: tuple[str, ...], name: str, value: str) -> tuple[str, ...]:
    """``base`` with option ``name`` set to ``value`` (replaced where present, else appended)."""
    if name in base:
        i = base.index(name)
        return (*base[: i + 1], value, *base[i + 2 :])
    return (*base, name, value)


def edit_model(fn: Callable[[str], str], rel: str = PRED) -> Setup:
    """Change model.txt and update its checksum in meta.json (so only the content checks can catch it)."""

    def _do(ws: Path) -> None:
        folder = ws / rel
        text = fn((folder / "model.txt").read_text())
        (folder / "model.txt").write_text(text)
        meta = json.loads((folder / "meta.json").read_text())
        meta["files"]["model.txt"] = hashlib.sha256(text.encode()).hexdigest()
        (folder / "meta.json").write_text(json.dumps(meta))

    return _do


def edit_log(fn: Callable[[list[dict]], list[str] | bytes]) -> Setup:
    def _do(ws: Path) -> None:
        p = ws / "run" / "evaluations.jsonl"
        out = fn([json.loads(line) for line in p.read_text().splitlines()])
        p.write_bytes(out if isinstance(out, bytes) else ("\n".join(out) + "\n").encode())

    return _do


def both(*setups: Setup) -> Setup:
    def _do(ws: Path) -> None:
        for s in setups:
            s(ws)

    return _do


def _set(d: dict, path: str, value: object) -> None:
    keys = path.split(".")
    for k in keys[:-1]:
        d = d[k]
    d[keys[-1]] = value


def meta_field(path: str, value: object) -> Setup:
    return edit_json(f"{PRED}/meta.json", lambda d: _set(d, path, value))


def record_field(key: str, value: object) -> Setup:
    def fn(recs: list[dict]) -> list[str]:
        recs[1][key] = value
        return [json.dumps(r) for r in recs]

    return both(_same_run, edit_log(fn))


def _same_run(ws: Path) -> None:
    """run.json names the table by path: point it at this copy's, so the search resumes the run."""

    def fn(d: dict) -> None:
        d["config"]["evaluator"]["path"] = d["config"]["space"] = str(ws / "table.json")

    edit_json("run/run.json", fn)(ws)


def space(text: str) -> Setup:
    return write("bad.toml", text)


SHAPES = "[shapes]\nseq = [16]\nbatch = [1]\n"
ARCH = "[arch]\nlayers = [1]\nhidden = [64]\nheads = [2]\nffn = [128]\n"
CONFIG = {"layers": 2, "hidden": 128, "heads": 2, "ffn": 512, "seq": 16, "batch": 1}


def configs(doc: object) -> Setup:
    return write("configs.json", json.dumps(doc))


def _huge_file(ws: Path) -> None:
    with open(ws / "configs.json", "wb") as fh:
        fh.truncate(60 * 2**20)  # sparse: 60 MiB of NUL bytes


def _stray_parquet(ws: Path) -> None:
    shutil.copy(next((ws / DS).glob("*.parquet")), ws / DS / "data-old.parquet")


def _no_dataset_json(ws: Path) -> None:
    (ws / DS / "_dataset.json").unlink()


def _foreign_parquet(ws: Path) -> None:
    import pandas as pd

    pd.DataFrame({"a": [1, 2]}).to_parquet(ws / DS / "part-1-1.parquet")


def _here_stray(ws: Path) -> None:  # the profiler's own dataset (this machine's id) holds a stray file
    folder = ws / "store" / hardware(with_gpu=False).device_id / "torch-t1"
    shutil.copytree(ws / DS, folder)
    edit_json(f"{folder.relative_to(ws)}/_dataset.json", lambda d: d.update(device_id=hardware(with_gpu=False).device_id))(ws)
    shutil.copy(next(folder.glob("*.parquet")), folder / "data-x.parquet")


def _cut(n: int) -> Callable[[str], str]:
    return lambda text: text[: len(text) * n // 100]


def _torn_only(recs: list[dict]) -> bytes:
    return json.dumps(recs[0]).encode()[:40]


def _nonutf8_log(recs: list[dict]) -> bytes:
    lines = [json.dumps(r).encode() for r in recs]
    lines[1] = lines[1].replace(b'"arch"', b'"\xff\xfearch"')
    return b"\n".join(lines) + b"\n"


def _tsv(rows: list[str]) -> bytes:
    return ("sentence\tlabel\n" + "\n".join(rows) + "\n").encode()


GOOD_TSV = [f"a fine sentence number {i}\t{i % 2}" for i in range(30)]


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}
