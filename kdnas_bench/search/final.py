"""After the search: distil each winner on the full task, export it, and check its real latency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..space import Arch, Shape
from .study import SearchResult


def this_machine_is(device_id: str, backend: str) -> bool:
    from ..profiling.device import hardware

    return hardware(with_gpu=backend.endswith("cuda")).device_id == device_id


def measure_latency(arch: Arch, shape: Shape, backend: str, threads: int) -> dict[str, Any]:
    from ..profiling.backends import make_backend
    from ..profiling.runner import measure
    from ..profiling.timing import TimingConfig

    bk = make_backend(backend, threads)
    try:
        m = measure(bk, arch, shape, TimingConfig(warmup=5, min_calls=20, min_seconds=1.0, max_seconds=10.0))
    finally:
        bk.close()
    if m.timing is None:
        return {"measured_latency_ms": None, "measure_error": m.error}
    return {"measured_latency_ms": m.timing.median_ms, "measured_p90_ms": m.timing.p90_ms, "measured_cv": m.timing.cv}


def measure_memory(arch: Arch, shape: Shape, backend: str, threads: int) -> dict[str, Any]:
    """Peak resident memory of a forward pass (MiB), in a fresh child process (:mod:`..profiling.memory`)."""
    from ..errors import KdnasError
    from ..profiling.memory import MemoryProbe, unsupported

    reason = unsupported()
    if reason:
        return {"measured_peak_mb": None, "memory_error": reason}
    probe = MemoryProbe(backend, threads)
    try:
        mem = probe.measure(arch, shape)
        return {"measured_peak_mb": mem.peak_mb, "weight_mb": mem.weight_bytes / 2**20}
    except KdnasError as exc:
        return {"measured_peak_mb": None, "memory_error": str(exc)}
    finally:
        probe.close()


def _deploy(out: Path, arch: Arch, shape: Shape, *, task: str, data_dir: str | None, backend: str, threads: int,
            fp32_metrics: dict[str, float], local: bool) -> dict[str, Any]:
    """An int8 backend deploys the quantized student: score it on dev, and measure that very file."""
    import json

    from ..deploy import deploy_int8, measure_onnx

    report = deploy_int8(out, task=task, data_dir=data_dir, fp32_metrics=fp32_metrics, threads=threads)
    info: dict[str, Any] = {"quantized": report, "deployed_metric": report["metric"], "deployed": report["onnx"]}
    if local:
        vocab = int(json.loads((out / "config.json").read_text(encoding="utf-8")).get("vocab_size", 30522))
        info |= measure_onnx(report["onnx"], arch, shape, backend=backend, threads=threads, vocab_size=vocab)
    return info


def finalize(result: SearchResult, *, teacher: Any, task: str, data_dir: str | None, device_id: str, backend: str,
             threads: int, shape: Shape, max_examples: int | None, epochs: float, losses: str, seed: int,
             progress: bool = False, text: str | None = None, init: str = "inherit",
             supernet: str | None = None, budget_mb: float | None = None) -> SearchResult:
    """Fully distil every distinct winner into ``RUN/final/<arch>/`` (HF + safetensors + ONNX + metrics.json);
    when this machine is the named device, measure the exported student and say whether the budget held.
    ``task="agnostic"``: task-agnostic distillation on ``text`` (None: the stdlib docstrings). Each student
    starts from ``init`` (:func:`~kdnas_bench.distill.trainer.init_student`), or from its sub-network of the
    ``supernet`` folder when given. On an int8 backend the student is quantized, its int8 dev metric
    reported beside fp32, and the *deployed* int8 file measured against the budget; with ``budget_mb`` the
    measured peak memory is held against it too."""
    from ..distill.agnostic import AGNOSTIC, distill_agnostic
    from ..distill.trainer import distill
    from ..profiling.backends import BACKENDS

    local = this_machine_is(device_id, backend)
    int8 = BACKENDS[backend].precision == "int8" and task != AGNOSTIC
    done: dict[Arch, dict[str, Any]] = {}
    for w in result.winners:
        if w.arch not in done:
            out = Path(result.run_dir) / "final" / f"{w.arch.layers}L-{w.arch.hidden}H-{w.arch.heads}A-{w.arch.ffn}F"
            if task == AGNOSTIC:
                res = distill_agnostic(teacher, w.arch, text=text, max_examples=max_examples, epochs=epochs,
                                       losses=losses, seed=seed, out=out, progress=progress)
            else:
                start = None
                if supernet is not None:
                    from .evaluators import load_supernet

                    start = load_supernet(supernet).extract(w.arch)
                res = distill(teacher, task, w.arch, data_dir=data_dir, max_examples=max_examples, epochs=epochs,
                              losses=losses, seed=seed, out=out, progress=progress, init=init, init_model=start)
            info: dict[str, Any] = {"final_metrics": res.metrics, "final_metric": res.primary,
                                    "final_train_examples": res.train_examples, "final_train_seconds": res.train_seconds,
                                    "student_dir": str(out), "final_init": "supernet" if supernet else init}
            if int8:
                info |= _deploy(out, w.arch, shape, task=task, data_dir=data_dir, backend=backend, threads=threads,
                                fp32_metrics=res.metrics, local=local)
            elif local:
                info |= measure_latency(w.arch, shape, backend, threads)
                if budget_mb is not None:
                    info |= measure_memory(w.arch, shape, backend, threads)
            info.setdefault("measured_latency_ms", None)
            done[w.arch] = info
        extra = dict(done[w.arch])
        measured = extra.get("measured_latency_ms")
        extra["budget_held"] = None if measured is None else bool(measured <= w.budget_ms)
        if budget_mb is not None:
            peak = extra.get("measured_peak_mb")
            extra["budget_mb"] = budget_mb
            extra["memory_held"] = None if peak is None else bool(peak <= budget_mb)
        extra["measured_on_this_machine"] = local
        w.extra.update(extra)
    return result
