"""Export a student: ONNX (beside the HF folder a distillation saves, for the ONNX Runtime backend, and for
``kdnas-bench export``)."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from .models import make_inputs
from .space import Shape

INPUT_NAMES = ["input_ids", "attention_mask", "token_type_ids"]


OUTPUTS = ("logits", "last_hidden_state")  # a sequence classifier's output; an encoder's (a backbone without head)


def export_onnx(model: Any, path: Path, *, seq: int = 16, opset: int = 17, output: str = "logits") -> Path:
    """Export a sequence-classification model (``output="logits"``) or a bare encoder (``"last_hidden_state"``)
    to ONNX atomically (temp file, then rename)."""
    import torch  # noqa: PLC0415  lazy: torch

    class _Wrapper(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return getattr(out, output)

    wrapper = _Wrapper(model.cpu()).eval()
    inputs = make_inputs(Shape(2, seq), vocab_size=model.config.vocab_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx.tmp", dir=path.parent)
    os.close(fd)
    try:
        # the tracer's notes (TracerWarning on HF's shape checks, aten::index in opset 17) are expected here
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper,
                tuple(inputs[k] for k in INPUT_NAMES),
                tmp,
                input_names=INPUT_NAMES,
                output_names=[output],
                dynamic_axes={**{k: {0: "batch", 1: "seq"} for k in INPUT_NAMES},
                              output: {0: "batch"} if output == "logits" else {0: "batch", 1: "seq"}},
                opset_version=opset,
                dynamo=False,
            )
        wrapper.eval()
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
