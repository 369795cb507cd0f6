"""Training on a real GPU (skipped without one; ``benchmarks/gpu_check.sh`` runs these on the lent GPU machine):
``cuda`` resolves with bf16 where the GPU has it, teacher fine-tune, distillation (cached and live teacher) and
the supernet train there and hand their models back, a real CUDA out-of-memory error is a candidate's failure
that frees its memory, and a search with the supernet evaluator, re-ranking and a final runs on the GPU.
That the GPU code path sees the CPU's examples in the CPU's order is pinned on the CPU (test_cpu_pinned.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from kdnas_bench.space import Arch

from .helpers import DEV, GLUE, TINY_SPACE, save_tiny, sst2_glue
from .test_cpu_pinned import FIXTURE, compute

pytestmark = [pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"),
              pytest.mark.skipif(not (GLUE / "SST-2" / "dev.tsv").is_file(), reason="no GLUE SST-2 folder")]


def test_cuda_resolves_with_bf16_where_the_gpu_has_it() -> None:
    from kdnas_bench.distill.accelerator import resolve

    acc = resolve("cuda")
    assert acc.is_cuda and acc.on_device and resolve("auto") == acc
    assert acc.bf16 == torch.cuda.is_bf16_supported()
    assert acc.describe()["gpu"] == torch.cuda.get_device_name(0)


def test_finetune_distill_and_supernet_train_on_the_gpu(tmp_path: Path) -> None:
    runs = compute(tmp_path, accelerator="cuda")
    pinned = json.loads(FIXTURE.read_text(encoding="utf-8"))["runs"]
    for name, run in runs.items():
        assert math.isfinite(run["weights"]["sum"]) and run["weights"]["tensors"] == pinned[name]["weights"]["tensors"]
    for name in ("teacher", "distill_cached", "distill_live"):
        config = json.loads((tmp_path / name / "metrics.json").read_text())["config"]
        assert config["accelerator"] == "cuda" and config["gpu"] == torch.cuda.get_device_name(0), config
    assert json.loads((tmp_path / "supernet" / "supernet.json").read_text())["accelerator"] == "cuda"
    assert (tmp_path / "distill_cached" / "model.onnx").is_file()  # exported from the model handed back to the CPU


def test_a_real_cuda_out_of_memory_is_the_candidates_failure_and_frees_its_memory() -> None:
    from kdnas_bench.search.executor import evaluate_candidate

    class Greedy:
        def evaluate(self, arch: Arch) -> Any:
            held = torch.ones(1 << 20, device="cuda")  # noqa: F841  (held by the frame the error keeps)
            return torch.empty(1 << 50, device="cuda")  # 4 PiB

        def describe(self) -> dict[str, Any]:
            return {}

    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    ev = evaluate_candidate(Greedy(), Arch(1, 32, 2, 64))  # type: ignore[arg-type]
    assert ev.error is not None and "out of memory" in ev.error.lower() and math.isnan(ev.metric)
    assert torch.cuda.memory_allocated() == before


def test_search_with_supernet_rerank_and_final_on_the_gpu(preds: Path, tmp_path: Path) -> None:
    from kdnas_bench.keys import DatasetKey
    from kdnas_bench.search.api import FinalOptions, SearchRequest, SupernetOptions, run_search

    glue = sst2_glue(tmp_path / "glue")
    teacher = save_tiny(tmp_path / "teacher", 2)
    req = SearchRequest(DatasetKey(DEV, "torch", 1), (50.0,), "sst2", episodes=2, candidates=3, seed=0,
                        evaluator="supernet", teacher=str(teacher), data_dir=str(glue), space=str(TINY_SPACE),
                        supernet=SupernetOptions(examples=96, epochs=1.0, rerank_top=2, rerank_examples=48,
                                                 rerank_epochs=1.0),
                        final=FinalOptions(96, 1.0), predictors=str(preds), run_dir=str(tmp_path / "run"),
                        accelerator="cuda")
    outcome = run_search(req)
    (w,) = outcome.result.winners
    assert math.isfinite(w.extra["final_metric"]) and "final_error" not in w.extra
    records = [json.loads(x) for x in (tmp_path / "run" / "evaluations.jsonl").read_text().splitlines()]
    assert records and not any("error" in r for r in records)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["config"]["evaluator"]["accelerator"] == "cuda"
    assert json.loads((tmp_path / "run" / "supernet" / "supernet.json").read_text())["accelerator"] == "cuda"
