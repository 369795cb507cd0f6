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


def finalize(result: SearchResult, *, teacher: Any, task: str, data_dir: str | None, device_id: str, backend: str,
             threads: int, shape: Shape, max_examples: int | None, epochs: float, losses: str, seed: int,
             progress: bool = False, text: str | None = None, init: str = "inherit",
             supernet: str | None = None) -> SearchResult:
    """Fully distil every distinct winner into ``RUN/final/<arch>/`` (HF + safetensors + ONNX + metrics.json);
    when this machine is the named device, measure the exported student and say whether the budget held.
    ``task="agnostic"``: task-agnostic distillation on ``text`` (None: the stdlib docstrings). Each student
    starts from ``init`` (:func:`~kdnas_bench.distill.trainer.init_student`), or from its sub-network of the
    ``supernet`` folder when given."""
    from ..distill.agnostic import AGNOSTIC, distill_agnostic
    from ..distill.trainer import distill

    local = this_machine_is(device_id, backend)
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
            info |= measure_latency(w.arch, shape, backend, threads) if local else {"measured_latency_ms": None}
            done[w.arch] = info
        extra = dict(done[w.arch])
        measured = extra.get("measured_latency_ms")
        extra["budget_held"] = None if measured is None else bool(measured <= w.budget_ms)
        extra["measured_on_this_machine"] = local
        w.extra.update(extra)
    return result
