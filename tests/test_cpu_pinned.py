"""On CPU, training gives exactly the numbers it gave before the GPU path existed: a teacher fine-tune, two
distillations (cached teacher with hidden states and attention relations; live teacher) and a supernet, all
tiny and seeded, against figures written by the code before that change (tests/data/cpu_pinned.json).

Everywhere, metrics are compared exactly (dev accuracy on 120 examples moves in steps of 1/120) and weights
through their sum and sum of absolute values, to a relative 1e-6: any change of data order, seed use, precision
(autocast) or step count moves them far more, while a different CPU's float rounding does not.

Bits depend on the CPU's kernels as well as the code, so the fixture also keeps weight hashes *per CPU kernel
class* (``pins``: torch version, torch's CPU capability and the CPU fingerprint of
:mod:`kdnas_bench.profiling.fingerprint` — vendor, family / model / stepping, ISA extensions, caches). On a CPU
with a pin the weights must be bit-exact; on any other CPU the sums above still catch a behaviour change.

Regenerate (only when a change of numbers is intended): ``python -m tests.test_cpu_pinned --write`` (drops the
other CPUs' pins: their bits are unknown after the change). Add this CPU's pin without changing the numbers:
``python -m tests.test_cpu_pinned --pin`` (refused unless the sums and metrics match the fixture)."""

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
                      seed=1, batch_size=16, cache=cache, out=work / name, allow_weak_teacher=True, **accel)
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
    """What bit-exact CPU numbers depend on besides the code: torch's version, the CPU kernels it picks and the
    CPU itself (two CPUs with the same capability, e.g. AVX512 on an AMD and an Intel VM, round differently)."""
    import torch

    from kdnas_bench.profiling.fingerprint import cpu_fingerprint

    return {"torch": torch.__version__.split("+")[0], "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
            "cpu": cpu_fingerprint()["id"]}


def pinned_shas(fixture: dict[str, Any], env: dict[str, str]) -> dict[str, str] | None:
    """The weight hashes pinned for this kernel class, or None when this CPU has no pin."""
    for pin in fixture.get("pins", []):
        if pin["environment"] == env:
            return dict(pin["shas"])
    return None


def _cpu_seen() -> str:
    """A reader's name for the pinned CPU (not compared)."""
    from kdnas_bench.profiling.device import hardware
    from kdnas_bench.profiling.fingerprint import cpu_fingerprint

    fp, hw = cpu_fingerprint(), hardware(with_gpu=False)
    return f"{hw.cpu_model} family {fp.get('family')} model {fp.get('model')} ({hw.device_id})"


def _close(a: Any, b: Any, path: str) -> None:
    key = path.split(".")[-1]
    if isinstance(a, dict):
        assert set(a) == set(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, float) and key in ("sum", "abs_sum"):
        assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6), f"{path}: {a!r} != pinned {b!r}"
    else:
        assert a == b, f"{path}: {a!r} != pinned {b!r}"


def _without_shas(runs: dict[str, Any]) -> dict[str, Any]:
    return {name: {**run, "weights": {k: v for k, v in run["weights"].items() if k != "sha"}} for name, run in runs.items()}


def shas(runs: dict[str, Any]) -> dict[str, str]:
    return {name: run["weights"]["sha"] for name, run in runs.items()}


def check(runs: dict[str, Any], *, env: dict[str, str] | None = None) -> str:
    """Sums to 1e-6 and metrics on any CPU; bit-exact weights where this CPU's kernel class has a pin.
    Returns ``"bit-exact"`` or ``"sums"`` (what was compared)."""
    fixture = json.loads(FIXTURE.read_text(encoding="utf-8"))
    _close(_without_shas(runs), fixture["runs"], "runs")
    pinned = pinned_shas(fixture, environment() if env is None else env)
    if pinned is None:
        return "sums"
    for name, sha in shas(runs).items():
        assert sha == pinned[name], (f"runs.{name}.weights.sha: weights {sha} != pinned {pinned[name]} "
                                     "(same torch, CPU kernels and CPU: must be bit-exact)")
    return "bit-exact"


def test_the_fixture_pins_bits_per_cpu_and_judges_other_cpus_by_sums() -> None:
    """The comparison's own logic, without training: a pinned CPU must match bit for bit; a CPU without a pin
    (another vendor's kernels) passes on sums, yet still fails on a changed sum or metric."""
    fixture = json.loads(FIXTURE.read_text(encoding="utf-8"))
    assert fixture["pins"], "the fixture pins at least one CPU"
    pin = fixture["pins"][0]
    runs = {name: {**run, "weights": {**run["weights"], "sha": pin["shas"][name]}} for name, run in fixture["runs"].items()}
    assert check(runs, env=pin["environment"]) == "bit-exact"
    other = {**pin["environment"], "cpu": "00000000"}
    flipped = {name: {**run, "weights": {**run["weights"], "sha": "0" * 16}} for name, run in runs.items()}
    assert check(flipped, env=other) == "sums"
    with pytest.raises(AssertionError, match="bit-exact"):
        check(flipped, env=pin["environment"])
    moved = json.loads(json.dumps(flipped))
    moved["finetune"]["weights"]["sum"] *= 1 + 1e-5
    with pytest.raises(AssertionError, match=r"finetune\.weights\.sum"):
        check(moved, env=other)
    moved = json.loads(json.dumps(flipped))
    moved["supernet"]["steps"] += 1
    with pytest.raises(AssertionError, match=r"supernet\.steps"):
        check(moved, env=other)


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

    runs = compute(tmp_path / "bf16", accelerator=Accelerator(torch.device("cpu"), bf16=True, staged=True))
    fp32 = compute(tmp_path / "fp32")  # the same runs without autocast, on this CPU
    pinned = json.loads(FIXTURE.read_text(encoding="utf-8"))["runs"]
    for name, run in runs.items():
        assert math.isfinite(run["weights"]["sum"]) and run["weights"]["tensors"] == pinned[name]["weights"]["tensors"]
        assert run["weights"]["sha"] != fp32[name]["weights"]["sha"], name


if __name__ == "__main__" and ("--write" in sys.argv or "--pin" in sys.argv):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        runs = compute(Path(tmp))
    env = environment()
    if "--pin" in sys.argv:
        fixture = json.loads(FIXTURE.read_text(encoding="utf-8"))
        _close(_without_shas(runs), fixture["runs"], "runs")  # the numbers must be the pinned ones
        pins = [p for p in fixture.get("pins", []) if p["environment"] != env]
        fixture["pins"] = [*pins, {"environment": env, "shas": shas(runs), "cpu_seen": _cpu_seen()}]
    else:
        fixture = {"about": "CPU numbers of tests/test_cpu_pinned.py (torch.set_num_threads(1)); weight hashes per CPU",
                   "runs": _without_shas(runs), "pins": [{"environment": env, "shas": shas(runs), "cpu_seen": _cpu_seen()}]}
    FIXTURE.write_text(json.dumps(fixture, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(fixture, indent=2))
