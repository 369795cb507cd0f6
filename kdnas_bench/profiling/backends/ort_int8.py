"""ONNX Runtime with dynamic int8 quantization (``onnxruntime-int8``), on CPU.

The fp32 export of :mod:`.ort` (cached) is quantized once per arch by ONNX Runtime's own tooling
(``onnxruntime.quantization.quantize_dynamic``): int8 weights per output channel, activations quantized on
the fly per call (uint8), MatMuls with a constant weight and the embedding Gathers quantized; the
attention's activation-by-activation MatMuls stay fp32. Per-channel scales halved the logit error of
per-tensor ones on the conformance model at the same speed. The quantized file is cached beside the
fp32 one (atomic write), so a rerun or a second process reuses it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from ...space import Arch
from .ort import OrtBackend

SUFFIX = "-int8pc.onnx"


def quantize_onnx(src: Path, dst: Path, *, per_channel: bool = True) -> Path:
    """Dynamic int8 quantization of the fp32 ONNX model ``src`` into ``dst`` (temp file, then rename)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: PLC0415  lazy: onnxruntime

    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx.tmp", dir=dst.parent)
    os.close(fd)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a pre-processing hint for every model
    try:
        quantize_dynamic(str(src), tmp, per_channel=per_channel, weight_type=QuantType.QInt8)
        os.replace(tmp, dst)
    finally:
        root.setLevel(level)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dst


class OrtInt8Backend(OrtBackend):
    """``onnxruntime`` on the dynamically quantized model; everything else (threads, session options,
    inputs, timing) is the fp32 backend's."""

    def __init__(self, threads: int = 1, **kw: object) -> None:
        super().__init__(threads=threads, device="cpu", **kw)  # type: ignore[arg-type]
        self.name = "onnxruntime-int8"

    def _ensure_model(self, arch: Arch) -> Path:
        if self.model_path is not None:  # an already quantized model (e.g. a deployed student)
            return super()._ensure_model(arch)
        fp32 = super()._ensure_model(arch)
        path = fp32.with_name(fp32.name.removesuffix(".onnx") + SUFFIX)
        if not path.exists():
            quantize_onnx(fp32, path)
        return path
