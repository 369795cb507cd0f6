"""Device fingerprint and environment stamp.

``device_id`` names the *hardware* (CPU model and cores, GPU and driver) and is stable across runs
and library upgrades, e.g. ``intel-xeon-processor-2c-1f3a9c``. Backend and thread count are separate
keys of every dataset and predictor (the CLI takes ``--device ID --backend B --threads N``); the full
environment — backend, threads, library versions, governor, load — is stamped on every profile row
and hashed into ``env_id`` so rows from different software stacks can be told apart. The CPU's
fingerprint (:mod:`.fingerprint`: ISA extensions, cache sizes, family / model) is stamped beside the id,
outside ``env_id``, since a VM's model name may be masked.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
from dataclasses import asdict, dataclass
from functools import cache
from importlib import metadata
from typing import Any

from .backends import is_gpu
from .fingerprint import cpu_fingerprint


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown-cpu"


def _governor() -> str | None:
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError:
        return None


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


@cache
def _gpu() -> tuple[str | None, str | None]:
    """(GPU name, driver version) of GPU 0, or (None, None) without a GPU."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader", "-i", "0"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        name, driver = (p.strip() for p in out.split(",", 1))
        return name, driver
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    try:
        import torch  # noqa: PLC0415  lazy: torch, optional

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0), None
    except Exception:
        pass
    return None, None


def _slug(text: str) -> str:
    text = re.sub(r"\((r|tm)\)|\bcpu\b|@.*$", " ", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


@dataclass(frozen=True)
class Hardware:
    cpu_model: str
    cores: int
    gpu_name: str | None
    gpu_driver: str | None

    @property
    def device_id(self) -> str:
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:6]
        head = _slug(self.gpu_name) if self.gpu_name else f"{_slug(self.cpu_model)}-{self.cores}c"
        return f"{head[:40].strip('-')}-{digest}"


def hardware(*, with_gpu: bool = True) -> Hardware:
    gpu_name, gpu_driver = _gpu() if with_gpu else (None, None)
    return Hardware(_cpu_model(), os.cpu_count() or 1, gpu_name, gpu_driver)


def environment(backend: str, threads: int, *, with_gpu: bool | None = None) -> dict[str, Any]:
    """Everything that shapes a latency figure, for stamping on rows. GPU fields only for GPU backends."""
    gpu = is_gpu(backend) if with_gpu is None else with_gpu
    hw = hardware(with_gpu=gpu)
    env: dict[str, Any] = {
        "device_id": hw.device_id,
        "cpu_model": hw.cpu_model,
        "cores": hw.cores,
        "gpu_name": hw.gpu_name,
        "gpu_driver": hw.gpu_driver,
        "backend": backend,
        "threads": threads,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "torch": _version("torch"),
        "onnxruntime": _version("onnxruntime"),
        "transformers": _version("transformers"),
        "governor": _governor(),
    }
    stable = {k: v for k, v in env.items() if k != "governor"}  # the fingerprint stays out: ids do not move
    env["fingerprint"] = cpu_fingerprint()
    env["env_id"] = hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()[:12]
    return env


def load_average() -> float:
    try:
        return float(os.getloadavg()[0])
    except OSError:
        return float("nan")
