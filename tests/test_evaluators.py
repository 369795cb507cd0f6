"""The evaluator contract (:func:`kdnas_bench.testing.check_evaluator_class`) on every registered evaluator, each
built from a request as a search builds it; and a toy evaluator that registers itself is picked up by this suite
without any other change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kdnas_bench.errors import KdnasError
from kdnas_bench.keys import DatasetKey
from kdnas_bench.search.evaluators import EVALUATORS
from kdnas_bench.search.request import SearchRequest, SupernetOptions
from kdnas_bench.testing import check_evaluator_class

from .helpers import DEV, GLUE, ROOT, TINY_SPACE

needs_glue = pytest.mark.skipif(not (GLUE / "SST-2" / "dev.tsv").is_file(), reason="../shared/data/glue not present")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Read at collection time, so an evaluator registered by a plugin (``-p``) is in the suite too."""
    if "evaluator_name" in metafunc.fixturenames:
        metafunc.parametrize("evaluator_name", sorted(EVALUATORS))


def _request(name: str, tmp: Path, teacher: Path, glue: Path) -> SearchRequest:
    """A small request that ``name`` serves: a GLUE task with the tiny teacher, unless it scores a table or text."""
    base: dict[str, Any] = dict(key=DatasetKey(DEV, "torch", 1), budgets_ms=(50.0,), task="sst2", evaluator=name,
                                space=str(TINY_SPACE), proxy_examples=64, proxy_epochs=1.0, seed=1)
    inputs = EVALUATORS[name].inputs
    if inputs == "table":
        table = tmp / "table.json"
        table.write_text(json.dumps([{"layers": layers, "hidden": 32, "heads": 2, "ffn": 64, "metric": 0.5 + 0.1 * layers}
                                     for layers in (1, 2)]))
        return SearchRequest(**base, table=str(table))
    if inputs == "text":
        text = tmp / "text.txt"
        text.write_text("".join(f"a passage of plain text, number {i}, for the student to learn.\n" for i in range(80)))
        return SearchRequest(**{**base, "task": "agnostic"}, teacher=str(teacher), text=str(text))
    return SearchRequest(**base, teacher=str(teacher), data_dir=str(glue),
                         supernet=SupernetOptions(examples=64, epochs=1.0, rerank_top=2, rerank_examples=32))


@needs_glue
def test_evaluator_contract(evaluator_name: str, tiny_teacher: Path, tiny_glue: Path, tmp_path: Path) -> None:
    req = _request(evaluator_name, tmp_path, tiny_teacher, tiny_glue)
    ev = check_evaluator_class(EVALUATORS[evaluator_name], req, tmp_path / "run")
    assert ev.name == evaluator_name


def test_the_contract_catches_a_nondeterministic_evaluator(tmp_path: Path) -> None:
    from kdnas_bench.search.evaluators import Evaluation, TableEvaluator
    from kdnas_bench.space import Arch
    from kdnas_bench.testing import check_evaluator

    class Noisy(TableEvaluator):
        def evaluate(self, arch: Arch) -> Evaluation:
            return Evaluation(float(np.random.default_rng().random()), "noise")

    table = tmp_path / "table.json"
    table.write_text(json.dumps([{"layers": 1, "hidden": 32, "heads": 2, "ffn": 64, "metric": 0.5}]))
    with pytest.raises(AssertionError, match="scored"):
        check_evaluator(Noisy(table), [Arch(1, 32, 2, 64)])


@needs_glue
def test_a_registered_toy_evaluator_is_picked_up_by_the_suite() -> None:
    """One module with a class and a registry line (tests/toy_evaluator.py), loaded as a plugin: this suite now
    runs the contract on it, and it passes."""
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.toy_evaluator",
                          "tests/test_evaluators.py::test_evaluator_contract", "-k", "toy", "-rA"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "PASSED tests/test_evaluators.py::test_evaluator_contract[toy]" in out.stdout
    assert "1 passed" in out.stdout


def test_the_request_picks_the_evaluator_from_the_registry() -> None:
    from kdnas_bench.search.evaluators import evaluator_for

    key = DatasetKey(DEV, "torch", 1)
    assert evaluator_for(SearchRequest(key, (9.0,), "sst2")).name == "proxy-distill"
    assert evaluator_for(SearchRequest(key, (9.0,), "sst2", evaluator="proxy-distill")).name == "proxy-distill"
    assert evaluator_for(SearchRequest(key, (9.0,), "sst2", table="t.json")).name == "table"  # the default gives way
    assert evaluator_for(SearchRequest(key, (9.0,), "agnostic")).name == "agnostic-distill"
    assert evaluator_for(SearchRequest(key, (9.0,), "agnostic", evaluator="agnostic")).name == "agnostic-distill"
    assert evaluator_for(SearchRequest(key, (9.0,), "sst2", evaluator="supernet")).name == "supernet"
    for bad, message in (({"evaluator": "nosuch"}, "unknown evaluator 'nosuch' (choose from proxy-distill, supernet, table"),
                         ({"evaluator": "table"}, "--evaluator table needs --table"),
                         ({"evaluator": "agnostic"}, "--evaluator agnostic needs --task agnostic"),
                         ({"evaluator": "supernet", "table": "t.json"}, "--evaluator supernet needs a GLUE task")):
        with pytest.raises(KdnasError, match=message.replace("(", r"\(")):
            evaluator_for(SearchRequest(key, (9.0,), "sst2", **bad))
