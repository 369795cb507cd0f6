"""Bad input, table-driven: every verb and every file kind the tool reads, each case an input and the
exit code and message fragment it must give.

Each case runs in a fresh copy of a small workspace (committed predictors, a small profile store, a
finished table-driven search run, spaces, a GLUE folder, a configs file) after its ``setup`` has broken
one thing. It must exit non-zero with exactly one line on stderr holding the fragment, no traceback, and
every file in the workspace must be byte-identical afterwards (nothing stored changed, nothing
created). Most cases run the CLI in-process; a case that could kill the process (a model file that
crashed LightGBM) runs in a subprocess.

To add a verb or a file kind: add rows to ``CASES`` (``{ws}`` in an argument is the workspace folder).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from kdnas_bench.profiling.device import hardware

from .conftest import ROOT, cli_subprocess_cmd
from .test_predictors import real_rows, write_store

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
    "--run",
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
    (ws / DS / "dataset.json").unlink()


def _foreign_parquet(ws: Path) -> None:
    import pandas as pd

    pd.DataFrame({"a": [1, 2]}).to_parquet(ws / DS / "part-1-1.parquet")


def _here_stray(ws: Path) -> None:  # the profiler's own dataset (this machine's id) holds a stray file
    folder = ws / "store" / hardware(with_gpu=False).device_id / "torch-t1"
    shutil.copytree(ws / DS, folder)
    edit_json(f"{folder.relative_to(ws)}/dataset.json", lambda d: d.update(device_id=hardware(with_gpu=False).device_id))(ws)
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


# -- the table --------------------------------------------------------------------------------------------
CASES: list[Case] = [
    # options: finite numbers, int64, ranges (checked before anything runs)
    Case(
        "profile-min-seconds-nan",
        ("profile", "--min-seconds", "nan", "--store", "{ws}/store"),
        "--min-seconds must be a finite number",
    ),
    Case(
        "profile-max-seconds-inf",
        ("profile", "--max-seconds", "inf", "--store", "{ws}/store"),
        "--max-seconds must be a finite number",
    ),
    Case("profile-min-seconds-neg-inf", ("profile", "--min-seconds", "-inf", "--store", "{ws}/store"), "finite number"),
    Case("profile-seed-negative", ("profile", "--seed", "-1", "--store", "{ws}/store"), "--seed must be non-negative"),
    Case(
        "profile-seed-huge", ("profile", "--seed", str(2**40), "--store", "{ws}/store"), "--seed must be non-negative and at most"
    ),
    Case("profile-threads-zero", ("profile", "--threads", "0", "--store", "{ws}/store"), "--threads must be positive"),
    Case("profile-threads-text", ("profile", "--threads", "abc"), "'abc' is not a valid integer"),
    Case("profile-samples-zero", ("profile", "--samples", "0", "--store", "{ws}/store"), "--samples must be positive"),
    Case(
        "profile-warmup-huge",
        ("profile", "--warmup", str(10**9), "--store", "{ws}/store"),
        "--warmup must be non-negative and at most",
    ),
    Case("profile-sampler-unknown", ("profile", "--sampler", "grid"), "'grid' is not one of"),
    Case("profile-seq-text", ("profile", "--seq", "8,x", "--store", "{ws}/store"), "integers"),
    Case("profile-seq-zero", ("profile", "--seq", "0", "--store", "{ws}/store"), "positive"),
    Case("profile-min-calls-zero", ("profile", "--min-calls", "0", "--store", "{ws}/store"), "--min-calls must be positive"),
    Case(
        "profile-max-below-min",
        ("profile", *FAST[:6], "--max-seconds", "0.001", "--store", "{ws}/store", "--space", "{ws}/tiny.toml"),
        "invalid timing options",
    ),
    Case(
        "measure-seq-int64",
        ("measure", "--arch", "1,64,2,128", "--seq", str(2**64), "--batch", "1"),
        "does not fit in a 64-bit integer",
    ),
    Case(
        "measure-batch-int64-neg",
        ("measure", "--arch", "1,64,2,128", "--seq", "8", "--batch", str(-(2**70))),
        "does not fit in a 64-bit integer",
    ),
    Case("measure-arch-not-divide", ("measure", "--arch", "4,310,12,1200", "--seq", "8", "--batch", "1"), "must divide"),
    Case("measure-arch-three", ("measure", "--arch", "4,312,12", "--seq", "8", "--batch", "1"), "L,H,A,FFN"),
    Case("measure-arch-text", ("measure", "--arch", "a,b,c,d", "--seq", "8", "--batch", "1"), "L,H,A,FFN"),
    Case("measure-arch-huge", ("measure", "--arch", f"1,{2**40},2,128", "--seq", "8", "--batch", "1"), "too large"),
    Case("measure-arch-zero", ("measure", "--arch", "0,64,2,128", "--seq", "8", "--batch", "1"), "must be positive"),
    Case("measure-seq-zero", ("measure", "--arch", "1,64,2,128", "--seq", "0", "--batch", "1"), "--seq must be positive"),
    Case("measure-seq-too-long", ("measure", "--arch", "1,64,2,128", "--seq", "1000", "--batch", "1"), "exceeds BERT's 512"),
    Case(
        "measure-batch-negative", ("measure", "--arch", "1,64,2,128", "--seq", "8", "--batch", "-2"), "--batch must be positive"
    ),
    Case(
        "measure-max-seconds-nan",
        ("measure", "--arch", "1,64,2,128", "--seq", "8", "--batch", "1", "--max-seconds", "nan"),
        "--max-seconds must be a finite",
    ),
    Case(
        "measure-backend-unknown",
        ("measure", "--arch", "1,64,2,128", "--seq", "8", "--batch", "1", "--backend", "tvm"),
        "'tvm' is not one of",
    ),
    # output paths: writable, checked up front
    Case("profile-store-under-file", ("profile", "--store", "{ws}/afile/store"), "is a file, not a folder"),
    Case("profile-store-is-file", ("profile", "--store", "{ws}/afile"), "exists and is not a folder"),
    Case("profile-store-unwritable", ("profile", "--store", "/proc/kdnas-store"), "cannot write in /proc"),
    Case("profile-onnx-cache-under-file", ("profile", "--onnx-cache", "{ws}/afile/x", "--store", "{ws}/store"), "--onnx-cache"),
    Case(
        "measure-onnx-cache-is-file",
        ("measure", "--arch", "1,64,2,128", "--seq", "8", "--batch", "1", "--onnx-cache", "{ws}/afile"),
        "exists and is not a folder",
    ),
    Case(
        "fit-out-under-file",
        ("fit", "--device", STORE_DEV, "--backend", "torch", "--store", "{ws}/store", "--out", "{ws}/afile/p"),
        "--out {ws}/afile/p: {ws}/afile is a file",
    ),
    Case(
        "fit-out-unwritable",
        ("fit", "--device", STORE_DEV, "--backend", "torch", "--store", "{ws}/store", "--out", "/proc/kdnas-preds"),
        "cannot write in /proc",
    ),
    Case("search-run-under-file", (*opt(SEARCH, "--run", "{ws}/afile/run"), "--budget-ms", "10"), "--run"),
    Case("search-run-unwritable", (*opt(SEARCH, "--run", "/proc/kdnas-run"), "--budget-ms", "10"), "cannot write in /proc"),
    Case("distill-out-unwritable", (*DISTILL, "--out", "/proc/kdnas-student"), "--out /proc/kdnas-student: cannot write"),
    Case("distill-out-under-file", (*DISTILL, "--out", "{ws}/afile/s"), "is a file, not a folder"),
    Case("finetune-out-unwritable", opt(FINETUNE, "--out", "/proc/kdnas-teacher"), "--out /proc/kdnas-teacher: cannot write"),
    Case("finetune-out-is-file", opt(FINETUNE, "--out", "{ws}/afile"), "exists and is not a folder"),
    Case("report-html-under-file", ("report", "{ws}/run", "--html", "{ws}/afile/r.html"), "--html"),
    Case("report-html-is-folder", ("report", "{ws}/run", "--html", "{ws}/run"), "is a folder; give a file name"),
    Case("report-md-unwritable", ("report", "{ws}/run", "--md", "/proc/kdnas.md"), "cannot write in /proc"),
    Case("report-png-is-file", ("report", "{ws}/run", "--png", "{ws}/afile"), "exists and is not a folder"),
    Case(
        "compare-html-under-file",
        ("compare", "--no-measure", "--predictors", "{ws}/preds", "--html", "{ws}/afile/c.html"),
        "is a file, not a folder",
    ),
    Case(
        "compare-png-unwritable",
        ("compare", "--no-measure", "--predictors", "{ws}/preds", "--png", "/proc/kdnas-png"),
        "cannot write in /proc",
    ),
    Case("quickstart-out-under-file", ("quickstart", "--out", "{ws}/afile/q"), "is a file, not a folder"),
    Case("quickstart-speedup-nan", ("quickstart", "--out", "{ws}/q", "--speedup", "nan"), "--speedup must be a finite number"),
    Case("predictors-root-is-file", ("predictors", "--predictors", "{ws}/afile"), "--predictors {ws}/afile is not a folder"),
    Case("predict-root-is-file", opt(PREDICT_ARCH, "--predictors", "{ws}/afile"), "is not a folder"),
    Case(
        "fit-store-is-file",
        ("fit", "--device", STORE_DEV, "--backend", "torch", "--store", "{ws}/afile"),
        "--store {ws}/afile is not a folder",
    ),
    Case(
        "compare-store-is-file",
        ("compare", "--no-measure", "--predictors", "{ws}/preds", "--store", "{ws}/afile"),
        "is not a folder",
    ),
    Case("finetune-data-dir-is-file", opt(FINETUNE, "--data-dir", "{ws}/afile"), "--data-dir {ws}/afile is not a folder"),
    Case(
        "measure-threads-huge",
        ("measure", "--arch", "1,64,2,128", "--seq", "8", "--batch", "1", "--threads", "5000"),
        "at most 1024",
    ),
    Case(
        "quickstart-profile-rows-zero",
        ("quickstart", "--out", "{ws}/q", "--profile-rows", "0"),
        "--profile-rows must be positive",
    ),
    Case(
        "search-teacher-missing",
        (*opt(drop(SEARCH, "--table"), "--teacher", "{ws}/noteacher"), "--budget-ms", "10"),
        "teacher path not found",
    ),
    Case(
        "agnostic-text-not-utf8",
        (*opt(opt(SEARCH, "--task", "agnostic"), "--table", ""), "--text", "{ws}/bad.txt", "--budget-ms", "10"),
        "cannot read text file",
        write("bad.txt", b"fine\n\xff\xfe\n"),
    ),
    Case(
        "compare-model-folder-bad-config",
        ("compare", "--no-measure", "--predictors", "{ws}/preds", "--students", "{ws}/badmodel"),
        "is not a BERT-style encoder config",
        write("badmodel/config.json", '{"hidden_size": "x"}'),
    ),
    Case(
        "distill-teacher-config-mistyped",
        opt(DISTILL, "--teacher", "{ws}/badteacher"),
        "cannot load teacher",
        write("badteacher/config.json", '{"model_type": "bert", "hidden_size": "x"}'),
    ),
    Case(
        "distill-teacher-config-not-json",
        opt(DISTILL, "--teacher", "{ws}/badteacher"),
        "cannot load teacher",
        write("badteacher/config.json", "{"),
    ),
    Case("distill-teacher-missing", DISTILL, "teacher path not found"),
    Case(
        "compare-unknown-device",
        ("compare", "--no-measure", "--predictors", "{ws}/preds", "--devices", "nowhere"),
        "no predictor for device nowhere",
    ),
    Case(
        "compare-unknown-reference",
        ("compare", "--no-measure", "--predictors", "{ws}/preds", "--reference", "nobody"),
        "reference 'nobody'",
    ),
    Case("measure-no-gpu", ("measure", "--arch", "1,64,2,128", "--seq", "8", "--batch", "1", "--backend", "torch-cuda"), "CUDA"),
    Case("predict-unknown-backend", opt(PREDICT_ARCH, "--backend", "nope"), "no predictor for"),
    # space files
    Case("space-missing", ("space", "show", "--space", "{ws}/nope.toml"), "space file not found"),
    Case("space-not-toml", SPACE_SHOW, "malformed space file", space("[arch\nlayers = ")),
    Case("space-not-utf8", SPACE_SHOW, "malformed space file", write("bad.toml", b"[arch]\nlayers = [1]\n# \xff\xfe\n")),
    Case("space-no-shapes-verbatim", SPACE_SHOW, "missing [shapes] table", space(ARCH)),
    Case("space-no-arch-verbatim", SPACE_SHOW, "missing [arch] table", space(SHAPES)),
    Case(
        "space-missing-key", SPACE_SHOW, "missing 'heads'", space("[arch]\nlayers = [1]\nhidden = [64]\nffn = [128]\n" + SHAPES)
    ),
    Case(
        "space-huge-range-no-hang",
        SPACE_SHOW,
        "100,000,000 values",
        space("[arch]\nlayers = {min = 1, max = 100000000}\nhidden = [64]\nheads = [2]\nffn = [128]\n" + SHAPES),
    ),
    Case(
        "space-too-many-archs",
        SPACE_SHOW,
        "arch grid points",
        space(
            "[arch]\nlayers = {min = 1, max = 500}\nhidden = {min = 64, max = 6400, step = 64}\n"
            "heads = {min = 1, max = 64}\nffn = {min = 64, max = 6400, step = 64}\n" + SHAPES
        ),
    ),
    Case(
        "space-strings-in-list",
        SPACE_SHOW,
        "must be a non-empty list of integers",
        space(ARCH.replace("[64]", '["64"]') + SHAPES),
    ),
    Case(
        "space-float-range",
        SPACE_SHOW,
        "range needs integer min, max",
        space(ARCH.replace("layers = [1]", "layers = {min = 1.5, max = 4}") + SHAPES),
    ),
    Case(
        "space-empty-range",
        SPACE_SHOW,
        "range is empty",
        space(ARCH.replace("layers = [1]", "layers = {min = 4, max = 1}") + SHAPES),
    ),
    Case("space-value-too-large", SPACE_SHOW, "too large", space(ARCH.replace("[128]", f"[{2**62}]") + SHAPES)),
    Case("space-negative", SPACE_SHOW, "must be positive", space(ARCH.replace("[128]", "[-128]") + SHAPES)),
    Case("space-max-tokens-text", SPACE_SHOW, "must be integers", space(ARCH + SHAPES + 'max_tokens = "many"\n')),
    Case("space-no-valid-arch", SPACE_SHOW, "no valid arch", space(ARCH.replace("heads = [2]", "heads = [3]") + SHAPES)),
    Case("space-seq-past-positions", SPACE_SHOW, "exceeds max_position", space(ARCH + "[shapes]\nseq = [1024]\nbatch = [1]\n")),
    Case("space-no-shape", SPACE_SHOW, "no shape with batch*seq", space(ARCH + SHAPES + "max_tokens = 4\n")),
    Case(
        "profile-space-verbatim",
        ("profile", "--space", "{ws}/bad.toml", "--store", "{ws}/store"),
        "missing [shapes] table",
        space(ARCH),
    ),
    # profile stores
    Case(
        "devices-stray-parquet-name",
        ("devices", "--store", "{ws}/store"),
        "data-old.parquet is not a kdnas-bench profile file name",
        _stray_parquet,
    ),
    Case(
        "devices-no-dataset-json",
        ("devices", "--store", "{ws}/store"),
        "holds Parquet files but no dataset.json",
        _no_dataset_json,
    ),
    Case(
        "devices-foreign-device",
        ("devices", "--store", "{ws}/store"),
        "names dataset other-device/torch-t1 but lies in",
        edit_json(f"{DS}/dataset.json", lambda d: d.update(device_id="other-device")),
    ),
    Case(
        "devices-dataset-json-not-json",
        ("devices", "--store", "{ws}/store"),
        "corrupt dataset metadata",
        write(f"{DS}/dataset.json", "{oops"),
    ),
    Case(
        "devices-dataset-json-not-utf8",
        ("devices", "--store", "{ws}/store"),
        "corrupt dataset metadata",
        write(f"{DS}/dataset.json", b'{"a": "\xff"}'),
    ),
    Case(
        "devices-dataset-json-threads-text",
        ("devices", "--store", "{ws}/store"),
        "field 'threads' must be a",
        edit_json(f"{DS}/dataset.json", lambda d: d.update(threads="1")),
    ),
    Case(
        "devices-dataset-json-list", ("devices", "--store", "{ws}/store"), "not a JSON object", write(f"{DS}/dataset.json", "[1]")
    ),
    Case(
        "devices-dataset-schema-version",
        ("devices", "--store", "{ws}/store"),
        "schema version 99",
        edit_json(f"{DS}/dataset.json", lambda d: d.update(schema_version=99)),
    ),
    Case(
        "devices-corrupt-parquet",
        ("devices", "--store", "{ws}/store"),
        "corrupt profile file",
        write(f"{DS}/part-1-1.parquet", b"PAR1 not really"),
    ),
    Case("devices-foreign-parquet", ("devices", "--store", "{ws}/store"), "is not a kdnas-bench profile file", _foreign_parquet),
    Case("devices-store-is-file", ("devices", "--store", "{ws}/afile"), "is not a folder"),
    Case(
        "fit-stray-parquet-name",
        ("fit", "--device", STORE_DEV, "--backend", "torch", "--store", "{ws}/store", "--out", "{ws}/newpreds"),
        "is not a kdnas-bench profile file name",
        _stray_parquet,
    ),
    Case(
        "fit-foreign-device",
        ("fit", "--device", STORE_DEV, "--backend", "torch", "--store", "{ws}/store", "--out", "{ws}/newpreds"),
        "names dataset",
        edit_json(f"{DS}/dataset.json", lambda d: d.update(device_id="other-device")),
    ),
    Case(
        "profile-stray-parquet-name",
        ("profile", "--store", "{ws}/store", "--space", "{ws}/tiny.toml", "--samples", "1", *FAST),
        "data-x.parquet is not a kdnas-bench profile file name",
        _here_stray,
    ),
    # fit options and datasets
    Case(
        "fit-max-load-nan",
        ("fit", "--device", STORE_DEV, "--backend", "torch", "--store", "{ws}/store", "--max-load", "nan"),
        "--max-load must be a finite number",
    ),
    Case(
        "fit-max-load-negative",
        ("fit", "--device", STORE_DEV, "--backend", "torch", "--store", "{ws}/store", "--max-load", "-1"),
        "--max-load must be",
    ),
    Case(
        "fit-samples-zero",
        ("fit", "--device", STORE_DEV, "--backend", "torch", "--store", "{ws}/store", "--samples", "0"),
        "--samples must be positive",
    ),
    Case("fit-threads-int64", ("fit", "--device", STORE_DEV, "--backend", "torch", "--threads", str(2**63)), "64-bit"),
    Case(
        "fit-from-backend-alone",
        (
            "fit",
            "--device",
            STORE_DEV,
            "--backend",
            "torch",
            "--store",
            "{ws}/store",
            "--from-backend",
            "torch",
            "--out",
            "{ws}/newpreds",
        ),
        "need --from-device",
    ),
    Case(
        "fit-all-rows-and-max-load",
        (
            "fit",
            "--device",
            STORE_DEV,
            "--backend",
            "torch",
            "--store",
            "{ws}/store",
            "--all-rows",
            "--max-load",
            "2",
            "--out",
            "{ws}/newpreds",
        ),
        "exclude each other",
    ),
    Case(
        "fit-unknown-dataset",
        ("fit", "--device", "nowhere", "--backend", "torch", "--store", "{ws}/store", "--out", "{ws}/newpreds"),
        "no profile dataset",
    ),
    Case(
        "fit-transfer-method-unknown",
        ("fit", "--device", STORE_DEV, "--backend", "torch", "--transfer-method", "magic"),
        "'magic' is not one of",
    ),
    # predict: options and configs files
    Case("predict-arch-and-configs", (*PREDICT_ARCH, "--configs", "{ws}/configs.json"), "give either"),
    Case("predict-arch-no-seq", (*PREDICT, "--arch", "2,128,2,512"), "--arch needs --seq and --batch"),
    Case("predict-seq-zero", (*PREDICT, "--arch", "2,128,2,512", "--seq", "0", "--batch", "1"), "--seq must be positive"),
    Case("predict-threads-zero", opt(PREDICT_ARCH, "--threads", "0"), "--threads must be positive"),
    Case("configs-missing", (*PREDICT, "--configs", "{ws}/nope.json"), "configs file not found"),
    Case("configs-folder", (*PREDICT, "--configs", "{ws}/preds"), "is a folder"),
    Case("configs-not-json", (*PREDICT, "--configs", "{ws}/configs.json"), "is not valid JSON", write("configs.json", "[{")),
    Case(
        "configs-not-utf8",
        (*PREDICT, "--configs", "{ws}/configs.json"),
        "not UTF-8 text",
        write("configs.json", b'[{"layers": "\xff"}]'),
    ),
    Case("configs-object", (*PREDICT, "--configs", "{ws}/configs.json"), "must hold a JSON list", configs(CONFIG)),
    Case("configs-item-not-object", (*PREDICT, "--configs", "{ws}/configs.json"), "configs[0]: expected an object", configs([5])),
    Case(
        "configs-missing-key",
        (*PREDICT, "--configs", "{ws}/configs.json"),
        "configs[1]: missing key(s) heads",
        configs([CONFIG, {k: v for k, v in CONFIG.items() if k != "heads"}]),
    ),
    Case(
        "configs-int64-max",
        (*PREDICT, "--configs", "{ws}/configs.json"),
        "hidden must be a positive integer (at most",
        configs([CONFIG, {**CONFIG, "hidden": 2**63 - 1}]),
    ),
    Case("configs-past-int64", (*PREDICT, "--configs", "{ws}/configs.json"), "too large", configs([{**CONFIG, "ffn": 2**70}])),
    Case(
        "configs-text-value",
        (*PREDICT, "--configs", "{ws}/configs.json"),
        "hidden must be an integer",
        configs([{**CONFIG, "hidden": "128"}]),
    ),
    Case(
        "configs-fraction",
        (*PREDICT, "--configs", "{ws}/configs.json"),
        "seq must be an integer",
        configs([{**CONFIG, "seq": 16.5}]),
    ),
    Case(
        "configs-bool",
        (*PREDICT, "--configs", "{ws}/configs.json"),
        "batch must be an integer",
        configs([{**CONFIG, "batch": True}]),
    ),
    Case(
        "configs-nan",
        (*PREDICT, "--configs", "{ws}/configs.json"),
        "layers must be an integer",
        write("configs.json", '[{"layers": NaN, "hidden": 128, "heads": 2, "ffn": 512, "seq": 16, "batch": 1}]'),
    ),
    Case(
        "configs-heads-not-divide",
        (*PREDICT, "--configs", "{ws}/configs.json"),
        "must divide hidden",
        configs([{**CONFIG, "heads": 3}]),
    ),
    Case(
        "configs-zero",
        (*PREDICT, "--configs", "{ws}/configs.json"),
        "layers must be a positive integer",
        configs([{**CONFIG, "layers": 0}]),
    ),
    Case(
        "configs-too-many",
        (*PREDICT, "--configs", "{ws}/configs.json"),
        "500,000",
        write("configs.json", "[" + ",".join(["1"] * 500_001) + "]"),
    ),
    Case("configs-too-big", (*PREDICT, "--configs", "{ws}/configs.json"), "more than the 48 MiB", _huge_file),
    Case(
        "configs-too-deep",
        (*PREDICT, "--configs", "{ws}/configs.json"),
        "configs file",
        write("configs.json", "[" * 100_000 + "]" * 100_000),
    ),
    # predictor folders
    Case(
        "predict-unknown-device",
        ("predict", "--device", "nowhere", "--predictors", "{ws}/preds", "--arch", "1,64,2,128", "--seq", "8", "--batch", "1"),
        "unknown device id 'nowhere'",
    ),
    Case(
        "predict-several",
        ("predict", "--device", DEV, "--predictors", "{ws}/preds", "--arch", "1,64,2,128", "--seq", "8", "--batch", "1"),
        "several predictors",
    ),
    Case("model-truncated-was-segfault", PREDICT_ARCH, "corrupt predictor model", edit_model(_cut(95)), subprocess=True),
    Case(
        "model-cut-in-parameters",
        PREDICT_ARCH,
        "corrupt predictor model",
        edit_model(lambda t: t[: t.index("[boosting") + 200]),
        subprocess=True,
    ),
    Case("model-cut-mid-tree", PREDICT_ARCH, "corrupt predictor model", edit_model(_cut(50)), subprocess=True),
    Case("model-cut-early", PREDICT_ARCH, "corrupt predictor model", edit_model(_cut(1))),
    Case("model-empty", PREDICT_ARCH, "the file is empty", edit_model(lambda t: "")),
    Case("model-not-lightgbm", PREDICT_ARCH, "not a LightGBM text model", edit_model(lambda t: "hello\n")),
    Case(
        "model-tree-sizes",
        PREDICT_ARCH,
        "tree_sizes does not match",
        edit_model(lambda t: t.replace("tree_sizes=7", "tree_sizes=9", 1)),
    ),
    Case(
        "model-child-out-of-tree",
        PREDICT_ARCH,
        "points outside the tree",
        edit_model(lambda t: t.replace("left_child=", "left_child=99 ", 1).replace("left_child=99 4 ", "left_child=99 ", 1)),
    ),
    Case("model-no-num-cat", PREDICT_ARCH, "num_cat must be 0", edit_model(lambda t: t.replace("num_cat=0\n", "", 1))),
    Case("model-checksum", PREDICT_ARCH, "checksum does not match", write(f"{PRED}/model.txt", "tree\n")),
    Case("model-not-utf8", PREDICT_ARCH, "cannot read predictor model", write(f"{PRED}/model.txt", b"tree\n\xff\n")),
    Case("model-missing", PREDICT_ARCH, "cannot read predictor model", lambda ws: (ws / PRED / "model.txt").unlink()),
    Case(
        "meta-coef-short",
        PREDICT_ARCH,
        "field 'model.base_coef' must list 9 numbers, got 8 values",
        edit_json(f"{PRED}/meta.json", lambda d: d["model"]["base_coef"].pop()),
    ),
    Case(
        "meta-coef-text",
        PREDICT_ARCH,
        "model.base_coef' holds a non-number",
        edit_json(f"{PRED}/meta.json", lambda d: d["model"]["base_coef"].__setitem__(0, "x")),
    ),
    Case(
        "meta-range-text",
        PREDICT_ARCH,
        "field 'model.ranges.layers' must be [low, high]",
        meta_field("model.ranges.layers", "12"),
    ),
    Case("meta-range-reversed", PREDICT_ARCH, "field 'model.ranges.seq'", meta_field("model.ranges.seq", [256, 16])),
    Case(
        "meta-range-missing",
        PREDICT_ARCH,
        "field 'model.ranges.tokens'",
        edit_json(f"{PRED}/meta.json", lambda d: d["model"]["ranges"].pop("tokens")),
    ),
    Case("meta-halfwidth-text", PREDICT_ARCH, "model.log_halfwidth", meta_field("model.log_halfwidth", "wide")),
    Case("meta-params-list", PREDICT_ARCH, "model.params' must be an object", meta_field("model.params", [])),
    Case("meta-not-json", PREDICT_ARCH, "corrupt predictor metadata", write(f"{PRED}/meta.json", "{")),
    Case("meta-not-utf8", PREDICT_ARCH, "corrupt predictor metadata", write(f"{PRED}/meta.json", b'{"kind": "\xff"}')),
    Case("meta-list", PREDICT_ARCH, "is not a kdnas-bench latency predictor", write(f"{PRED}/meta.json", "[]")),
    Case("meta-kind", PREDICT_ARCH, "is not a kdnas-bench latency predictor", meta_field("kind", "other")),
    Case("meta-format", PREDICT_ARCH, "predictor format 99", meta_field("format_version", 99)),
    Case("meta-feature-schema", PREDICT_ARCH, "feature schema 99", meta_field("feature_schema", 99)),
    Case("meta-no-files", PREDICT_ARCH, "no model files listed", meta_field("files", None)),
    Case(
        "compare-corrupt-model",
        ("compare", "--no-measure", "--predictors", "{ws}/preds", "--students", "bert-mini"),
        "corrupt predictor model",
        edit_model(_cut(95)),
        subprocess=True,
    ),
    Case(
        "compare-coef-short",
        ("compare", "--no-measure", "--predictors", "{ws}/preds", "--students", "bert-mini"),
        "must list 9 numbers",
        edit_json(f"{PRED}/meta.json", lambda d: d["model"]["base_coef"].pop()),
    ),
    Case(
        "search-corrupt-model", (*SEARCH, "--budget-ms", "10"), "corrupt predictor model", edit_model(_cut(30)), subprocess=True
    ),
    # compare options
    Case("compare-seq-zero", ("compare", "--no-measure", "--predictors", "{ws}/preds", "--seq", "0"), "--seq must be positive"),
    Case("compare-unknown-student", ("compare", "--no-measure", "--predictors", "{ws}/preds", "--students", "gpt-17"), "gpt-17"),
    Case(
        "compare-bad-arch",
        ("compare", "--no-measure", "--predictors", "{ws}/preds", "--students", "4,310,12,1200"),
        "must divide",
    ),
    Case(
        "compare-run-bad-json",
        ("compare", "--no-measure", "--predictors", "{ws}/preds", "--students", "{ws}/run"),
        "{ws}/run",
        write("run/result.json", "{oops"),
    ),
    # search options and files
    Case("search-budget-inf", (*SEARCH, "--budget-ms", "inf"), "must be positive finite numbers"),
    Case("search-budget-nan", (*SEARCH, "--budget-ms", "10,nan"), "must be positive finite numbers"),
    Case("search-budget-negative", (*SEARCH, "--budget-ms", "-5"), "must be positive finite numbers"),
    Case("search-budget-text", (*SEARCH, "--budget-ms", "fast"), "--budget-ms must be numbers"),
    Case("search-budget-repeat", (*SEARCH, "--budget-ms", "5,5"), "repeat"),
    Case("search-budget-too-low", (*SEARCH, "--budget-ms", "0.001"), "below the fastest arch"),
    Case("search-reward-w-nan", (*SEARCH, "--budget-ms", "10", "--reward-w", "nan"), "--reward-w must be a finite number"),
    Case("search-reward-w-positive", (*SEARCH, "--budget-ms", "10", "--reward-w", "0.5"), "must be <= 0"),
    Case("search-proxy-epochs-nan", (*SEARCH, "--budget-ms", "10", "--proxy-epochs", "nan"), "--proxy-epochs must be a finite"),
    Case("search-final-epochs-inf", (*SEARCH, "--budget-ms", "10", "--final-epochs", "inf"), "--final-epochs must be a finite"),
    Case("search-episodes-zero", (*SEARCH, "--budget-ms", "10", "--episodes", "0"), "--episodes must be positive"),
    Case("search-seq-int64", (*SEARCH, "--budget-ms", "10", "--seq", str(2**64)), "64-bit"),
    Case("search-unknown-task", (*opt(SEARCH, "--task", "nosuchtask"), "--budget-ms", "10"), "nosuchtask"),
    Case("search-text-with-glue", (*SEARCH, "--budget-ms", "10", "--text", "{ws}/afile"), "--text is for --task agnostic"),
    Case(
        "search-space-huge",
        (*opt(SEARCH, "--space", "{ws}/bad.toml"), "--budget-ms", "10"),
        "100,000,000 values",
        space("[arch]\nlayers = {min = 1, max = 100000000}\nhidden = [64]\nheads = [2]\nffn = [128]\n" + SHAPES),
    ),
    Case("table-missing", (*opt(SEARCH, "--table", "{ws}/nope.json"), "--budget-ms", "10"), "table not found"),
    Case("table-not-utf8", (*SEARCH, "--budget-ms", "10"), "cannot read table", write("table.json", b'[{"layers": "\xff"}]')),
    Case(
        "table-metric-nan",
        (*SEARCH, "--budget-ms", "10"),
        "metric must be a finite number",
        write("table.json", '[{"layers": 1, "hidden": 128, "heads": 2, "ffn": 256, "metric": NaN}]'),
    ),
    Case(
        "table-arch-text",
        (*SEARCH, "--budget-ms", "10"),
        "must be integers",
        write("table.json", '[{"layers": "one", "hidden": 128, "heads": 2, "ffn": 256, "metric": 0.8}]'),
    ),
    Case(
        "table-no-metric",
        (*SEARCH, "--budget-ms", "10"),
        "lacks columns metric",
        write("table.json", '[{"layers": 1, "hidden": 128, "heads": 2, "ffn": 256}]'),
    ),
    Case(
        "search-log-wrong-type",
        (*SEARCH, "--budget-ms", "5,10"),
        "evaluations.jsonl:2: field 'latency_ms' must be a positive finite number",
        record_field("latency_ms", "fast"),
    ),
    Case("search-log-arch-bad", (*SEARCH, "--budget-ms", "5,10"), "field 'arch'", record_field("arch", {"layers": 1})),
    Case(
        "search-log-not-utf8",
        (*SEARCH, "--budget-ms", "5,10"),
        "evaluations.jsonl:2: not UTF-8 text",
        both(_same_run, edit_log(_nonutf8_log)),
    ),
    Case("search-log-rewards-list", (*SEARCH, "--budget-ms", "5,10"), "field 'rewards'", record_field("rewards", [1])),
    Case("search-run-json-not-json", (*SEARCH, "--budget-ms", "5,10"), "cannot read run metadata", write("run/run.json", "{")),
    Case("search-run-different", (*SEARCH, "--budget-ms", "7"), "holds a different search", _same_run),
    # report: run folders
    Case("report-not-a-run", ("report", "{ws}/preds"), "is not a search run"),
    Case("report-run-json-not-json", ("report", "{ws}/run"), "cannot read run metadata", write("run/run.json", "{")),
    Case("report-run-json-list", ("report", "{ws}/run"), "must hold a JSON object", write("run/run.json", "[]")),
    Case(
        "report-budgets-text",
        ("report", "{ws}/run"),
        "field 'config.reward.budgets_ms'",
        edit_json("run/run.json", lambda d: _set(d, "config.reward.budgets_ms", ["five"])),
    ),
    Case("report-log-wrong-type", ("report", "{ws}/run"), "field 'metric' must be a number", record_field("metric", "high")),
    Case("report-log-episode-negative", ("report", "{ws}/run"), "field 'episode'", record_field("episode", -1)),
    Case("report-log-not-utf8", ("report", "{ws}/run"), "not UTF-8 text", edit_log(_nonutf8_log)),
    Case(
        "report-log-only-torn",
        ("report", "{ws}/run"),
        "has no evaluations yet (1 unreadable line(s) skipped)",
        edit_log(_torn_only),
    ),
    Case("report-result-not-json", ("report", "{ws}/run"), "cannot read run result", write("run/result.json", "{")),
    Case(
        "report-result-winner-arch",
        ("report", "{ws}/run"),
        "winners[0].arch",
        edit_json("run/result.json", lambda d: _set(d, "winners", [{"arch": {"layers": 1}}])),
    ),
    Case(
        "report-result-winner-budget",
        ("report", "{ws}/run"),
        "winners[0]: field 'budget_ms'",
        edit_json("run/result.json", lambda d: d["winners"][0].update(budget_ms="x")),
    ),
    # distill and teacher finetune (all fail before any model is loaded or trained)
    Case("distill-epochs-nan", (*DISTILL, "--epochs", "nan"), "--epochs must be a finite number"),
    Case("distill-lr-inf", (*DISTILL, "--lr", "inf"), "--lr must be a finite number"),
    Case("distill-temperature-nan", (*DISTILL, "--temperature", "nan"), "--temperature must be a finite number"),
    Case("distill-batch-size-zero", (*DISTILL, "--batch-size", "0"), "--batch-size must be positive"),
    Case("distill-bad-arch", opt(DISTILL, "--arch", "1,64,3,128"), "must divide"),
    Case("distill-bad-losses", (*DISTILL, "--losses", "telepathy"), "telepathy"),
    Case("distill-unknown-task", opt(DISTILL, "--task", "nosuchtask"), "nosuchtask"),
    Case("finetune-epochs-nan", (*FINETUNE, "--epochs", "nan"), "--epochs must be a finite number"),
    Case("finetune-lr-nan", (*FINETUNE, "--lr", "nan"), "--lr must be a finite number"),
    Case("finetune-max-examples-zero", (*FINETUNE, "--max-examples", "0"), "--max-examples must be positive"),
    Case("finetune-seed-int64", (*FINETUNE, "--seed", str(2**63)), "64-bit"),
    Case("finetune-data-dir-missing", opt(FINETUNE, "--data-dir", "{ws}/noglue"), "--data-dir not found"),
    Case(
        "tsv-not-utf8",
        FINETUNE,
        "train.tsv:3: not utf-8 text",
        write("glue/SST-2/train.tsv", _tsv(GOOD_TSV).replace(b"number 1\t", b"numb\xe9r 1\t")),
    ),
    Case(
        "tsv-bad-label", FINETUNE, "label 'maybe' is not one of", write("glue/SST-2/train.tsv", _tsv([*GOOD_TSV, "odd\tmaybe"]))
    ),
    Case("tsv-missing-column", FINETUNE, "missing column(s)", write("glue/SST-2/train.tsv", b"text\tlabel\nhello\t1\n")),
]


# -- the workspace -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kdnas_bench.cli import main

    ws = tmp_path_factory.mktemp("pristine")
    shutil.copytree(ROOT / "predictors", ws / "preds")
    write_store(ws / "store", STORE_DEV, real_rows().head(40))
    shutil.copy(ROOT / "search" / "tables" / "sst2-minilm-students.json", ws / "table.json")
    shutil.copy(ROOT / "search" / "spaces" / "minilm-students.toml", ws / "students.toml")
    shutil.copy(ROOT / "tests" / "data" / "tiny.toml", ws / "tiny.toml")
    (ws / "afile").write_text("a plain file\n")
    (ws / "configs.json").write_text(json.dumps([CONFIG]))
    for split in ("train", "dev"):
        (ws / "glue" / "SST-2").mkdir(parents=True, exist_ok=True)
        (ws / "glue" / "SST-2" / f"{split}.tsv").write_bytes(_tsv(GOOD_TSV))
    argv = [a.replace("{ws}", str(ws)) for a in (*SEARCH, "--budget-ms", "5,10", "--json")]
    try:
        main(argv)
    except SystemExit as exc:
        assert not exc.code
    return ws


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, pristine: Path, tmp_path: Path, run_cli) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(pristine, ws)
    if case.setup is not None:
        case.setup(ws)
    before = snapshot(ws)
    argv = [a.replace("{ws}", str(ws)) for a in case.argv]
    if case.subprocess:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(cli_subprocess_cmd(*argv), capture_output=True, text=True, env=env, timeout=120)
        code, err = proc.returncode, proc.stderr
        assert code > 0, f"killed by signal {-code}" if code < 0 else f"exit {code}"
    else:
        code, _, err = run_cli(*argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == case.code, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert len(lines) == 1, err
    assert case.fragment.replace("{ws}", str(ws)) in lines[0], err
    assert snapshot(ws) == before, "a stored file changed or a new file appeared"


def test_the_table_covers_every_verb_and_file_kind() -> None:
    from kdnas_bench.cli import cli

    verbs = {c.argv[0] if c.argv[0] not in ("space", "teacher") else " ".join(c.argv[:2]) for c in CASES}
    commands = {name for name, cmd in cli.commands.items() if not hasattr(cmd, "commands")}
    commands |= {f"{g} {n}" for g, grp in cli.commands.items() for n in getattr(grp, "commands", {})}
    assert commands - {"predictors"} <= verbs, commands - verbs  # `predictors` lists broken ones, see below
    kinds = ("space", "devices", "configs", "model", "meta", "table", "log", "run-json", "result", "tsv")
    assert all(any(k in c.id for c in CASES) for k in kinds)
    assert len(CASES) >= 100


# -- a torn run log is healed, not failed on ------------------------------------------------------------
def test_torn_last_line_is_set_aside_and_redone_once(pristine: Path, tmp_path: Path, run_cli) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(pristine, ws)
    _same_run(ws)
    log = ws / "run" / "evaluations.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    fragment = lines[-1][: len(lines[-1]) // 2]  # a crash mid-write: the last record cut in half
    log.write_bytes(b"".join(lines[:-1]) + fragment)
    (ws / "run" / "result.json").unlink()
    argv = [a.replace("{ws}", str(ws)) for a in (*SEARCH, "--budget-ms", "5,10")]

    code, out, err = run_cli("report", str(ws / "run"), "--json")  # report only reads: counts, moves nothing
    assert code == 0, err
    assert json.loads(out)["skipped_records"] == 1 and json.loads(out)["evaluations"] == len(lines) - 1
    assert log.read_bytes().endswith(fragment)

    code, out, err = run_cli(*argv, "--json")
    assert code == 0, err
    assert "set aside a torn last line" in err and "Traceback" not in err
    assert json.loads(out)["evaluated_now"] == 1  # that one evaluation, redone once
    healed = log.read_bytes()
    assert healed.startswith(b"".join(lines[:-1])) and healed.endswith(b"\n")
    assert [json.loads(line)["arch"] for line in healed.splitlines()] == [json.loads(line)["arch"] for line in lines]
    assert (ws / "run" / "evaluations.jsonl.torn").read_bytes() == fragment + b"\n"

    code, out, err = run_cli(*argv, "--json")  # healed: a second rerun redoes nothing and notes nothing
    assert code == 0 and json.loads(out)["evaluated_now"] == 0 and "set aside" not in err
    code, out, _ = run_cli("report", str(ws / "run"), "--json")
    assert json.loads(out)["skipped_records"] == 0


def test_report_says_how_many_records_it_skipped(pristine: Path, tmp_path: Path, run_cli) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(pristine, ws)
    log = ws / "run" / "evaluations.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0][:30] + lines[1], *lines[2:]]) + "\n")  # an old torn line with a record on it
    code, out, err = run_cli("report", str(ws / "run"))
    assert code == 0, err
    assert "Skipped 1 record(s)" in out
    assert len(lines) - 2 == json.loads(run_cli("report", str(ws / "run"), "--json")[1])["evaluations"]


FUZZ = """
import random, sys
import lightgbm as lgb
from kdnas_bench.predictors.checks import ModelCheckError, check_model_text
text = open(sys.argv[1]).read()
rng = random.Random(int(sys.argv[2]))
variants = [text[:n] for n in range(0, len(text), 997)]
for _ in range(300):
    j = rng.randrange(len(text)); k = j + rng.choice([1, 2, 40, 800]); op = rng.random()
    variants.append(text[:j] + text[k:] if op < 0.4 else text[:j] + rng.choice("0123456789 -=\\nx.[]:") + text[j + 1:]
                    if op < 0.7 else text[:j] + text[j:k] + text[j:])
refused = 0
for v in variants:
    try:
        check_model_text(v, "m", n_features=14)
    except ModelCheckError:
        refused += 1
        continue
    try:
        lgb.Booster(model_str=v)  # passed the checks: LightGBM must load it or raise, never crash
    except Exception:
        pass
print(len(variants), refused)
"""


def test_no_truncation_or_edit_of_a_model_file_crashes_the_process() -> None:
    """Truncations and random edits of a committed model.txt: each is refused by the checks or handed to
    LightGBM, which must then load it or raise; the process (a subprocess here) must never die of a signal."""
    model = ROOT / "predictors" / DEV / "torch-t1" / "model.txt"
    proc = subprocess.run(
        [sys.executable, "-c", FUZZ, str(model), "0"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-500:]}"
    total, refused = map(int, proc.stdout.splitlines()[-1].split())
    assert total > 300 and refused > total // 2
