"""Backend registry: name -> factory(threads, **options)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...errors import BackendError
from .base import Backend


def _torch(threads: int, **kw: Any) -> Backend:
    from .torch_eager import TorchBackend

    return TorchBackend(threads=threads, device="cpu", **kw)


def _torch_cuda(threads: int, **kw: Any) -> Backend:
    from .torch_eager import TorchBackend

    return TorchBackend(threads=threads, device="cuda", **kw)


def _ort(threads: int, **kw: Any) -> Backend:
    from .ort import OrtBackend

    return OrtBackend(threads=threads, device="cpu", **kw)


def _ort_cuda(threads: int, **kw: Any) -> Backend:
    from .ort import OrtBackend

    return OrtBackend(threads=threads, device="cuda", **kw)


BACKENDS: dict[str, Callable[..., Backend]] = {
    "torch": _torch,
    "onnxruntime": _ort,
    "torch-cuda": _torch_cuda,
    "onnxruntime-cuda": _ort_cuda,
}

# backends that time on a GPU (their device id includes the GPU); every other registered backend is CPU
GPU_BACKENDS: frozenset[str] = frozenset({"torch-cuda", "onnxruntime-cuda"})


def is_gpu(name: str) -> bool:
    """Whether the registered backend ``name`` runs on a GPU."""
    return name in GPU_BACKENDS


def make_backend(name: str, threads: int = 1, **options: Any) -> Backend:
    if name not in BACKENDS:
        raise BackendError(f"unknown backend '{name}' (choose from {', '.join(BACKENDS)})")
    if threads < 1:
        raise BackendError(f"threads must be >= 1, got {threads}")
    return BACKENDS[name](threads, **options)


__all__ = ["BACKENDS", "GPU_BACKENDS", "Backend", "is_gpu", "make_backend"]
