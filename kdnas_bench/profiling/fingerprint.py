"""What tells CPUs apart when the model name is masked (a VM reporting "AMD EPYC" for every generation).

The device id (:mod:`.device`) stays what it was (model name, cores, GPU), so existing ids, profiles and
predictors keep working; this fingerprint is stored beside it — on every profile row's environment and in
every predictor fitted since — and a predictor used on a machine with the same id but another fingerprint
warns (:mod:`kdnas_bench.predictors.identity`). Torch-free: read from ``/proc/cpuinfo`` and sysfs.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

from .cpuflags import cpu_flags

# the ISA extensions that change what the kernels can do (and so the latency of the same model)
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_tile",
             "amx_bf16", "amx_int8")
CPUINFO_KEYS = {"vendor_id": "vendor", "cpu family": "family", "model": "model", "stepping": "stepping"}
SYS_CACHE = Path("/sys/devices/system/cpu/cpu0/cache")


def _cpuinfo() -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    break  # the first processor only
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key in CPUINFO_KEYS:
                    out[CPUINFO_KEYS[key]] = value.strip()
    except OSError:
        pass
    return out


def _size_kib(text: str) -> int | None:
    text = text.strip().upper()
    mult = {"K": 1, "M": 1024, "G": 1024 * 1024}
    try:
        return int(text[:-1]) * mult[text[-1]] if text and text[-1] in mult else int(text) // 1024
    except (ValueError, KeyError):
        return None


def _caches(root: Path = SYS_CACHE) -> dict[str, int]:
    """Cache sizes of cpu0 in KiB by name (L1d, L1i, L2, L3)."""
    out: dict[str, int] = {}
    for index in sorted(root.glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = _size_kib((index / "size").read_text())
        except OSError:
            continue
        if size is None:
            continue
        name = f"L{level}" + ({"Data": "d", "Instruction": "i"}.get(kind, ""))
        out[name] = size
    return out


@cache
def cpu_fingerprint() -> dict[str, Any]:
    """Vendor, family / model / stepping, the ISA extensions of :data:`ISA_FLAGS` present, and cache sizes (KiB),
    with ``id``: a short hash of them all."""
    flags = cpu_flags()
    fp: dict[str, Any] = {**_cpuinfo(), "isa": sorted(f for f in ISA_FLAGS if f in flags), "cache_kib": _caches()}
    fp["id"] = fingerprint_id(fp)
    return fp


def fingerprint_id(fp: dict[str, Any]) -> str:
    body = {k: v for k, v in fp.items() if k != "id"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:8]


def differences(stored: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints, in words (empty: the same CPU as far as they tell)."""
    out = []
    for key in ("vendor", "family", "model", "stepping"):
        if key in stored and key in now and str(stored[key]) != str(now[key]):
            out.append(f"{key} {stored[key]} → {now[key]}")
    if "isa" in stored and "isa" in now:
        gone, new = set(stored["isa"]) - set(now["isa"]), set(now["isa"]) - set(stored["isa"])
        if gone:
            out.append(f"no {', '.join(sorted(gone))}")
        if new:
            out.append(f"also {', '.join(sorted(new))}")
    a, b = stored.get("cache_kib") or {}, now.get("cache_kib") or {}
    for name in sorted(set(a) & set(b)):
        if a[name] != b[name]:
            out.append(f"{name} {a[name]} → {b[name]} KiB")
    return out
