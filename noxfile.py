"""Sessions: tests, lint, docs, bench, quickstart. Each installs everything it needs (CPU torch from pip)."""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "virtualenv"
nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

# torch is named in the same pip command as the rest, so pip takes the local CPU build
TORCH = "torch==2.13.0"
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _install(session: nox.Session, extras: str) -> None:
    session.install(TORCH, "-e", f".[{extras}]")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (offline, CPU; Ray and TensorBoard included so the Ray executor and --log-to are tested)."""
    _install(session, "test,ray,track")
    session.run("pytest", "-q", "-p", "no:cacheprovider", *session.posargs, env=OFFLINE)


@nox.session
def tests_under_load(session: nox.Session) -> None:
    """The test suite while a busy process occupies another core (what a shared 2-core CI machine sees)."""
    _install(session, "test,ray,track")
    session.run("pytest", "-q", "-p", "no:cacheprovider", "--busy-cores", "1", *session.posargs, env=OFFLINE)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff and mypy."""
    _install(session, "lint")
    session.run("ruff", "check", "kdnas_bench", "tests", "benchmarks", "noxfile.py")
    session.run("mypy", "kdnas_bench")


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, built with warnings as errors into site/ (`-- serve` to browse it live).

    The CLI reference and the API page import the package, so it goes in with its dependencies (CPU torch)."""
    _install(session, "docs")
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", *session.posargs[1:], env={**OFFLINE, "NO_MKDOCS_2_WARNING": "1"})
        return
    session.run("mkdocs", "build", "--strict", *session.posargs, env={**OFFLINE, "NO_MKDOCS_2_WARNING": "1"})


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark figures (not pass/fail); each script prints its figures and writes benchmarks/results/*.json."""
    _install(session, "test")
    # the scripts that need no teacher; bench_distill.py and bench_search_e2e.py take a teacher folder and
    # run for tens of minutes: `nox -s bench -- bench_search_e2e.py --teacher DIR` (see their docstrings)
    if session.posargs:
        session.run("python", os.path.join("benchmarks", os.path.basename(session.posargs[0])), *session.posargs[1:],
                    env=OFFLINE)
        return
    for script in ("bench_profiling.py", "bench_predictors.py", "bench_strategies.py", "bench_backends.py", "bench_import.py"):
        session.run("python", os.path.join("benchmarks", script), env=OFFLINE)


@nox.session
def quickstart(session: nox.Session) -> None:
    """The whole pipeline on this machine, offline: profile, fit, search, distil, measure, report.

    Uses the GLUE folder next to the checkout (../shared/data/glue) when it is there, else task-agnostic KD on
    unlabeled text. Extra arguments go to `kdnas-bench quickstart` (e.g. `-- --data-dir DIR`, `-- --no-data`)."""
    _install(session, "test")
    args = list(session.posargs)
    if "--no-data" in args:
        args.remove("--no-data")
    elif "--data-dir" not in args:
        glue = os.path.join("..", "shared", "data", "glue")
        if os.path.isfile(os.path.join(glue, "SST-2", "dev.tsv")):
            args += ["--data-dir", glue]
    session.run("kdnas-bench", "quickstart", *args, env=OFFLINE)
