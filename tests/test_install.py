"""A non-editable install: the wheel carries the committed profiles, predictors and search spaces, and the
README's tour runs from it outside a checkout; the first command that writes starts the per-user data home."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from .helpers import ROOT

SOURCES = ("kdnas_bench", "profiles", "predictors", "search", "pyproject.toml", "setup.py", "README.md")
TOUR_DEVICE = "amd-epyc-2c-243f6e"
ARCH = "4,312,12,1200"


def _committed(name: str) -> set[str]:
    """The files of a committed data folder, relative to the repository root (not the ignored writers' locks and
    temporary files a profile run leaves beside its rows: ``.lock``, ``*.tmp``)."""
    return {p.relative_to(ROOT).as_posix() for p in (ROOT / name).rglob("*")
            if p.is_file() and not p.name.startswith(".") and p.suffix != ".tmp"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of the sources (the build writes nothing into the checkout)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(src)], check=True, capture_output=True, text=True, timeout=300, env=_env())
    (found,) = out.glob("kdnas_bench-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv (the system's site-packages visible, for torch and the rest) with the wheel installed; its bin/."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    # --force-reinstall: the wheel goes into the venv even though the system holds kdnas-bench of the same version
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--force-reinstall",
                    "-q", str(wheel)], check=True, capture_output=True, text=True, timeout=300, env=_env())
    return env_dir / "bin"


def _env(**extra: str) -> dict[str, str]:
    """The environment without PYTHONPATH: the installed code runs, not the checkout's."""
    return {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **extra}


def _run(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed CLI, run from ``cwd`` (outside the checkout), the data home under ``cwd``."""
    env = _env(XDG_DATA_HOME=str(cwd / "data-home"), COLUMNS="200")
    return subprocess.run([str(bin_dir / "kdnas-bench"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_wheel_ships_the_committed_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("profiles", "predictors", "search"):
        committed = _committed(folder)
        assert committed, folder
        missing = {f for f in committed if f"kdnas_bench/_data/{f}" not in names}
        assert not missing, f"not in the wheel: {sorted(missing)[:5]}"
    assert not any(n.startswith(("profiles/", "predictors/", "search/")) for n in names)  # only inside the package


def test_installed_tour_reads_the_shipped_data(installed: Path, tmp_path: Path, run_cli) -> None:
    devices = _run(installed, tmp_path, "devices", "--json")
    assert devices.returncode == 0, devices.stderr
    shown = {(d["device_id"], d["backend"], d["threads"]) for d in json.loads(devices.stdout)}
    committed = {tuple(p.parent.relative_to(ROOT / "profiles").parts) for p in (ROOT / "profiles").rglob("_dataset.json")}
    assert {(dev, key.rsplit("-t", 1)[0], int(key.rsplit("-t", 1)[1])) for dev, key in committed} == shown

    args = ("predict", "--device", TOUR_DEVICE, "--backend", "torch", "--arch", ARCH, "--seq", "128", "--batch", "1",
            "--json")
    pred = _run(installed, tmp_path, *args)
    assert pred.returncode == 0, pred.stderr
    code, out, _ = run_cli(*args)  # the same prediction from the checkout
    assert code == 0
    assert json.loads(pred.stdout) == json.loads(out)

    space = _run(installed, tmp_path, "space", "show", "--space", "search/spaces/minilm-students.toml")
    assert space.returncode == 0, space.stderr
    # the rest of the README's tour
    listed = _run(installed, tmp_path, "predictors", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == len(list((ROOT / "predictors").glob("*/*/meta.json")))
    compared = _run(installed, tmp_path, "compare", "--students", "minilm-l6,tinybert-4l,bert-mini", "--device",
                    TOUR_DEVICE, "--no-measure")
    assert compared.returncode == 0 and "tinybert-4l" in compared.stdout, compared.stderr
    assert not (tmp_path / "data-home").exists()  # reading writes nothing


def test_installed_fit_writes_to_the_data_home(installed: Path, tmp_path: Path) -> None:
    fit = _run(installed, tmp_path, "fit", "--device", TOUR_DEVICE, "--backend", "torch", "--threads", "2")
    assert fit.returncode == 0, fit.stderr
    home = tmp_path / "data-home" / "kdnas-bench" / "predictors"
    assert (home / TOUR_DEVICE / "torch-t2" / "meta.json").is_file()
    # the data home started as the shipped predictors, so every committed device is still there
    assert {p.name for p in home.iterdir()} == {p.name for p in (ROOT / "predictors").iterdir() if p.is_dir()}
    listed = _run(installed, tmp_path, "predictors", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == len(list((ROOT / "predictors").glob("*/*/meta.json")))


def test_data_home_starts_as_the_shipped_data_and_keeps_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside a checkout: reads use the shipped folder until the data home exists; a writer starts the data home
    with the shipped device folders; shipped folders it lacks are added later, its own are never replaced."""
    from kdnas_bench import paths

    shipped = tmp_path / "shipped"
    (shipped / "predictors" / "dev-a" / "torch-t1").mkdir(parents=True)
    (shipped / "predictors" / "dev-a" / "torch-t1" / "meta.json").write_text("shipped a", encoding="utf-8")
    monkeypatch.setattr(paths, "SHIPPED", shipped)
    monkeypatch.setattr(paths, "project_root", lambda: None)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    home = tmp_path / "xdg" / "kdnas-bench" / "predictors"

    assert paths.default_predictors() == shipped / "predictors" and not home.exists()
    assert paths.default_predictors(writable=True) == home
    assert (home / "dev-a" / "torch-t1" / "meta.json").read_text(encoding="utf-8") == "shipped a"
    (home / "dev-a" / "torch-t1" / "meta.json").write_text("refitted a", encoding="utf-8")  # the user's own fit
    (shipped / "predictors" / "dev-b" / "torch-t1").mkdir(parents=True)  # a newer package ships another device
    assert paths.default_predictors() == home
    assert sorted(p.name for p in home.iterdir()) == ["dev-a", "dev-b"]
    assert (home / "dev-a" / "torch-t1" / "meta.json").read_text(encoding="utf-8") == "refitted a"
    assert not [p for p in (home / "dev-b").iterdir() if p.name.startswith(".")]  # no staging copy left
