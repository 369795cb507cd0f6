"""The deploy-time backends: int8 ONNX Runtime (cached quantized export) and bf16 torch (refused without
the CPU flag), and the registry as the single list of backends."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from kdnas_bench.cli import cli
from kdnas_bench.errors import BackendError
from kdnas_bench.profiling.backends import BACKENDS, BackendSpec, cpu_backends, make_backend, torch_bf16
from kdnas_bench.profiling.backends.ort import initializer_bytes
from kdnas_bench.space import Arch, Shape

ARCH = Arch(2, 64, 4, 128)


def test_int8_export_is_quantized_and_cached(tmp_path: Path) -> None:
    b = make_backend("onnxruntime-int8", 1, cache_dir=tmp_path)
    b.load(ARCH, Shape(1, 8))
    fp32 = [p for p in tmp_path.glob("*.onnx") if not p.name.endswith("-int8pc.onnx")]
    int8 = list(tmp_path.glob("*-int8pc.onnx"))
    assert len(fp32) == 1 and len(int8) == 1  # the fp32 export is cached too, and shared with onnxruntime
    assert initializer_bytes(int8[0]) < 0.4 * initializer_bytes(fp32[0])  # int8 weights (+ scales)
    assert b.weight_bytes() == initializer_bytes(int8[0])
    stamp = int8[0].stat().st_mtime_ns
    b2 = make_backend("onnxruntime-int8", 1, cache_dir=tmp_path)
    b2.load(ARCH, Shape(2, 8))
    assert int8[0].stat().st_mtime_ns == stamp
    assert not list(tmp_path.glob("*.tmp"))


def test_weight_bytes_follow_the_precision(tmp_path: Path) -> None:
    fp32 = make_backend("torch", 1)
    fp32.load(ARCH, Shape(1, 8))
    if BACKENDS["torch-bf16"].unavailable():
        pytest.skip(BACKENDS["torch-bf16"].unavailable())
    bf16 = make_backend("torch-bf16", 1)
    bf16.load(ARCH, Shape(1, 8))
    n_int = sum(t.numel() * 8 for t in fp32._model.buffers() if not t.is_floating_point())  # type: ignore[attr-defined]
    assert bf16.weight_bytes() - n_int == pytest.approx((fp32.weight_bytes() - n_int) / 2)


def test_bf16_is_refused_in_one_line_without_the_cpu_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch_bf16, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    reason = BACKENDS["torch-bf16"].unavailable()
    assert reason and "avx512_bf16" in reason and "amx_bf16" in reason and "\n" not in reason
    with pytest.raises(BackendError, match="avx512_bf16"):
        make_backend("torch-bf16", 1)
    monkeypatch.setattr(torch_bf16, "cpu_flags", lambda: frozenset({"amx_bf16"}))
    assert BACKENDS["torch-bf16"].unavailable() is None


def test_the_registry_is_the_only_list() -> None:
    profile = cli.commands["profile"]
    choice = next(p for p in profile.params if p.name == "backend").type
    assert isinstance(choice, click.Choice) and list(choice.choices) == list(BACKENDS)
    assert {"onnxruntime-int8", "torch-bf16"} <= set(cpu_backends())
    assert not {"torch-cuda", "onnxruntime-cuda"} & set(cpu_backends())
    for name, spec in BACKENDS.items():
        assert spec.name == name
    with pytest.raises(ValueError, match="precision"):
        BackendSpec("x", lambda t: None, precision="fp8")  # type: ignore[arg-type,return-value]
