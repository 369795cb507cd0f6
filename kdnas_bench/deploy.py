"""Deploy a distilled student in reduced precision: quantize its ONNX export to int8, score the quantized
model on the task's dev set (beside the fp32 score), and measure the deployed file's latency and memory.

    >>> report = deploy_int8("runs/student", task="sst2", data_dir="../shared/data/glue")
    >>> report["metric"], report["fp32_metric"], report["drop_points"]

Used by ``kdnas-bench distill --quantize int8`` and by ``search --final`` on an int8 backend."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import KdnasError
from .space import Arch, Shape

QUANTIZE = ("int8",)
INT8_FILE = "model.int8.onnx"
FP32_FILE = "model.onnx"
REPORT_FILE = "quantized.json"


def quantize_student(student_dir: str | Path) -> Path:
    """``model.onnx`` of a saved student -> ``model.int8.onnx`` (dynamic, per-channel; see :mod:`ort_int8`)."""
    from .profiling.backends.ort_int8 import quantize_onnx

    folder = Path(student_dir)
    src = folder / FP32_FILE
    if not src.is_file():
        raise KdnasError(f"{folder} has no {FP32_FILE} to quantize (distil with an output folder first)")
    return quantize_onnx(src, folder / INT8_FILE)


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def evaluate_onnx(path: str | Path, task: Any, *, data_dir: str | Path | None, tokenizer_dir: str | Path,
                  threads: int = 1, batch_size: int = 64, max_length: int = 128) -> dict[str, float]:
    """The task's dev metrics of an exported model run by ONNX Runtime (fp32 or int8)."""
    from transformers import AutoTokenizer

    from .distill.data import batches, encode, get_task, load_split

    t = get_task(task)
    dev = encode(load_split(t, "dev", data_dir), AutoTokenizer.from_pretrained(str(tokenizer_dir)), max_length=max_length)
    sess = _session(Path(path), threads)
    out = np.zeros(len(dev), dtype=np.float32 if t.is_regression else np.int64)
    for batch in batches(dev, batch_size, shuffle=False):
        feeds = {k: batch[k].numpy() for k in ("input_ids", "attention_mask", "token_type_ids")}
        logits = sess.run(None, feeds)[0]
        out[batch["index"].numpy()] = logits[:, 0] if t.is_regression else logits.argmax(-1)
    return t.score(out, dev.labels)


def measure_onnx(path: str | Path, arch: Arch, shape: Shape, *, backend: str = "onnxruntime-int8", threads: int = 1,
                 vocab_size: int = 30522, memory: bool = True) -> dict[str, Any]:
    """Latency (the shared timing primitive) and peak memory (a fresh child process) of this exact file."""
    from .profiling.backends import make_backend
    from .profiling.measure import CHECK_TIMING
    from .profiling.memory import MemoryProbe, unsupported
    from .profiling.runner import measure

    opts = {"model_path": str(path), "vocab_size": vocab_size}
    bk = make_backend(backend, threads, **opts)
    try:
        m = measure(bk, arch, shape, CHECK_TIMING)
    finally:
        bk.close()
    out: dict[str, Any] = {"measured_latency_ms": m.timing.median_ms if m.timing else None, "measure_error": m.error}
    if m.timing is not None:  # the spread: a search's budget check judges nothing on a noisy timing
        out |= {"measured_p90_ms": m.timing.p90_ms, "measured_cv": m.timing.cv, "measured_iqr_ratio": m.timing.iqr_ratio}
    if memory and unsupported() is None:
        probe = MemoryProbe(backend, threads, opts)
        try:
            mem = probe.measure(arch, shape)
            out |= {"measured_peak_mb": mem.peak_mb, "weight_mb": mem.weight_bytes / 2**20}
        except KdnasError as exc:
            out["memory_error"] = str(exc)
        finally:
            probe.close()
    return out


def deploy_int8(student_dir: str | Path, *, task: Any, data_dir: str | Path | None, fp32_metrics: dict[str, float],
                threads: int = 1) -> dict[str, Any]:
    """Quantize a saved student, score the int8 model on dev, and write ``quantized.json`` beside it (and a
    ``quantized`` entry into its ``metrics.json``). ``fp32_metrics``: the student's own dev metrics."""
    from .distill.data import get_task

    folder = Path(student_dir)
    t = get_task(task)
    int8 = quantize_student(folder)
    metrics = evaluate_onnx(int8, t, data_dir=data_dir, tokenizer_dir=folder, threads=threads)
    key = t.primary_metric
    report: dict[str, Any] = {
        "precision": "int8", "onnx": str(int8), "method": "onnxruntime quantize_dynamic, per-channel int8 weights",
        "metrics": metrics, "primary_metric": key, "metric": metrics[key], "fp32_metric": fp32_metrics[key],
        "drop_points": 100 * (fp32_metrics[key] - metrics[key]),
        "onnx_bytes": {"fp32": (folder / FP32_FILE).stat().st_size, "int8": int8.stat().st_size},
    }
    _write_json(folder / REPORT_FILE, report)
    mpath = folder / "metrics.json"
    if mpath.is_file():
        doc = json.loads(mpath.read_text(encoding="utf-8"))
        doc["quantized"] = report
        _write_json(mpath, doc)
    return report


def _write_json(path: Path, doc: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
