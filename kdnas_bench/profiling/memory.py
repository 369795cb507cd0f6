"""Peak resident memory of a forward pass, measured in a fresh child process (Linux).

Why a child: in a long-lived profiler the allocators keep freed memory (glibc's heap, ONNX Runtime's
arena), so a forward pass can reuse what an earlier, larger model left behind and the resident set
does not grow — the peak would come out too low, and depend on what ran before. Each measurement
therefore runs in a process forked from a small server (``python -m kdnas_bench.profiling.memory``, one
per profiler) that has imported torch, transformers and ONNX Runtime but never built a model: a clean
heap and no thread pools, so forking is safe and cheap, and the imports are paid once.

In the child, glibc is told to serve every allocation over 64 KiB with its own ``mmap`` (``mallopt``
``M_MMAP_THRESHOLD``, which also stops the threshold from adapting), so freed tensors go back to the
kernel at once, and then:

1. ``base``: anonymous resident memory (``RssAnon + RssShmem`` of ``/proc/self/status``) of the runtime
   with the libraries loaded;
2. the backend loads the arch at the shape (builds the model or opens the ONNX session, inputs placed);
   ``weight_bytes``: the bytes of its weights as the backend holds them (fp32, bf16, int8 + scales);
3. ``malloc_trim``, then ``loaded`` = anonymous resident memory: ``model_rss_bytes = loaded - base``;
4. one warm-up forward pass (first-call kernels and caches), ``malloc_trim``; the peak-RSS mark is reset
   to the current RSS (``echo 5 > /proc/self/clear_refs``, Linux >= 4.0), a second forward pass runs, and
   the anonymous peak is ``VmHWM - RssFile`` read right after it: ``peak_rss_bytes = that - base`` (what
   the model and one steady-state forward pass need resident on top of the bare runtime) and
   ``forward_rss_bytes = peak_rss_bytes - model_rss_bytes``.

Only anonymous memory is counted (method 2). File-backed pages (library code that a call touches) are
left out: how many of them a process maps depends on the page cache (the kernel maps neighbouring cached
pages around each fault), so the same config measured from two virtualenvs on one machine differed by
30 MB at load and 26 MB in the forward pass under method 1 (``VmRSS``/``VmHWM``), against < 0.1 MB
anonymous. The warm-up pass touches the code pages first, so the file-backed part barely moves during
the measured pass and ``VmHWM - RssFile`` is the anonymous peak. No service, no sampling thread: the
kernel's own high-water mark.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import json
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import KdnasError
from ..space import Arch, Shape
from .backends import make_backend

PRELOAD = ["torch", "transformers", "transformers.models.bert.modeling_bert", "onnxruntime", "onnx",
           "kdnas_bench.models", "kdnas_bench.profiling.backends.torch_eager", "kdnas_bench.profiling.backends.ort"]
MMAP_THRESHOLD = 64 * 1024
_M_MMAP_THRESHOLD = -3
COLUMNS = ("weight_bytes", "model_rss_bytes", "peak_rss_bytes", "forward_rss_bytes")


@dataclass(frozen=True)
class MemoryResult:
    """Bytes for one (arch, shape) on one backend; see the module docstring for each field."""

    weight_bytes: int
    model_rss_bytes: int
    peak_rss_bytes: int
    forward_rss_bytes: int

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or isinstance(value, bool):
                raise KdnasError(f"memory field {name} must be an integer, got {value!r}")
        if self.weight_bytes < 0 or self.forward_rss_bytes < 0 or self.peak_rss_bytes < self.forward_rss_bytes:
            raise KdnasError(f"inconsistent memory measurement {self}")

    @property
    def peak_mb(self) -> float:
        return self.peak_rss_bytes / 2**20

    def to_row(self) -> dict[str, int]:
        return asdict(self)


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        m = re.search(rf"^{field}:\s+(\d+) kB", fh.read(), re.M)
    if m is None:
        raise OSError(f"/proc/self/status has no {field}")
    return int(m.group(1)) * 1024


def _anon() -> int:
    """Anonymous resident bytes: heap, tensors, arenas (not file-backed library pages)."""
    return _status_kb("RssAnon") + _status_kb("RssShmem")


METHOD = 2  # 1: VmRSS / VmHWM (file-backed pages included); 2: anonymous only, after a warm-up pass
METHODS = {1: "VmRSS/VmHWM, file-backed library pages included",
           2: "anonymous memory only: RssAnon+RssShmem, peak VmHWM-RssFile after a warm-up pass"}


def method_label(method: int | None) -> str:
    """``method 2 (anonymous memory only: ...)``: how a memory figure was measured (stored per row)."""
    if method is None:
        return "method unknown"
    return f"method {method} ({METHODS.get(method, 'unknown to this kdnas-bench')})"


def unsupported() -> str | None:
    """Why peak memory cannot be measured here (``None``: it can)."""
    if not sys.platform.startswith("linux"):
        return f"peak memory is measured with Linux's /proc/self (VmHWM, clear_refs); this is {sys.platform}"
    try:
        for field in ("VmHWM", "RssAnon", "RssShmem", "RssFile"):
            _status_kb(field)
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError as exc:
        return f"cannot reset the peak-RSS mark (/proc/self/clear_refs): {exc}"
    return None


def _libc() -> Any:
    return ctypes.CDLL("libc.so.6")


def _measure_here(backend_name: str, threads: int, options: dict[str, Any], arch: Arch, shape: Shape) -> MemoryResult:
    libc = _libc()
    libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    gc.collect()
    libc.malloc_trim(0)
    base = _anon()
    backend = make_backend(backend_name, threads, **options)
    handle = backend.load(arch, shape)
    backend.sync()
    weight_bytes = int(backend.weight_bytes())  # type: ignore[attr-defined]
    gc.collect()
    libc.malloc_trim(0)
    loaded = _anon()
    backend.run(handle)  # warm-up: first-call kernels, caches and code pages
    backend.sync()
    gc.collect()
    libc.malloc_trim(0)
    with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
        fh.write("5")  # VmHWM := VmRSS now
    backend.run(handle)
    backend.sync()
    peak = max(_status_kb("VmHWM") - _status_kb("RssFile"), loaded)
    return MemoryResult(weight_bytes, loaded - base, peak - base, peak - loaded)


def _serve() -> None:
    """The measuring server: imports the libraries once, then for each JSON request on stdin forks a child
    that measures and writes its result on a pipe; one JSON answer per request on the original stdout."""
    for name in PRELOAD:
        importlib.import_module(name)
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # anything the libraries print goes to stderr, never into the answers
    for line in sys.stdin:
        req = json.loads(line)
        arch, shape = Arch(*req["arch"]), Shape(*req["shape"])
        pid = os.fork()
        if pid == 0:  # a first child does the cacheable work (ONNX export, quantization), so that it is never measured
            code = 0
            try:
                backend = make_backend(req["backend"], req["threads"], **req["options"])
                if hasattr(backend, "prepare"):
                    backend.prepare(arch)
            except BaseException:
                code = 1  # the measuring child reports the error
            os._exit(code)
        os.waitpid(pid, 0)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: measure once, report, exit without running any cleanup of the server's
            os.close(r)
            out: dict[str, Any]
            try:
                res = _measure_here(req["backend"], req["threads"], req["options"], arch, shape)
                out = {"ok": res.to_row()}
            except BaseException as exc:
                out = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]}
            os.write(w, json.dumps(out).encode())
            os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as fh:
            data = fh.read()
        _, status = os.waitpid(pid, 0)
        if not data:
            sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            why = f"signal {sig}, killed for memory?" if sig else f"exit {status}"
            data = json.dumps({"error": f"memory child died ({why})"}).encode()
        answers.write(data.decode() + "\n")
        answers.flush()


class MemoryProbe:
    """Measures :class:`MemoryResult` of (arch, shape) on a backend, one fresh child per call, forked from a
    server process (``python -m kdnas_bench.profiling.memory``) started on first use and kept."""

    def __init__(self, backend_name: str, threads: int, options: dict[str, Any] | None = None) -> None:
        reason = unsupported()
        if reason:
            raise KdnasError(reason)
        self.backend_name, self.threads = backend_name, threads
        self.options = {k: str(v) if isinstance(v, Path) else v for k, v in (options or {}).items()}
        self._proc: subprocess.Popen[str] | None = None

    def _server(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen([sys.executable, "-m", "kdnas_bench.profiling.memory"], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                          env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
        return self._proc

    def measure(self, arch: Arch, shape: Shape) -> MemoryResult:
        """The child's result, or a :class:`KdnasError` with its error (OOM kill, failed load)."""
        proc = self._server()
        assert proc.stdin is not None and proc.stdout is not None
        req = {"backend": self.backend_name, "threads": self.threads, "options": self.options,
               "arch": [arch.layers, arch.hidden, arch.heads, arch.ffn], "shape": [shape.batch, shape.seq]}
        try:
            proc.stdin.write(json.dumps(req) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        except OSError as exc:
            self.close()
            raise KdnasError(f"memory server failed: {exc}") from None
        if not line:
            self.close()
            raise KdnasError("memory server exited (see python -m kdnas_bench.profiling.memory)")
        doc = json.loads(line)
        if "ok" not in doc:
            raise KdnasError(f"memory measurement failed: {doc.get('error')}")
        return MemoryResult(**doc["ok"])

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.stdin:
                self._proc.stdin.close()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None


if __name__ == "__main__":
    _serve()
