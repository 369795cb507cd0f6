"""On CPU, training gives exactly the numbers it gave before the GPU path existed: a teacher fine-tune, two
distillations (cached teacher with hidden states and attention relations; live teacher) and a supernet, all
tiny and seeded, against figures written by the code before that change (tests/data/cpu_pinned.json).

Metrics are compared exactly (dev accuracy on 120 examples moves in steps of 1/120); weights through their
sum and sum of absolute values, to a relative 1e-6: any change of data order, seed use, precision (autocast)
or step count moves them far more, while a different CPU's float rounding does not.

Regenerate (only when a change of numbers is intended): ``python -m tests.test_cpu_pinned --write``."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

from .helpers import GLUE

FIXTURE = Path(__file__).resolve().parent / "data" / "cpu_pinned.json"
pytestmark = pytest.mark.skipif(not (GLUE / "SST-2" / "dev.tsv").is_file(), reason="../shared/data/glue not present")


def _digest(path: Path) -> dict[str, float]:
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    total = sum(float(t.double().sum()) for k, t in sorted(tensors.items()) if t.is_floating_point())
    absolute = sum(float(t.double().abs().sum()) for k, t in sorted(tensors.items()) if t.is_floating_point())
    from kdnas_bench.models import tensors_hash

    return {"sum": total, "abs_sum": absolute, "tensors": len(tensors), "sha": tensors_hash(tensors)}


def compute(work: Path, **accel: Any) -> dict[str, Any]:
    """The pinned runs, in ``work``; ``accel``: extra keyword arguments for every training call (the accelerator)."""
    import torch

    from kdnas_bench.distill import distill, finetune, load_teacher, prepare_data
    from kdnas_bench.space import SearchSpace
    from kdnas_bench.supernet import SupernetConfig, train_supernet

    from .helpers import TINY_SPACE, save_tiny, sst2_glue

    torch.set_num_threads(1)
    glue = sst2_glue(work / "glue")
    backbone = save_tiny(work / "backbone", 2)
    out: dict[str, Any] = {}
    ft = finetune("sst2", backbone=backbone, data_dir=glue, max_examples=96, epochs=1.0, seed=0, out=work / "teacher",
                  batch_size=16, **accel)
    out["finetune"] = {"metrics": ft.metrics, "weights": _digest(work / "teacher" / "model.safetensors")}
    for name, losses, cache in (("distill_cached", "logits,hidden,attn,ce", "auto"), ("distill_live", "logits,ce", "off")):
        res = distill(work / "teacher", "sst2", "1,32,2,64", data_dir=glue, max_examples=96, epochs=1.0, losses=losses,
                      seed=1, batch_size=16, cache=cache, out=work / name, **accel)
        out[name] = {"metrics": res.metrics, "weights": _digest(work / name / "model.safetensors")}
    teacher = load_teacher(work / "teacher", task="sst2")
    data = prepare_data(teacher.tokenizer, "sst2", data_dir=glue, max_examples=96)
    cfg = SupernetConfig(examples=96, epochs=1.0, batch_size=16, importance_examples=64)
    result = train_supernet(teacher, data.task, SearchSpace.load(TINY_SPACE), work / "supernet", train_data=data.train,
                            cfg=cfg, **accel)
    assert result is not None
    doc = result[1]
    out["supernet"] = {"steps": doc["steps"], "weights": _digest(work / "supernet" / "supernet.safetensors")}
    return out


def environment() -> dict[str, str]:
    """What bit-exact CPU numbers depend on besides the code: torch's version and the CPU kernels it picks."""
    import torch

    return {"torch": torch.__version__.split("+")[0], "cpu_capability": str(torch.backends.cpu.get_cpu_capability())}


def _close(a: Any, b: Any, path: str, exact: bool) -> None:
    key = path.split(".")[-1]
    if isinstance(a, dict):
        assert set(a) == set(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _close(a[k], b[k], f"{path}.{k}", exact)
    elif key == "sha":
        assert not exact or a == b, f"{path}: weights {a} != pinned {b} (same torch and CPU kernels: must be bit-exact)"
    elif isinstance(a, float) and key in ("sum", "abs_sum"):
        assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6), f"{path}: {a!r} != pinned {b!r}"
    else:
        assert a == b, f"{path}: {a!r} != pinned {b!r}"


def check(runs: dict[str, Any]) -> None:
    """Bit-exact weights where torch and the CPU kernels are the pinned ones; sums to 1e-6 and metrics anywhere."""
    pinned = json.loads(FIXTURE.read_text(encoding="utf-8"))
    _close(runs, pinned["runs"], "runs", exact=pinned["environment"] == environment())


def test_cpu_training_gives_the_pinned_numbers(tmp_path: Path) -> None:
    check(compute(tmp_path))


def test_cpu_accelerator_gives_the_same_numbers_as_no_accelerator(tmp_path: Path) -> None:
    """``accelerator="cpu"`` (what ``auto`` resolves to without a GPU) is the old code path, number for number."""
    check(compute(tmp_path, accelerator="auto"))


def test_the_gpu_code_path_staged_on_the_cpu_gives_the_same_numbers(tmp_path: Path) -> None:
    """The device path (batches indexed from padded device tensors, the teacher's device copy, the cache kept
    on the device, models moved there and back) run on the CPU in fp32 trains exactly the CPU's models: the
    GPU sees the same examples in the same order, and only its arithmetic differs."""
    import torch

    from kdnas_bench.distill.accelerator import Accelerator

    runs = compute(tmp_path, accelerator=Accelerator(torch.device("cpu"), staged=True))
    check(runs)


def test_bf16_autocast_on_the_device_path_trains_and_changes_the_numbers(tmp_path: Path) -> None:
    """With bf16 autocast (what a GPU that has bf16 uses) the same runs finish with finite weights that differ
    from the fp32 ones: the autocast is really on."""
    import torch

    from kdnas_bench.distill.accelerator import Accelerator

    runs = compute(tmp_path, accelerator=Accelerator(torch.device("cpu"), bf16=True, staged=True))
    pinned = json.loads(FIXTURE.read_text(encoding="utf-8"))["runs"]
    for name, run in runs.items():
        assert math.isfinite(run["weights"]["sum"]) and run["weights"]["tensors"] == pinned[name]["weights"]["tensors"]
        assert run["weights"]["sha"] != pinned[name]["weights"]["sha"], name


if __name__ == "__main__" and "--write" in sys.argv:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        runs = compute(Path(tmp))
    FIXTURE.write_text(json.dumps({"about": "CPU numbers of tests/test_cpu_pinned.py (torch.set_num_threads(1))",
                                   "environment": environment(), "runs": runs}, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(runs, indent=2))
