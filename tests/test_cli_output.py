"""Terminal output at 80 and at 200 columns: the key columns (device id, backend) of ``devices``, ``predictors``,
``predict`` and ``compare`` are printed whole, never cut or wrapped, and no line is wider than the terminal; at 200
columns the low-priority columns come back. Run as a user would (a subprocess with ``COLUMNS``), on the committed
profiles and predictors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kdnas_bench.predictors.registry import list_predictors
from kdnas_bench.profiling.store import ProfileStore

ROOT = Path(__file__).resolve().parents[1]
PREDICTORS = [(p["device_id"], p["backend"], p["threads"]) for p in list_predictors(ROOT / "predictors")]
PROFILES = [(d.key.device_id, d.key.backend, d.key.threads) for d in ProfileStore(ROOT / "profiles").datasets()]


def run(width: int, *args: str) -> str:
    env = {**os.environ, "COLUMNS": str(width), "HF_HUB_OFFLINE": "1", "TERM": "dumb"}
    env.pop("LINES", None)
    proc = subprocess.run([sys.executable, "-m", "kdnas_bench", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    too_wide = [ln for ln in lines if len(ln.rstrip()) > width]
    assert not too_wide, f"lines wider than {width}: {too_wide}"
    return proc.stdout


def rows_with(out: str, *tokens: str) -> list[str]:
    """Lines holding every token as a whole word (a cut id like ``amd-…`` or ``onnx…`` never matches)."""
    return [ln for ln in out.splitlines()
            if all(re.search(rf"(?<![\w-]){re.escape(t)}(?![\w-])", ln) for t in tokens)]


@pytest.mark.parametrize("width", [80, 200])
def test_devices_and_predictors_print_whole_ids(width: int) -> None:
    assert PREDICTORS and PROFILES
    for verb, keys in (("devices", PROFILES), ("predictors", PREDICTORS)):
        out = run(width, verb)
        for device, backend, threads in keys:
            assert rows_with(out, device, backend, str(threads)), f"{verb} at {width}: {device} {backend} {threads}"
        if width == 200:
            assert "not shown at" not in out  # everything fits
    wide_predictors = run(200, "predictors")
    assert "interval cover" in wide_predictors and "memory ±10 %" in wide_predictors
    narrow = run(80, "predictors")
    assert "not shown at 80 columns:" in narrow and "±10 %" in narrow  # dropped by priority, the main metric kept


@pytest.mark.parametrize("width", [80, 200])
def test_predict_prints_whole_ids(width: int) -> None:
    device = "intel-xeon-processor-2c-cfff2f"
    out = run(width, "predict", "--device", device, "--backend", "onnxruntime", "--arch", "4,312,12,1200",
              "--seq", "128", "--batch", "1")
    assert rows_with(out, device, "onnxruntime")
    assert rows_with(out, "4,312,12,1200", "128")


@pytest.mark.parametrize("width", [80, 200])
def test_compare_leads_with_one_pivot(width: int) -> None:
    out = run(width, "compare", "--students", "bert-base,minilm-l6,tinybert-4l,bert-tiny")
    lines = out.splitlines()
    assert lines[0].startswith("latency across devices")
    devices = sorted({d for d, _, _ in PREDICTORS})
    for device in devices:
        assert rows_with(out, device), f"{device} cut at {width}"
    for _device, backend, threads in PREDICTORS:  # each backend row under its device, whole
        assert rows_with(out, backend, f"{threads} thread{'s' if threads > 1 else ''}")
    for name in ("bert-base", "minilm-l6", "tinybert-4l", "bert-tiny"):
        assert rows_with(out, name), f"student {name} broken at {width}"
    tables = out.count("latency across devices")
    assert (tables > 1) if width == 80 else (tables == 1)  # narrow: the students continue below, never squeezed
    assert "--detail" in out and "--measure" in out  # the detail and the measuring are one flag away
    assert "speedup vs" not in out  # the per-predictor detail only with --detail
    detail = run(width, "compare", "--students", "minilm-l6,tinybert-4l", "--detail")
    for device, backend, threads in PREDICTORS:
        assert rows_with(detail, f"{device} / {backend} / {threads}t")
    assert rows_with(detail, "tinybert-4l")
