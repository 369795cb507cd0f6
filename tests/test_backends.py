"""The backend contract (:mod:`kdnas_bench.testing.backends`) on every registered backend, and backend specifics."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdnas_bench.errors import BackendError
from kdnas_bench.profiling.backends import BACKENDS, make_backend
from kdnas_bench.profiling.runner import measure
from kdnas_bench.registry import UnknownNameError
from kdnas_bench.space import Arch, Shape
from kdnas_bench.testing import BACKEND_CHECKS
from kdnas_bench.testing.backends import ARCH, FAST, logits_of, make


def _registered() -> list[object]:
    """Every registered backend x every check of the shipped contract; the backends this machine cannot run are
    skipped with their reason."""
    params = []
    for name, spec in BACKENDS.items():
        reason = spec.unavailable()
        marks = [pytest.mark.skip(reason=f"{name}: {reason}")] if reason else []
        params += [pytest.param(name, check, marks=marks, id=f"{name}-{check}") for check in BACKEND_CHECKS]
    return params


@pytest.mark.parametrize(("name", "check"), _registered())
def test_backend_contract(name: str, check: str, tmp_path: Path) -> None:
    spec = BACKENDS[name]
    backend = make(spec, tmp_path)
    try:
        BACKEND_CHECKS[check](spec, backend)
    finally:
        backend.close()


def test_onnx_export_is_cached(tmp_path: Path) -> None:
    b = make_backend("onnxruntime", 1, cache_dir=tmp_path)
    b.load(ARCH, Shape(1, 8))
    files = list(tmp_path.glob("*.onnx"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    b2 = make_backend("onnxruntime", 1, cache_dir=tmp_path)
    b2.load(ARCH, Shape(2, 8))
    assert files[0].stat().st_mtime_ns == stamp


def test_failure_is_a_result_not_a_crash() -> None:
    b = make_backend("torch", 1)
    m = measure(b, Arch(1, 64, 2, 64), Shape(1, 1024), FAST)  # beyond 512 positions: the model raises
    assert not m.ok and m.error


def test_unknown_backend_and_bad_threads() -> None:
    with pytest.raises(UnknownNameError, match="unknown backend 'tensorrt-9000'"):
        make_backend("tensorrt-9000", 1)
    with pytest.raises(BackendError, match="threads"):
        make_backend("torch", 0)


def test_the_space_model_section_reaches_the_backend(tmp_path: Path) -> None:
    from kdnas_bench.cli.profile_cmds import _backend
    from kdnas_bench.space import SearchSpace

    toml = (Path(__file__).parent / "data" / "tiny.toml").read_text()
    (tmp_path / "s.toml").write_text(toml + "\n[model]\nvocab_size = 600\nnum_labels = 3\n")
    space = SearchSpace.load(tmp_path / "s.toml")
    for name in ("torch", "onnxruntime"):
        b = _backend(name, 1, str(tmp_path / "onnx"), space)
        try:
            out = logits_of(b.run(b.load(ARCH, Shape(2, 8))))
        finally:
            b.close()
        assert out.shape == (2, 3)  # num_labels from [model]
        assert b.vocab_size == 600  # type: ignore[attr-defined]
