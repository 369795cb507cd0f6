"""The Backend contract (:class:`~kdnas_bench.profiling.backends.base.Backend`): identity and clock, one build
serves every shape, logits match the fp32 reference model within the spec's tolerance, and a measurement
gives a timing."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..models import build_model, make_inputs
from ..profiling.backends import Backend, BackendSpec
from ..profiling.runner import measure
from ..profiling.timing import TimingConfig
from ..space import Arch, Shape

FAST = TimingConfig(warmup=1, min_calls=3, min_seconds=0.0, max_seconds=1.0)
ARCH = Arch(2, 64, 4, 128)


def logits_of(out: object) -> np.ndarray:
    if isinstance(out, list):
        return np.asarray(out[0])
    return out.detach().float().cpu().numpy()  # type: ignore[attr-defined]


def identity_and_clock(spec: BackendSpec, backend: Backend) -> None:
    assert backend.name == spec.name and backend.threads == 1, f"{spec.name}: name or threads not as built"
    assert backend.device == spec.device, f"{spec.name}: device {backend.device!r}, its spec says {spec.device!r}"
    two = spec(2)
    try:
        assert two.threads == 2, f"{spec.name}: the thread count asked for is not the one recorded"
    finally:
        two.close()
    handle = backend.load(ARCH, Shape(1, 8))
    times = backend.clock().time_calls(lambda: backend.run(handle), 3)
    assert len(times) == 3 and all(t > 0 for t in times), f"{spec.name}: the clock must give one positive time per call"


def every_shape_with_one_build(spec: BackendSpec, backend: Backend) -> None:
    for shape in (Shape(1, 8), Shape(3, 16)):
        out = logits_of(backend.run(backend.load(ARCH, shape)))
        backend.sync()
        assert out.shape == (shape.batch, 2), f"{spec.name}: logits of shape {out.shape} at {shape}"


def outputs_match_the_reference_model(spec: BackendSpec, backend: Backend) -> None:
    import torch  # noqa: PLC0415  lazy: torch

    for shape in (Shape(2, 12), Shape(1, 40)):
        ref = build_model(ARCH)
        with torch.inference_mode():
            expected = ref(**make_inputs(shape)).logits.numpy()
        got = logits_of(backend.run(backend.load(ARCH, shape)))
        err = float(np.abs(got - expected).max())
        scale = float(np.abs(expected).max())
        assert err <= spec.logit_tol * scale, f"{spec.name}: logits {err:.3g} from the reference (tolerance " \
                                              f"{spec.logit_tol:g} x {scale:.3g})"
        if spec.precision == "fp32":
            np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4, err_msg=f"{spec.name}: fp32 logits")
        else:
            assert err > 0, f"{spec.name}: identical to fp32, so it does not run in {spec.precision}"


def measure_gives_a_timing(spec: BackendSpec, backend: Backend) -> None:
    m = measure(backend, ARCH, Shape(1, 8), FAST)
    assert m.ok and m.timing is not None and m.timing.n >= 3 and m.timing.median_ms > 0, \
        f"{spec.name}: measure() gave no timing ({m.error})"


BACKEND_CHECKS: dict[str, Callable[[BackendSpec, Backend], None]] = {
    "identity_and_clock": identity_and_clock, "every_shape_with_one_build": every_shape_with_one_build,
    "outputs_match_the_reference_model": outputs_match_the_reference_model,
    "measure_gives_a_timing": measure_gives_a_timing}


def make(spec: BackendSpec, workdir: str | Path) -> Backend:
    """The backend of ``spec`` at one thread (an ONNX one caches its exports under ``workdir``)."""
    opts: dict[str, Any] = {"cache_dir": Path(workdir) / "onnx"} if spec.onnx else {}
    return spec(1, **opts)


def check_backend(spec: BackendSpec, workdir: str | Path | None = None) -> None:
    """Every backend check on ``spec``; an unavailable backend (``spec.unavailable()``) is an error here (skip it
    yourself when that is expected)."""
    reason = spec.unavailable()
    assert reason is None, f"{spec.name} cannot run here: {reason}"
    with tempfile.TemporaryDirectory() as tmp:
        backend = make(spec, workdir or tmp)
        try:
            for check in BACKEND_CHECKS.values():
                check(spec, backend)
        finally:
            backend.close()
