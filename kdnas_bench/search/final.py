"""After the search: distil each winner on the full task, export it, and check its real latency."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..profiling.measure import measure_latency, measure_memory, this_machine_is
from ..space import Arch, Shape
from .study import SearchResult


def _deploy(out: Path, arch: Arch, shape: Shape, *, task: Any, data_dir: str | None, backend: str, threads: int,
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


def finalize(result: SearchResult, *, teacher: Any, task: Any, data_dir: str | None, device_id: str, backend: str,
             threads: int, shape: Shape, max_examples: int | None, epochs: float, losses: str, seed: int,
             progress: bool = False, text: str | None = None, init: str = "inherit",
             supernet: str | None = None, budget_mb: float | None = None) -> SearchResult:
    """Fully distil every distinct winner into ``RUN/final/<arch>/`` (HF + safetensors + ONNX + metrics.json);
    when this machine is the named device, measure the exported student and say whether the budget held.
    ``task="agnostic"``: task-agnostic distillation on ``text`` (None: the stdlib docstrings). Each student
    starts from ``init`` (:func:`~kdnas_bench.distill.trainer.init_student`), or from its sub-network of the
    ``supernet`` folder when given. On an int8 backend the student is quantized, its int8 dev metric
    reported beside fp32, and the *deployed* int8 file measured against the budget; with ``budget_mb`` the
    measured peak memory is held against it too. Returns a new result; ``result`` is left as it was."""
    from ..distill.agnostic import AGNOSTIC
    from ..distill.trainer import distill
    from ..profiling.backends import BACKENDS

    local = this_machine_is(device_id, backend)
    int8 = BACKENDS[backend].precision == "int8" and task != AGNOSTIC
    done: dict[Arch, dict[str, Any]] = {}
    winners = []
    for w in result.winners:
        if w.arch not in done:
            out = Path(result.run_dir) / "final" / f"{w.arch.layers}L-{w.arch.hidden}H-{w.arch.heads}A-{w.arch.ffn}F"
            start = None
            if supernet is not None:
                from .evaluators import load_supernet

                start = load_supernet(supernet).extract(w.arch)
            res = distill(teacher, task, w.arch, data_dir=data_dir, text=text, max_examples=max_examples,
                          epochs=epochs, losses=losses, seed=seed, out=out, progress=progress, init=init,
                          init_model=start)
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
        winners.append(replace(w, extra={**w.extra, **extra}))
    return replace(result, winners=winners)


__all__ = ["finalize", "measure_latency", "this_machine_is"]  # measure_latency: moved to kdnas_bench.profiling.measure
