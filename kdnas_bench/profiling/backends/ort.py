"""ONNX Runtime inference on CPU (``onnxruntime``) or with the CUDA provider (``onnxruntime-cuda``).

Each arch is exported once (:func:`kdnas_bench.export.export_onnx`: legacy TorchScript exporter, dynamic batch
and sequence axes) into a cache folder and reused across shapes and runs."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import BackendError
from ...export import INPUT_NAMES, export_onnx
from ...models import build_model, make_inputs
from ...space import Arch, Shape
from ..timing import Clock, PerfCounterClock


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kdnas-bench" / "onnx"


def initializer_bytes(path: Path) -> int:
    """Sum of the byte sizes of an ONNX model's initializers (its weights as stored)."""
    import onnx  # noqa: PLC0415  lazy: onnx

    model = onnx.load(str(path), load_external_data=False)
    total = 0
    for t in model.graph.initializer:
        if t.raw_data:
            total += len(t.raw_data)
        else:
            itemsize = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
            total += int(np.prod(t.dims, dtype=np.int64)) * itemsize
    return total


@dataclass
class _Handle:
    session: Any
    feeds: dict[str, Any]


class OrtBackend:
    def __init__(
        self,
        threads: int = 1,
        device: str = "cpu",
        cache_dir: Path | None = None,
        vocab_size: int = 30522,
        num_labels: int = 2,
        model_path: Path | str | None = None,
    ) -> None:
        import onnxruntime as ort  # noqa: PLC0415  lazy: onnxruntime

        if threads < 1:
            raise BackendError(f"threads must be >= 1, got {threads}")
        provider = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"
        if provider not in ort.get_available_providers():
            raise BackendError(f"onnxruntime has no {provider} here (install onnxruntime-gpu on a CUDA machine)")
        self.name = "onnxruntime" if device == "cpu" else "onnxruntime-cuda"
        self.device = device
        self.threads = threads
        self.provider = provider
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.vocab_size = vocab_size
        self.num_labels = num_labels
        self.model_path = Path(model_path) if model_path is not None else None  # a given model, run as is
        self._ort = ort
        self._arch: Arch | None = None
        self._session: Any = None

    def _model_path(self, arch: Arch) -> Path:
        import torch  # noqa: PLC0415  lazy: torch

        key = f"{arch}|v{self.vocab_size}|c{self.num_labels}|torch{torch.__version__}"
        digest = hashlib.sha1(key.encode()).hexdigest()[:8]
        return self.cache_dir / f"bert-{arch.layers}-{arch.hidden}-{arch.heads}-{arch.ffn}-{digest}.onnx"

    def _ensure_model(self, arch: Arch) -> Path:
        """The (cached) ONNX file this backend runs for ``arch``, exported on first use (or ``model_path``)."""
        if self.model_path is not None:
            if not self.model_path.is_file():
                raise BackendError(f"no ONNX model at {self.model_path}")
            return self.model_path
        path = self._model_path(arch)
        if not path.exists():
            export_onnx(build_model(arch, vocab_size=self.vocab_size, num_labels=self.num_labels), path)
        return path

    def prepare(self, arch: Arch) -> None:
        """The untimed, cacheable work for ``arch`` (export, quantization), done ahead of measuring."""
        self._ensure_model(arch)

    def weight_bytes(self) -> int:
        """Bytes of the loaded model's initializers (weights, and scales/zero points when quantized)."""
        return initializer_bytes(self._ensure_model(self._arch)) if self._arch is not None else 0

    def _session_for(self, arch: Arch) -> Any:
        path = self._ensure_model(arch)
        opts = self._ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = self._ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        return self._ort.InferenceSession(str(path), sess_options=opts, providers=[self.provider])

    def load(self, arch: Arch, shape: Shape) -> _Handle:
        if arch != self._arch:
            self._session = None
            self._session = self._session_for(arch)
            self._arch = arch
        feeds = {k: v.numpy() for k, v in make_inputs(shape, vocab_size=self.vocab_size).items()}
        return _Handle(self._session, feeds)

    def run(self, handle: _Handle) -> object:
        # session.run is synchronous and returns host arrays, so wall time is the right clock on GPU too
        return handle.session.run(None, handle.feeds)

    def sync(self) -> None:
        return None

    def clock(self) -> Clock:
        return PerfCounterClock()

    def close(self) -> None:
        self._session = None
        self._arch = None


__all__ = ["INPUT_NAMES", "OrtBackend", "default_cache_dir", "export_onnx"]  # export_onnx: kdnas_bench.export
