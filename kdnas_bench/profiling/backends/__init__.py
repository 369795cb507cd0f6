"""Backend registry: name -> :class:`BackendSpec` (a factory ``spec(threads, **options)`` plus what the
rest of the package needs to know about the backend). Every other place that lists backends — the CLI's
``--backend`` choices, the conformance tests, ``compare`` — reads :data:`BACKENDS`; a new backend is one module
and one ``register`` here, or, from another package, a ``BackendSpec`` behind an entry point of the group
``kdnas_bench.backends`` (:mod:`kdnas_bench.registry`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...errors import BackendError
from ...registry import Registry
from .base import Backend
from .ort import OrtBackend
from .ort_int8 import OrtInt8Backend
from .torch_bf16 import TorchBf16Backend, bf16_unsupported
from .torch_eager import TorchBackend

PRECISIONS = ("fp32", "bf16", "int8")


@dataclass(frozen=True)
class BackendSpec:
    """One registered backend. ``factory(threads, **options)`` builds it; ``unavailable()`` says in one
    line why this machine cannot run it (``None``: it can); ``onnx``: it runs an exported ONNX model
    (takes ``cache_dir``); ``logit_tol``: how far its logits may be from the fp32 reference model's, as a
    share of the largest reference logit (the conformance suite's check; the precision's own error)."""

    name: str
    factory: Callable[..., Backend]
    device: str = "cpu"
    precision: str = "fp32"
    onnx: bool = False
    logit_tol: float = 3e-3
    check: Callable[[], str | None] | None = None

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"backend {self.name}: device must be cpu or cuda, got {self.device!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"backend {self.name}: precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not 0 < self.logit_tol < 1:
            raise ValueError(f"backend {self.name}: logit_tol must be in (0, 1), got {self.logit_tol}")

    def unavailable(self) -> str | None:
        return self.check() if self.check is not None else None

    def __call__(self, threads: int, **options: Any) -> Backend:
        return self.factory(threads, **options)


def _torch(threads: int, **kw: Any) -> Backend:
    return TorchBackend(threads=threads, device="cpu", **kw)


def _torch_cuda(threads: int, **kw: Any) -> Backend:
    return TorchBackend(threads=threads, device="cuda", **kw)


def _torch_bf16(threads: int, **kw: Any) -> Backend:
    return TorchBf16Backend(threads=threads, **kw)


def _ort(threads: int, **kw: Any) -> Backend:
    return OrtBackend(threads=threads, device="cpu", **kw)


def _ort_int8(threads: int, **kw: Any) -> Backend:
    return OrtInt8Backend(threads=threads, **kw)


def _ort_cuda(threads: int, **kw: Any) -> Backend:
    return OrtBackend(threads=threads, device="cuda", **kw)


def _no_cuda() -> str | None:
    import torch  # noqa: PLC0415  lazy: torch

    return None if torch.cuda.is_available() else "needs a CUDA GPU, and torch sees none"


def _no_ort_cuda() -> str | None:
    import onnxruntime as ort  # noqa: PLC0415  lazy: onnxruntime

    if "CUDAExecutionProvider" in ort.get_available_providers():
        return None
    return "onnxruntime has no CUDAExecutionProvider here (install onnxruntime-gpu on a CUDA machine)"


def _no_bf16() -> str | None:
    return bf16_unsupported()


def _is_spec(name: str, part: object) -> str | None:
    if not isinstance(part, BackendSpec):
        return f"must be a BackendSpec, got {type(part).__name__}"
    return None if part.name == name else f"its spec is named {part.name!r}"


BUILT_IN: tuple[BackendSpec, ...] = (
    BackendSpec("torch", _torch),
    BackendSpec("onnxruntime", _ort, onnx=True),
    BackendSpec("onnxruntime-int8", _ort_int8, precision="int8", onnx=True, logit_tol=0.1),
    BackendSpec("torch-bf16", _torch_bf16, precision="bf16", logit_tol=0.1, check=_no_bf16),
    BackendSpec("torch-cuda", _torch_cuda, device="cuda", check=_no_cuda),
    BackendSpec("onnxruntime-cuda", _ort_cuda, device="cuda", onnx=True, check=_no_ort_cuda),
)
BACKENDS: Registry[BackendSpec] = Registry("backend", _is_spec)
for _spec in BUILT_IN:
    BACKENDS.register(_spec.name, _spec)

# this package's backends that time on a GPU (their device id includes the GPU); :func:`is_gpu` asks the registry
GPU_BACKENDS: frozenset[str] = frozenset(s.name for s in BUILT_IN if s.device == "cuda")


def is_gpu(name: str) -> bool:
    """Whether the registered backend ``name`` (a plugin's too) runs on a GPU."""
    spec = BACKENDS.get(name)
    return spec is not None and spec.device == "cuda"


def make_backend(name: str, threads: int = 1, **options: Any) -> Backend:
    spec = BACKENDS[name]  # an unknown name: the registry's one-line error
    if threads < 1:
        raise BackendError(f"threads must be >= 1, got {threads}")
    return spec(threads, **options)


def cpu_backends() -> tuple[str, ...]:
    """The registered backends that run on the CPU (the ones ``compare`` can measure on this machine)."""
    return tuple(n for n, s in BACKENDS.items() if s.device == "cpu")


__all__ = ["BACKENDS", "GPU_BACKENDS", "Backend", "BackendSpec", "cpu_backends", "is_gpu", "make_backend"]
