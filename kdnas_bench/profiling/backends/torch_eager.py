"""PyTorch eager inference, on CPU (threads set and recorded) or CUDA (timed with CUDA events)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...errors import BackendError
from ...models import build_model, make_inputs
from ...space import Arch, Shape
from ..timing import Clock, CudaEventClock, PerfCounterClock


@dataclass
class _Handle:
    model: Any
    inputs: dict[str, Any]


class TorchBackend:
    """``torch`` (CPU) and ``torch-cuda`` (GPU, fp32). The model is built once per arch and reused
    across shapes; inputs are built and placed on the device in ``load``, outside the timing."""

    def __init__(self, threads: int = 1, device: str = "cpu", vocab_size: int = 30522, num_labels: int = 2) -> None:
        import torch  # noqa: PLC0415  lazy: torch

        if threads < 1:
            raise BackendError(f"threads must be >= 1, got {threads}")
        if device == "cuda" and not torch.cuda.is_available():
            raise BackendError("backend torch-cuda needs a CUDA GPU, and torch sees none")
        self.name = "torch" if device == "cpu" else "torch-cuda"
        self.device = device
        self.threads = threads
        self.vocab_size = vocab_size
        self.num_labels = num_labels
        self._torch = torch
        self._arch: Arch | None = None
        self._model: Any = None

    def load(self, arch: Arch, shape: Shape) -> _Handle:
        self._torch.set_num_threads(self.threads)  # torch's thread count is per process: set before each config
        if arch != self._arch:
            self._model = None
            self._model = self._build(arch)
            self._arch = arch
        inputs = {k: v.to(self.device) for k, v in make_inputs(shape, vocab_size=self.vocab_size).items()}
        return _Handle(self._model, inputs)

    def _build(self, arch: Arch) -> Any:
        return build_model(arch, vocab_size=self.vocab_size, num_labels=self.num_labels).to(self.device)

    def weight_bytes(self) -> int:
        """Bytes of the loaded model's parameters and buffers, in the dtype they are held in."""
        if self._model is None:
            return 0
        tensors = [*self._model.parameters(), *self._model.buffers()]
        return int(sum(t.numel() * t.element_size() for t in tensors))

    def run(self, handle: _Handle) -> object:
        with self._torch.inference_mode():
            return handle.model(**handle.inputs).logits

    def sync(self) -> None:
        if self.device == "cuda":
            self._torch.cuda.synchronize()

    def clock(self) -> Clock:
        return CudaEventClock() if self.device == "cuda" else PerfCounterClock()

    def close(self) -> None:
        self._model = None
        self._arch = None
        if self.device == "cuda":
            self._torch.cuda.empty_cache()
