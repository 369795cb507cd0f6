"""Where things live: the checkout (profiles/, predictors/, search/), the data shipped in the package, or a
per-user data home.

* In a checkout (an editable install, or running from the repository) the checkout's folders are used, read and
  written.
* In an installed package (``pip install .``) the committed profiles, predictors and search spaces ship inside it
  (``kdnas_bench/_data``, mapped from the repository root by setup.py). Commands that only read use them as they
  are; the first command that writes (``profile``, ``remeasure``, ``fit``) starts the per-user data home
  (``$XDG_DATA_HOME/kdnas-bench``, else ``~/.local/share/kdnas-bench``) with a copy of the shipped device
  folders, and from then on the data home is used, read and written: newly profiled devices sit beside the
  shipped ones. Shipped device folders the data home lacks are copied in whenever it is used.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

SHIPPED = Path(__file__).resolve().parent / "_data"


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


def shipped_dir(name: str) -> Path:
    """A data folder shipped in the package (``profiles``, ``predictors``, ``search``); absent in a checkout."""
    return SHIPPED / name


def _copy_missing(src: Path, dst: Path) -> None:
    """Copy each ``DEVICE/KEY`` folder of ``src`` that ``dst`` lacks (renamed into place, so a copy is whole)."""
    for device in sorted(p for p in src.iterdir() if p.is_dir()):
        for key in sorted(p for p in device.iterdir() if p.is_dir()):
            target = dst / device.name / key.name
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{key.name}.", dir=target.parent))
            shutil.copytree(key, tmp, dirs_exist_ok=True)
            try:
                tmp.rename(target)
            except OSError:  # another process put it there first
                shutil.rmtree(tmp, ignore_errors=True)


def _default_dir(name: str, writable: bool) -> Path:
    root = project_root()
    if root is not None:
        return root / name
    home = user_data_dir() / name
    shipped = shipped_dir(name)
    if not (writable or home.is_dir()):
        return shipped if shipped.is_dir() else home
    if shipped.is_dir():
        try:
            _copy_missing(shipped, home)
        except OSError:
            if not (writable or home.is_dir()):
                return shipped  # an unwritable home: the shipped data as it is
    return home


def default_store(writable: bool = False) -> Path:
    """The profile store: the checkout's profiles/, else the data home's or the shipped one (see the module);
    ``writable``: a store a command may write to (the data home, started from the shipped profiles)."""
    return _default_dir("profiles", writable)


def default_predictors(writable: bool = False) -> Path:
    """The predictors folder, found as :func:`default_store` finds the profile store."""
    return _default_dir("predictors", writable)


def data_file(path: str | Path) -> Path:
    """``path`` as given; when it is not there, a shipped file named by its checkout path
    (``search/spaces/minilm-students.toml``) when the package holds one."""
    given = Path(path)
    if given.exists() or given.is_absolute():
        return given
    shipped = SHIPPED / given
    return shipped if shipped.is_file() else given


def default_space() -> Path:
    root = project_root()
    if root is not None:
        return root / "search" / "spaces" / "bert.toml"
    return shipped_dir("search") / "spaces" / "bert.toml"
