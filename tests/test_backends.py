"""One conformance suite that every available backend runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kdnas_bench.errors import BackendError
from kdnas_bench.models import build_model, make_inputs
from kdnas_bench.profiling.backends import BACKENDS, Backend, is_gpu, make_backend
from kdnas_bench.profiling.runner import measure
from kdnas_bench.profiling.timing import TimingConfig
from kdnas_bench.space import Arch, Shape

FAST = TimingConfig(warmup=1, min_calls=3, min_seconds=0.0, max_seconds=1.0)
ARCH = Arch(2, 64, 4, 128)


def _registered() -> list[object]:
    """Every registered backend; the ones this machine cannot run are skipped with their reason."""
    params = []
    for name, spec in BACKENDS.items():
        reason = spec.unavailable()
        marks = [pytest.mark.skip(reason=f"{name}: {reason}")] if reason else []
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.fixture(params=_registered())
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    opts = {"cache_dir": tmp_path / "onnx"} if BACKENDS[request.param].onnx else {}
    b = make_backend(request.param, 1, **opts)
    yield b
    b.close()


def _logits(out: object) -> np.ndarray:
    if isinstance(out, list):
        return np.asarray(out[0])
    return out.detach().float().cpu().numpy()  # type: ignore[attr-defined]


def test_identity_and_clock(backend: Backend) -> None:
    assert backend.name in BACKENDS and backend.threads == 1
    assert backend.device == ("cuda" if is_gpu(backend.name) else "cpu")
    two = make_backend(backend.name, 2)
    try:
        assert two.threads == 2  # the thread count asked for is the one recorded
    finally:
        two.close()
    handle = backend.load(ARCH, Shape(1, 8))
    times = backend.clock().time_calls(lambda: backend.run(handle), 3)
    assert len(times) == 3 and all(t > 0 for t in times)  # one positive duration per call


def test_runs_every_shape_with_one_build(backend: Backend) -> None:
    for shape in (Shape(1, 8), Shape(3, 16)):
        handle = backend.load(ARCH, shape)
        out = _logits(backend.run(handle))
        backend.sync()
        assert out.shape == (shape.batch, 2)


@pytest.mark.parametrize("shape", [Shape(2, 12), Shape(1, 40)])
def test_outputs_match_the_reference_model(backend: Backend, shape: Shape) -> None:
    ref = build_model(ARCH)
    with torch.inference_mode():
        expected = ref(**make_inputs(shape)).logits.numpy()
    got = _logits(backend.run(backend.load(ARCH, shape)))
    spec = BACKENDS[backend.name]
    err = float(np.abs(got - expected).max())
    assert err <= spec.logit_tol * float(np.abs(expected).max())  # fp32: 0.3 % of the logit scale
    if spec.precision == "fp32":
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)
    else:
        assert err > 0  # it really runs in reduced precision


def test_measure_gives_a_timing(backend: Backend) -> None:
    m = measure(backend, ARCH, Shape(1, 8), FAST)
    assert m.ok and m.timing is not None and m.timing.n >= 3 and m.timing.median_ms > 0


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
    with pytest.raises(BackendError, match="unknown backend"):
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
            out = _logits(b.run(b.load(ARCH, Shape(2, 8))))
        finally:
            b.close()
        assert out.shape == (2, 3)  # num_labels from [model]
        assert b.vocab_size == 600  # type: ignore[attr-defined]
