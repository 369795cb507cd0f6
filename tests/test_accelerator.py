"""Training on an accelerator: ``--accelerator`` resolution (``cuda`` without a GPU is a one-line error before
any work in every verb that trains, ``auto`` is the CPU here), the device batches equal the CPU ones, Ray
tasks carry their GPU share, and a candidate's own failure (CUDA out of memory, a sub-network that cannot be
built) is recorded as that candidate's and the search goes on. The GPU path itself, run on the CPU
("staged"), is pinned against the CPU numbers in test_cpu_pinned.py; on a GPU, benchmarks/gpu_check.sh."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from kdnas_bench.distill.accelerator import (
    CPU,
    AcceleratorError,
    CandidateFailure,
    DeviceSet,
    accelerator_of,
    batches_on,
    failure_message,
    resolve,
)
from kdnas_bench.distill.data import Encoded, collate
from kdnas_bench.errors import KdnasError
from kdnas_bench.search.domain import SearchError
from kdnas_bench.space import Arch

from .helpers import DEV, GLUE, TINY_SPACE, search_args, sst2_glue

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
needs_glue = pytest.mark.skipif(not (GLUE / "SST-2" / "dev.tsv").is_file(), reason="../shared/data/glue not present")


# -- resolution --------------------------------------------------------------------------------------
@no_gpu
def test_auto_is_the_cpu_and_cuda_is_a_one_line_error_without_a_gpu() -> None:
    assert resolve("auto") == CPU and resolve(None) == CPU and resolve("cpu") == CPU
    assert not CPU.on_device and CPU.describe() == {"accelerator": "cpu"}
    for name in ("cuda", "cuda:0", "CUDA"):
        with pytest.raises(AcceleratorError) as err:
            resolve(name)
        assert "no CUDA GPU" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(AcceleratorError, match="must be one of"):
        resolve("tpu")
    assert accelerator_of(torch.nn.Linear(2, 2)) == CPU


@no_gpu
@pytest.mark.parametrize("verb", ["teacher-finetune", "distill", "supernet-train", "search", "quickstart"])
@needs_glue
def test_accelerator_cuda_without_a_gpu_fails_in_one_line_before_any_work(verb: str, run_cli, tmp_path: Path,
                                                                         tiny_teacher: Path) -> None:
    out = tmp_path / "out"
    tiny_glue = sst2_glue(tmp_path / "glue")
    args = {
        "teacher-finetune": ["teacher", "finetune", "--task", "sst2", "--data-dir", str(tiny_glue), "--out", str(out)],
        "distill": ["distill", "--teacher", str(tiny_teacher), "--task", "sst2", "--arch", "1,32,2,64",
                    "--data-dir", str(tiny_glue), "--out", str(out)],
        "supernet-train": ["supernet", "train", "--teacher", str(tiny_teacher), "--task", "sst2", "--data-dir",
                           str(tiny_glue), "--space", str(TINY_SPACE), "--out", str(out)],
        "search": [*search_args(tmp_path / "preds", tiny_teacher, tiny_glue, out)],
        "quickstart": ["quickstart", "--out", str(out), "--data-dir", str(tiny_glue)],
    }[verb]
    code, _, stderr = run_cli(*args, "--accelerator", "cuda")
    assert code == 2, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--accelerator cuda: no CUDA GPU" in lines[0], stderr
    assert not out.exists()


# -- batches on the device ----------------------------------------------------------------------------
def _encoded(n: int = 37) -> Encoded:
    rng = np.random.default_rng(0)
    ids = [list(rng.integers(5, 100, size=int(rng.integers(2, 12)))) for _ in range(n)]
    types = [[int(i % 2) for i in range(len(x))] for x in ids]
    return Encoded(ids, types, rng.integers(0, 3, size=n).astype(np.int64), pad_id=0)


@pytest.mark.parametrize("shuffle,batching", [(True, "random"), (True, "length"), (False, "random")])
def test_device_batches_are_the_cpu_batches(shuffle: bool, batching: str) -> None:
    """The GPU path builds each batch by indexing padded device tensors: the same tensors as collate."""
    from kdnas_bench.distill.accelerator import Accelerator

    data = _encoded()
    staged = Accelerator(torch.device("cpu"), staged=True)
    cpu = list(batches_on(data, CPU, 8, shuffle=shuffle, seed=4, batching=batching))
    dev = list(batches_on(data, staged, 8, shuffle=shuffle, seed=4, batching=batching))
    assert len(cpu) == len(dev) == math.ceil(len(data) / 8)
    for a, b in zip(cpu, dev, strict=True):
        assert b["rows"] == a["index"].tolist()
        for key in ("input_ids", "attention_mask", "token_type_ids", "labels", "index"):
            assert torch.equal(a[key], b[key]), key
    rows = np.array([3, 0, 36])
    direct = DeviceSet(data, torch.device("cpu")).batch(rows, torch.from_numpy(rows))
    assert all(torch.equal(direct[k], v) for k, v in collate(data, rows.tolist()).items())


# -- failures of one candidate ----------------------------------------------------------------------
def test_failure_message_keeps_the_candidates_own_failures_only() -> None:
    oom = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert failure_message(oom) == "CUDA out of memory. Tried to allocate 2.00 GiB"
    assert failure_message(RuntimeError("CUDA error: out of memory")).startswith("out of memory: ")
    assert failure_message(CandidateFailure("cannot build student 1,30,4,64: ...")).startswith("cannot build")
    for other in (ValueError("bad"), KdnasError("teacher not found"), RuntimeError("shape mismatch")):
        assert failure_message(other) is None


def test_a_sub_network_that_cannot_be_built_is_a_candidate_failure(tiny_teacher: Path) -> None:
    from kdnas_bench.distill import load_teacher
    from kdnas_bench.distill.inherit import measure_importance
    from kdnas_bench.search.evaluators.base import extract
    from kdnas_bench.supernet.model import Supernet

    model = load_teacher(tiny_teacher).model
    net = Supernet.from_teacher(model, measure_importance(model, None), False)
    assert extract(net, Arch(1, 32, 2, 64)) is not None
    with pytest.raises(CandidateFailure, match="cannot build sub-network 3,64,4,128"):
        extract(net, Arch(3, 64, 4, 128))  # deeper than the supernet


@needs_glue
def test_out_of_memory_and_unbuildable_candidates_are_recorded_and_the_search_goes_on(
        preds: Path, tiny_teacher: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Injected on the CPU: the first candidate raises CUDA's out-of-memory error, the second cannot be built
    (the model code refuses its shape); both are logged with their message, the others are scored, a winner
    is chosen among them, and a rerun resumes without redoing the failures."""
    import kdnas_bench.distill.trainer as trainer
    from kdnas_bench.keys import DatasetKey
    from kdnas_bench.search.api import SearchRequest, run_search
    from kdnas_bench.search.evaluators import ProxyDistillEvaluator

    tiny_glue = sst2_glue(tmp_path / "glue")
    calls: list[Arch] = []
    original_evaluate, original_build = ProxyDistillEvaluator.evaluate, trainer.build_model

    def evaluate(self: ProxyDistillEvaluator, arch: Arch) -> Any:
        calls.append(arch)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (injected)")
        return original_evaluate(self, arch)

    def build_model(arch: Arch, **kw: Any) -> Any:
        if len(calls) == 2:
            raise ValueError(f"The hidden size ({arch.hidden}) is not a multiple of the number of attention heads")
        return original_build(arch, **kw)

    monkeypatch.setattr(ProxyDistillEvaluator, "evaluate", evaluate)
    monkeypatch.setattr(trainer, "build_model", build_model)
    req = SearchRequest(DatasetKey(DEV, "torch", 1), (50.0,), "sst2", episodes=2, candidates=3, seed=3,
                        teacher=str(tiny_teacher), data_dir=str(tiny_glue), proxy_examples=100, proxy_epochs=1.0,
                        space=str(TINY_SPACE), predictors=str(preds), run_dir=str(tmp_path / "run"),
                        accelerator="auto")
    events: list[tuple[str, dict]] = []
    outcome = run_search(req, lambda kind, data: events.append((kind, data)))
    records = [json.loads(line) for line in (tmp_path / "run" / "evaluations.jsonl").read_text().splitlines()]
    failed = {Arch.from_dict(r["arch"]): r for r in records if "error" in r}
    assert list(failed) == calls[:2]
    assert "out of memory" in failed[calls[0]]["error"] and "injected" in failed[calls[0]]["error"]
    assert failed[calls[1]]["error"].startswith(f"cannot build student {calls[1]}: The hidden size")
    for r in failed.values():
        assert math.isnan(r["metric"]) and set(r["rewards"].values()) == {None}
    assert len(records) > 2 and all(math.isfinite(r["metric"]) for r in records if "error" not in r)
    (winner,) = outcome.result.winners
    assert winner.arch not in failed and math.isfinite(winner.proxy_metric)
    assert sum(1 for kind, data in events if kind == "evaluation" and data.get("error")) == 2
    n = len(calls)
    run_search(req)  # resumes: the failures are records, not redone
    assert len(calls) == n


# -- Ray GPU shares ----------------------------------------------------------------------------------
def test_ray_task_carries_its_gpu_share() -> None:
    ray = pytest.importorskip("ray")
    from kdnas_bench.search.executor import actor_options, remote_worker

    options = remote_worker(ray, 0.25)._default_options  # the real Ray actor class (no cluster needed)
    assert options["num_gpus"] == 0.25 and options["num_cpus"] == 1
    assert "num_gpus" not in remote_worker(ray, 0.0)._default_options
    assert actor_options(2)["num_gpus"] == 2
    for bad in (-0.5, 1.5, float("nan")):
        with pytest.raises(SearchError):
            actor_options(bad)


def test_ray_executor_asks_ray_for_the_gpu_share(monkeypatch: pytest.MonkeyPatch) -> None:
    """The executor's remote function is made with the share; a cluster without enough GPUs is refused."""
    from kdnas_bench.search.executor import make_executor

    class FakeRay:
        def __init__(self, gpus: float) -> None:
            self.gpus, self.options, self.down = gpus, None, False

        def is_initialized(self) -> bool:
            return True

        def cluster_resources(self) -> dict[str, float]:
            return {"CPU": 16.0, "GPU": self.gpus}

        def remote(self, **options: Any) -> Any:
            self.options = options
            return lambda fn: SimpleNamespace(fn=fn, options=options)

        def shutdown(self) -> None:
            self.down = True

    fake = FakeRay(4.0)
    monkeypatch.setitem(sys.modules, "ray", fake)
    ex = make_executor("ray", gpus_per_candidate=0.5)
    assert fake.options == {"num_cpus": 1, "num_gpus": 0.5}
    assert ex._actor.options["num_gpus"] == 0.5  # type: ignore[attr-defined]
    make_executor("ray")
    assert fake.options == {"num_cpus": 1}
    none = FakeRay(0.0)
    monkeypatch.setitem(sys.modules, "ray", none)
    with pytest.raises(SearchError, match="the Ray cluster has 0 GPU"):
        make_executor("ray", gpus_per_candidate=1)
    assert none.down


@pytest.mark.parametrize("executor,accelerator,gpus,message", [
    ("local", "auto", 0.5, "--gpus-per-candidate is for --executor ray"),
    ("ray", "cpu", 0.5, "asks for GPUs but --accelerator is cpu"),
    ("ray", "auto", -1.0, "must be 0 or more"),
])
def test_gpu_share_bad_input_is_refused_before_any_work(executor: str, accelerator: str, gpus: float, message: str,
                                                        tmp_path: Path) -> None:
    from kdnas_bench.keys import DatasetKey
    from kdnas_bench.search.api import SearchRequest, run_search

    req = SearchRequest(DatasetKey(DEV, "torch", 1), (50.0,), "sst2", executor=executor, accelerator=accelerator,
                        gpus_per_candidate=gpus, predictors=str(tmp_path / "none"), run_dir=str(tmp_path / "run"))
    with pytest.raises(KdnasError, match=message):
        run_search(req)
    assert not (tmp_path / "run").exists()
