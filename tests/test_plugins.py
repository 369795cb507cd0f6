"""One plugin mechanism (:mod:`kdnas_bench.registry`): every kind of pluggable part is a registry with one error
for an unknown name and a shipped contract check; the executor and transfer-method contracts on every registered
one; and an evaluator from another installed package (tests/plugins/kdnas_toy_plugin: one module, one entry
point) is among ``kdnas-bench search --evaluator``'s choices and runs a search."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kdnas_bench.distill.losses import LOSSES
from kdnas_bench.errors import KdnasError
from kdnas_bench.predictors.transfer_methods import TRANSFER_METHODS, MethodInput
from kdnas_bench.profiling.backends import BACKENDS
from kdnas_bench.registry import GROUPS, PluginError, Registry, UnknownNameError
from kdnas_bench.search.evaluators import EVALUATORS
from kdnas_bench.search.executor import EXECUTORS, LocalExecutor
from kdnas_bench.search.result import Evaluation
from kdnas_bench.search.strategies import STRATEGIES
from kdnas_bench.space import Arch
from kdnas_bench.testing import CHECKS, EXECUTOR_CHECKS, TRANSFER_METHOD_CHECKS, check_executor, check_transfer_method

from .helpers import DEV, ROOT, TINY_SPACE

REGISTRIES: list[Registry[Any]] = [BACKENDS, STRATEGIES, LOSSES, EVALUATORS, EXECUTORS, TRANSFER_METHODS]
PLUGIN = ROOT / "tests" / "plugins" / "kdnas_toy_plugin"


# -- the registries ------------------------------------------------------------------------------------
def test_every_kind_is_a_registry_with_an_entry_point_group_and_a_shipped_check() -> None:
    assert sorted(r.kind for r in REGISTRIES) == sorted(GROUPS) == sorted(CHECKS)
    assert all(r.group == GROUPS[r.kind] and callable(CHECKS[r.kind]) for r in REGISTRIES)


@pytest.mark.parametrize("registry", REGISTRIES, ids=lambda r: r.kind)
def test_an_unknown_name_is_one_error_listing_the_known_ones(registry: Registry[Any]) -> None:
    with pytest.raises(UnknownNameError) as err:
        registry["no-such-part"]
    assert str(err.value) == f"unknown {registry.kind} 'no-such-part' (choose from {', '.join(registry.names())})"
    assert isinstance(err.value, KdnasError)  # one line on the CLI, exit 2
    assert registry.get("no-such-part") is None and "no-such-part" not in registry


def test_register_create_names_aliases_and_refusals() -> None:
    reg: Registry[Any] = Registry("strategy", lambda name, part: None if callable(part) else "must be callable")
    reg.register("double", lambda x: 2 * x, aliases=("twice",))

    @reg.register("square")
    def square(x: int) -> int:
        return x * x

    assert reg.names() == ("double", "square") and list(reg) == ["double", "square"] and len(reg) == 2
    assert reg.create("double", 4) == 8 and reg.create("square", 3) == 9 and square(2) == 4
    assert reg["twice"] is reg["double"] and reg.canonical("twice") == "double" and "twice" in reg
    assert "twice" not in reg.names()  # an old spelling is accepted, never listed
    with pytest.raises(PluginError, match="strategy 'bad': must be callable"):
        reg.register("bad", 3)


def test_evaluators_are_named_as_run_json_records_them_and_accept_their_old_names() -> None:
    assert list(EVALUATORS) == ["proxy-distill", "supernet", "table", "agnostic-distill"]
    assert EVALUATORS["proxy"] is EVALUATORS["proxy-distill"] and EVALUATORS["agnostic"] is EVALUATORS["agnostic-distill"]
    assert all(cls.name == name for name, cls in EVALUATORS.items())


# -- the executor and transfer-method contracts ----------------------------------------------------------
def _executors() -> Iterator[Any]:
    for name in EXECUTORS:
        marks = [pytest.mark.slow, pytest.mark.skipif(shutil.which("ray") is None, reason="Ray is not installed")] \
            if name == "ray" else []  # a local Ray cluster with its actors
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", _executors())
def test_executor_contract(name: str) -> None:
    check_executor(EXECUTORS[name], name)


class _DropsFailures(LocalExecutor):
    """An executor that loses a failed candidate instead of returning its failure."""

    def run(self, evaluator: Any, archs: list[Arch]) -> Iterator[tuple[Arch, Evaluation]]:
        return ((a, e) for a, e in super().run(evaluator, archs) if e.error is None)


def test_the_executor_contract_catches_a_lost_failure() -> None:
    with pytest.raises(AssertionError, match="each arch exactly once"):
        EXECUTOR_CHECKS["a_candidate_failure_is_a_failed_evaluation"](_DropsFailures())


@pytest.mark.parametrize(("name", "check"), [(n, c) for n in TRANSFER_METHODS for c in TRANSFER_METHOD_CHECKS])
def test_transfer_method_contract(name: str, check: str) -> None:
    TRANSFER_METHOD_CHECKS[check](TRANSFER_METHODS[name])


def test_the_transfer_contract_catches_a_method_that_ignores_the_target() -> None:
    def ignores(m: MethodInput) -> dict[str, Any]:
        return {"a": 0.0, "b": 1.0, "coef": m.coef_src, "booster": None}

    def negative(m: MethodInput) -> dict[str, Any]:
        return {**ignores(m), "coef": -np.asarray(m.coef_src)}

    TRANSFER_METHOD_CHECKS["keeps_the_source_when_the_target_agrees"](ignores)  # it does keep the source
    with pytest.raises(AssertionError, match="2x slower"):
        check_transfer_method(ignores)
    with pytest.raises(AssertionError, match="finite and >= 0"):
        check_transfer_method(negative)


# -- an evaluator from another installed package -----------------------------------------------------------
def install(plugin: Path, site: Path) -> Path:
    """``plugin`` as pip installs it into ``site``: its package and a dist-info whose entry_points.txt holds the
    entry points of its pyproject.toml."""
    project = tomllib.loads((plugin / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    dist = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    (dist / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in entries.items()) + "\n"
        for group, entries in project["entry-points"].items()))
    for package in (p for p in plugin.iterdir() if (p / "__init__.py").is_file()):
        shutil.copytree(package, site / package.name)
    return site


def _run(site: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(site), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, env=env,
                          cwd=cwd or ROOT)


def test_an_installed_plugin_is_listed_without_being_imported(tmp_path: Path) -> None:
    site = install(PLUGIN, tmp_path / "site")
    probe = """
import sys
from kdnas_bench.search.evaluators import EVALUATORS
from kdnas_bench.report.run_report import describe_evaluator
assert list(EVALUATORS)[-1] == "toy", list(EVALUATORS)
assert "kdnas_toy_plugin" not in sys.modules  # listed, not loaded
cls = EVALUATORS["toy"]
assert cls.__module__ == "kdnas_toy_plugin" and cls.options_of.__self__ is cls
print(describe_evaluator({"kind": "toy", "scale": 2.0}))
"""
    out = _run(site, "-c", probe)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "Scores: the toy size score, up to 2.0, no training."


def test_a_broken_plugin_is_one_line_naming_it(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist = site / "broken-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[kdnas_bench.strategies]\nbroken = no_such_module:Thing\n")
    out = _run(site, "-m", "kdnas_bench", "search", "--help")
    assert out.returncode == 0 and "broken" in out.stdout  # listed by name: nothing imported to list it
    out = _run(site, "-c", "from kdnas_bench.search.strategies import make_strategy; make_strategy('broken', None)")
    assert "PluginError: strategy 'broken' (entry point no_such_module:Thing in kdnas_bench.strategies) cannot be " \
           "loaded: ModuleNotFoundError" in out.stderr


def test_an_evaluator_plugin_from_another_package_runs_a_search(preds: Path, tmp_path: Path) -> None:
    site = install(PLUGIN, tmp_path / "site")
    help_text = _run(site, "-m", "kdnas_bench", "search", "--help")
    assert help_text.returncode == 0, help_text.stderr[-2000:]
    assert "[proxy-distill|supernet|table|agnostic-distill|toy]" in " ".join(help_text.stdout.split())
    run = tmp_path / "run"
    out = _run(site, "-m", "kdnas_bench", "search", "--device", DEV, "--backend", "torch", "--budget-ms", "50",
               "--task", "sst2", "--space", str(TINY_SPACE), "--predictors", str(preds), "--evaluator", "toy",
               "--head-dim", "any", "--reward", "soft", "--strategy", "random", "--episodes", "2", "--candidates",
               "2", "--seed", "1", "--out", str(run), "--json")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    config = json.loads((run / "run.json").read_text())["config"]
    assert config["evaluator"] == {"kind": "toy", "scale": 1.0}
    evaluations = [json.loads(line) for line in (run / "evaluations.jsonl").read_text().splitlines()]
    assert len(evaluations) == 4 and {e["metric_name"] for e in evaluations} == {"toy"}
    for e in evaluations:
        size = e["arch"]["layers"] * e["arch"]["hidden"]
        assert e["metric"] == pytest.approx(size / (1 + size))
