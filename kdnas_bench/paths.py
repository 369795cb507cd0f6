"""Where things live: the checkout (profiles/, predictors/, search/) or a per-user data dir."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path | None:
    """The kdnas-bench checkout this code runs from, or the one the working directory is in."""
    candidates = [Path(__file__).resolve().parents[1], *Path.cwd().resolve().parents, Path.cwd().resolve()]
    for root in candidates:
        if (root / "search" / "spaces").is_dir() and (root / "kdnas_bench").is_dir():
            return root
    return None


def user_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kdnas-bench"


def _default_dir(name: str) -> Path:
    root = project_root()
    return (root / name) if root is not None else (user_data_dir() / name)


def default_store() -> Path:
    return _default_dir("profiles")


def default_predictors() -> Path:
    return _default_dir("predictors")


def default_space() -> Path:
    root = project_root()
    if root is not None:
        return root / "search" / "spaces" / "bert.toml"
    return Path(__file__).resolve().parent / "spaces" / "bert.toml"
