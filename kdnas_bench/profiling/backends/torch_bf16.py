"""PyTorch eager in bfloat16 on CPU (``torch-bf16``): weights and activations in bf16, logits cast back.

Only where the CPU computes bf16 natively: the ``avx512_bf16`` or ``amx_bf16`` flag in ``/proc/cpuinfo``
(oneDNN then runs bf16 matmuls on it; elsewhere bf16 is emulated and slower than fp32, which no deployer
wants measured). Without either flag the backend refuses in one line naming them.
"""

from __future__ import annotations

from typing import Any

from ...errors import BackendError
from ...space import Arch
from ..cpuflags import cpu_flags
from .torch_eager import TorchBackend

BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def bf16_unsupported() -> str | None:
    """Why this CPU cannot run ``torch-bf16`` natively, or ``None`` when it can."""
    if cpu_flags() & set(BF16_FLAGS):
        return None
    return f"backend torch-bf16 needs a CPU flag {' or '.join(BF16_FLAGS)}, and this CPU has neither"


class TorchBf16Backend(TorchBackend):
    def __init__(self, threads: int = 1, **kw: Any) -> None:
        reason = bf16_unsupported()
        if reason:
            raise BackendError(reason)
        super().__init__(threads=threads, device="cpu", **kw)
        self.name = "torch-bf16"

    def _build(self, arch: Arch) -> Any:
        return super()._build(arch).to(self._torch.bfloat16)
