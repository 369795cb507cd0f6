from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
TINY_SPACE = ROOT / "tests" / "data" / "tiny.toml"
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
