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
