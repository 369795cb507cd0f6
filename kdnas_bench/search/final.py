"""After the search: distil each winner on the full task, export it, and check its real latency."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..profiling.measure import measure_latency, this_machine_is
from ..space import Arch, Shape
from .study import SearchResult


def finalize(result: SearchResult, *, teacher: Any, task: str, data_dir: str | None, device_id: str, backend: str,
             threads: int, shape: Shape, max_examples: int | None, epochs: float, losses: str, seed: int,
             progress: bool = False, text: str | None = None, init: str = "inherit",
             supernet: str | None = None) -> SearchResult:
    """Fully distil every distinct winner into ``RUN/final/<arch>/`` (HF + safetensors + ONNX + metrics.json);
    when this machine is the named device, measure the exported student and say whether the budget held.
    ``task="agnostic"``: task-agnostic distillation on ``text`` (None: the stdlib docstrings). Each student
    starts from ``init`` (:func:`~kdnas_bench.distill.trainer.init_student`), or from its sub-network of the
    ``supernet`` folder when given. Returns a new result; ``result`` is left as it was."""
    from ..distill.trainer import distill

    local = this_machine_is(device_id, backend)
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
            info |= measure_latency(w.arch, shape, backend, threads) if local else {"measured_latency_ms": None}
            done[w.arch] = info
        extra = dict(done[w.arch])
        measured = extra.get("measured_latency_ms")
        extra["budget_held"] = None if measured is None else bool(measured <= w.budget_ms)
        extra["measured_on_this_machine"] = local
        winners.append(replace(w, extra={**w.extra, **extra}))
    return replace(result, winners=winners)


__all__ = ["finalize", "measure_latency", "this_machine_is"]  # measure_latency: moved to kdnas_bench.profiling.measure
