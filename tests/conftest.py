from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from .helpers import DEV, GLUE, ROOT, TINY_SPACE, real_rows, save_tiny, write_store

FAST_TIMING = ["--warmup", "1", "--min-calls", "3", "--min-seconds", "0.01", "--max-seconds", "0.5"]


@pytest.fixture
def tiny_space_path() -> Path:
    return TINY_SPACE


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):
    """Run the real CLI entry point in-process; returns (exit_code, stdout, stderr)."""
    from kdnas_bench.cli import main

    def _run(*args: str) -> tuple[int, str, str]:
        code = 0
        try:
            main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def cli_subprocess_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "kdnas_bench", *args]


# -- shared data: real GLUE rows, a tiny teacher, a predictor fitted on real profile rows ---------------------
@pytest.fixture(scope="session")
def tiny_glue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first rows of real GLUE files: 300 train / 120 dev (CoLA without its header, as in GLUE)."""
    root = tmp_path_factory.mktemp("glue")
    for folder, header in (("SST-2", True), ("STS-B", True), ("CoLA", False), ("MRPC", True)):
        (root / folder).mkdir()
        for name, rows in (("train.tsv", 300), ("dev.tsv", 120)):
            lines = (GLUE / folder / name).read_text(encoding="utf-8").splitlines(keepends=True)
            (root / folder / name).write_text("".join(lines[: rows + int(header)]), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random 2-label BERT teacher (2L/64H) with MiniLM's tokenizer."""
    return save_tiny(tmp_path_factory.mktemp("teacher2"), 2)


@pytest.fixture(scope="module")
def preds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A predictors root holding the torch-t1 predictor of device DEV, fitted on real profile rows."""
    from kdnas_bench.predictors.registry import fit_and_save

    root = tmp_path_factory.mktemp("e2e")
    write_store(root / "profiles", DEV, real_rows())
    fit_and_save(DEV, "torch", 1, store=root / "profiles", out=root / "predictors")
    return root / "predictors"


# -- running the suite under load ------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--busy-cores", type=int, default=0, metavar="N",
                     help="keep N busy-looping processes running for the whole session (CI under load: "
                          "`nox -s tests_under_load` passes 1, so the other core of a 2-core machine is busy)")


@pytest.fixture(scope="session", autouse=True)
def _busy_cores(request: pytest.FixtureRequest):
    """With --busy-cores N, N processes spin for the whole session; timing tests must still pass."""
    import subprocess

    n = int(request.config.getoption("--busy-cores"))
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(max(n, 0))]
    try:
        yield procs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)


__all__ = ["FAST_TIMING", "GLUE", "ROOT", "TINY_SPACE", "cli_subprocess_cmd"]
