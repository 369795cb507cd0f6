"""Deploy a distilled student in reduced precision: quantize its ONNX export to int8, score the quantized
model on the task's dev set (beside the fp32 score), and measure the deployed file's latency and memory.

    >>> report = deploy_int8("runs/student", task="sst2", data_dir="glue")
    >>> report["metric"], report["fp32_metric"], report["drop_points"]

Used by ``kdnas-bench distill --quantize int8`` and by ``search --final`` on an int8 backend. Any saved model
folder (a student, a teacher, a BERT-style backbone) is exported on its own by :func:`export_folder`
(``kdnas-bench export``)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .distill.data import batches, encode, get_task, load_split
from .distill.lengths import trained_max_length
from .distill.taskspec import Task, TaskRef
from .errors import KdnasError
from .export import INPUT_NAMES, export_onnx
from .lazy import lazy_module
from .models import arch_of_model_dir, make_inputs
from .profiling.backends import make_backend
from .profiling.backends.ort_int8 import quantize_onnx
from .profiling.measure import CHECK_TIMING
from .profiling.memory import MemoryProbe, unsupported
from .space import Arch, Shape

if TYPE_CHECKING:
    import onnxruntime as ort
    import torch
    import transformers
    from transformers.utils import logging as hf_logging
else:  # heavy libraries load on first use
    ort = lazy_module("onnxruntime")
    torch = lazy_module("torch")
    transformers = lazy_module("transformers")
    hf_logging = lazy_module("transformers.utils.logging")

QUANTIZE = ("int8",)
INT8_FILE = "model.int8.onnx"
FP32_FILE = "model.onnx"
REPORT_FILE = "quantized.json"


def quantize_student(student_dir: str | Path) -> Path:
    """``model.onnx`` of a saved student -> ``model.int8.onnx`` (dynamic, per-channel; see :mod:`ort_int8`)."""
    folder = Path(student_dir)
    src = folder / FP32_FILE
    if not src.is_file():
        raise KdnasError(f"{folder} has no {FP32_FILE} to quantize (distil with an output folder first)")
    return quantize_onnx(src, folder / INT8_FILE)


def _session(path: Path, threads: int) -> Any:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def evaluate_onnx(path: str | Path, task: TaskRef, *, data_dir: str | Path | None, tokenizer_dir: str | Path,
                  threads: int = 1, batch_size: int = 64, max_length: int | None = None) -> dict[str, float]:
    """The task's dev metrics of an exported model run by ONNX Runtime (fp32 or int8); ``max_length`` None: the
    length the model was trained with (its folder's metrics.json, else 128)."""
    t = get_task(task)
    max_length = max_length or trained_max_length(Path(tokenizer_dir))
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir))
    dev = encode(load_split(t, "dev", data_dir), tokenizer, max_length=max_length)
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
    from .profiling.runner import measure  # noqa: PLC0415  lazy: pandas, pyarrow (via profiling.runner)

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


def deploy_int8(student_dir: str | Path, *, task: TaskRef, data_dir: str | Path | None, fp32_metrics: dict[str, float],
                threads: int = 1) -> dict[str, Any]:
    """Quantize a saved student, score the int8 model on dev, and write ``quantized.json`` beside it (and a
    ``quantized`` entry into its ``metrics.json``). ``fp32_metrics``: the student's own dev metrics."""
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


# -- a saved model folder on its own: ``kdnas-bench export`` ------------------------------------------------
EXPORT_REPORT = "export.json"
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")  # either makes a BERT tokenizer


def check_model_folder(folder: str | Path) -> Path:
    """A saved model folder fit to export (config.json of a BERT-style encoder, model.safetensors, a tokenizer),
    else one line naming what is missing. Reads no weights."""
    path = Path(folder).expanduser()
    if not path.exists():
        raise KdnasError(f"--model {folder}: no such folder")
    if not path.is_dir():
        raise KdnasError(f"--model {folder} is a file; give a saved model folder (config.json, model.safetensors)")
    if not (path / "config.json").is_file():
        raise KdnasError(f"--model {folder} has no config.json: not a saved model folder")
    arch_of_model_dir(path)
    if not any(path.glob("model*.safetensors")):
        raise KdnasError(f"--model {folder} has no model.safetensors (weights are read from safetensors only)")
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise KdnasError(f"--model {folder} has no tokenizer ({' or '.join(TOKENIZER_FILES)})")
    return path


def check_export_out(out: str | Path, model_dir: Path, overwrite: bool) -> Path:
    """The folder an export goes to: new (or empty), or replaced with ``overwrite``; never the model's own."""
    path = Path(out).expanduser()
    here, src = path.resolve(), model_dir.resolve()
    if here == src or here in src.parents:
        raise KdnasError(f"--out {out} holds the model folder {model_dir}; write the export elsewhere")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise KdnasError(f"--out {out} already exists and is not empty; pass --overwrite to replace it")
    return path


def _load_for_export(folder: Path) -> tuple[Any, Any, str]:
    """(model in fp32 eval mode, tokenizer, its ONNX output): a sequence classifier's logits, else an encoder's
    last hidden state."""
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        config = transformers.AutoConfig.from_pretrained(str(folder))
        head = any(a.endswith("ForSequenceClassification") for a in (config.architectures or []))
        loader = transformers.AutoModelForSequenceClassification if head else transformers.AutoModel
        model = loader.from_pretrained(str(folder), config=config)
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
    except Exception as exc:  # a checkpoint fails to load in many ways (JSON, typed config, weights): user errors
        why = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise KdnasError(f"cannot load --model {folder}: {why}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    return model.float().eval(), tokenizer, "logits" if head else "last_hidden_state"


def _onnx_vs_torch(model: Any, onnx_path: Path, output: str) -> float:
    """The largest absolute difference between the ONNX file's output and the torch model's, on seeded inputs."""
    inputs = make_inputs(Shape(2, 16), vocab_size=model.config.vocab_size)
    with torch.no_grad():
        ref = getattr(model(**inputs), output).numpy()
    got = _session(onnx_path, 1).run(None, {k: inputs[k].numpy() for k in INPUT_NAMES})[0]
    return float(np.abs(got - ref).max())


def _check_task(task: TaskRef, model_dir: Path, data_dir: str | Path | None) -> Task:
    """The task of the accuracy check, checked against the model's head, its dev data read now (before any export)."""
    t = get_task(task)
    cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    if not any(str(a).endswith("ForSequenceClassification") for a in cfg.get("architectures") or []):
        raise KdnasError(f"--model {model_dir} has no classification head (a backbone): there is no {t.name} "
                         "accuracy to check; export it without --task, or fine-tune it first (kdnas-bench teacher finetune)")
    labels = int(cfg.get("num_labels") or len(cfg.get("id2label") or {}) or 2)
    if labels != t.num_labels:
        raise KdnasError(f"--model {model_dir} has {labels} output label(s) but task {t.name} needs {t.num_labels}")
    load_split(t, "dev", data_dir)
    return t


def _accuracy(folder: Path, files: dict[str, str], task: Task, data_dir: str | Path | None, threads: int) -> dict[str, Any]:
    """fp32 and int8 dev metrics of the exported files (ONNX Runtime), and the drop."""
    metrics = {p: evaluate_onnx(folder / f, task, data_dir=data_dir, tokenizer_dir=folder, threads=threads)
               for p, f in files.items()}
    key = task.primary_metric
    out: dict[str, Any] = {"task": task.name, "primary_metric": key, "metrics": metrics,
                           "fp32_metric": metrics["fp32"][key]}
    if "int8" in metrics:
        out |= {"int8_metric": metrics["int8"][key], "drop_points": 100 * (metrics["fp32"][key] - metrics["int8"][key])}
    return out


def _publish(staging: Path, out: Path) -> None:
    """``staging`` becomes ``out``; an existing ``out`` is removed only once the new one is in place."""
    if not out.exists():
        staging.rename(out)
        return
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    out.rename(old)
    staging.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def export_folder(model_dir: str | Path, out: str | Path, *, quantize: str | None = None, task: TaskRef | None = None,
                  data_dir: str | Path | None = None, threads: int = 1, overwrite: bool = False) -> dict[str, Any]:
    """Export a saved model folder to ONNX (``model.onnx``; with ``quantize="int8"`` also ``model.int8.onnx``,
    dynamic quantization) into ``out`` with its tokenizer and config.json, and ``export.json``: the files, the
    fp32 file's largest difference from the torch model and, with ``task`` (and ``data_dir``), the dev metric of
    each file. Every input is checked before the export; ``out`` appears whole or not at all."""
    if quantize is not None and quantize not in QUANTIZE:
        raise KdnasError(f"unknown --quantize {quantize!r} (choose from {', '.join(QUANTIZE)})")
    src = check_model_folder(model_dir)
    target = check_export_out(out, src, overwrite)
    t = _check_task(task, src, data_dir) if task is not None else None
    model, tokenizer, output = _load_for_export(src)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        files = {"fp32": FP32_FILE} | ({"int8": INT8_FILE} if quantize else {})
        export_onnx(model, staging / FP32_FILE, output=output)
        if quantize:
            quantize_onnx(staging / FP32_FILE, staging / INT8_FILE)
        tokenizer.save_pretrained(str(staging))
        model.config.save_pretrained(str(staging))
        report: dict[str, Any] = {
            "model": str(src), "arch": arch_of_model_dir(src).to_dict(), "output": output, "files": files,
            "onnx_bytes": {p: (staging / f).stat().st_size for p, f in files.items()},
            "fp32_max_abs_diff_vs_torch": _onnx_vs_torch(model, staging / FP32_FILE, output),
        }
        if quantize:
            report["quantization"] = "onnxruntime quantize_dynamic, per-channel int8 weights"
        if t is not None:
            report["accuracy"] = _accuracy(staging, files, t, data_dir, threads)
        _write_json(staging / EXPORT_REPORT, report)
        _publish(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {**report, "out": str(target)}
