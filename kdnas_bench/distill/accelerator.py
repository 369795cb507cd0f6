"""Where training runs: ``--accelerator auto|cpu|cuda`` resolved in one place (``auto``: the GPU when torch
sees one, else the CPU; ``cuda`` without a GPU: a one-line error before any work), bf16 autocast where the GPU
has it, batches built on the device, the teacher's device copy, and the failures one candidate may hit.

:func:`resolve` only reads what torch sees and returns an :class:`Accelerator` value; it changes nothing. The
global torch settings a GPU run needs (TF32 matmuls) are set by :func:`apply_precision_settings`, which the code
that runs the work (the training loop, the teacher cache, the supernet's training and scoring) calls itself.

On the CPU nothing here changes a number: :data:`CPU` runs the very code path (batches collated per step,
fp32, the teacher's own model) that training had before there was an accelerator. On a GPU the tokenised set
is padded into device tensors once, so a step is an index and a slice on the device (no per-step collate or
host-to-device copy), and forwards run under ``torch.autocast(dtype=bfloat16)`` when
``torch.cuda.is_bf16_supported()`` (fp32 with TF32 matmuls otherwise); weights and optimizer state stay fp32.
"""

from __future__ import annotations

import copy
import gc
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import KdnasError
from .data import batch_order, batches

if TYPE_CHECKING:
    from .data import Encoded
    from .teacher import Teacher

ACCELERATORS = ("auto", "cpu", "cuda")


class AcceleratorError(KdnasError):
    """An accelerator that does not exist here (``cuda`` without a GPU) or an unknown name."""


class CandidateFailure(KdnasError):
    """One candidate could not be trained or scored (its sub-network cannot be built): recorded as that
    candidate's failure, and the search goes on."""


@dataclass(frozen=True)
class Accelerator:
    """A resolved accelerator: the torch device and whether forwards run under bf16 autocast. ``staged``
    runs the device path (batches built as device tensors, the teacher's copy, the cache kept on the device,
    autocast when ``bf16``) on the CPU: how the tests exercise the GPU code on a machine without one."""

    device: torch.device
    bf16: bool = False
    staged: bool = False

    @property
    def name(self) -> str:
        """"cpu", "cpu-staged", "cuda", or "cuda:N" when a GPU was named by its index (resolved to it again)."""
        if self.staged and self.device.type == "cpu":
            return "cpu-staged"
        return str(self.device) if self.is_cuda and self.device.index is not None else self.device.type

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def on_device(self) -> bool:
        """The device path (a GPU, or the CPU staged as one) rather than the plain CPU path."""
        return self.is_cuda or self.staged

    def autocast(self) -> AbstractContextManager[Any]:
        """bf16 autocast on a GPU that has it; nothing on the CPU (fp32, the numbers as they always were)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext()

    def synchronize(self) -> None:
        """Wait for the GPU's queued work (before reading a wall clock)."""
        if self.is_cuda:
            torch.cuda.synchronize(self.device)

    @property
    def precision(self) -> str:
        """How forwards compute: "bf16-autocast", "fp32-tf32" (a GPU without bf16) or "fp32"."""
        return "bf16-autocast" if self.bf16 else ("fp32-tf32" if self.is_cuda else "fp32")

    def describe(self) -> dict[str, Any]:
        """What a result records about where it was trained."""
        if not self.is_cuda:
            return {"accelerator": self.name, **({"precision": self.precision} if self.staged else {})}
        return {"accelerator": "cuda", "gpu": torch.cuda.get_device_name(self.device), "precision": self.precision}


CPU = Accelerator(torch.device("cpu"))


def _no_gpu() -> str:
    built = torch.version.cuda
    why = f"this torch ({torch.__version__}) was built without CUDA" if not built else \
        f"torch {torch.__version__} (CUDA {built}) sees no GPU"
    return f"--accelerator cuda: no CUDA GPU here ({why}); use --accelerator auto or cpu"


AcceleratorSpec = str | Accelerator | None  # a name ("auto", "cpu", "cuda", "cuda:N"; None: the CPU) or a resolved value


def resolve(spec: AcceleratorSpec) -> Accelerator:
    """``None``/``"cpu"``: the CPU; ``"auto"``: the first GPU when torch sees one, else the CPU; ``"cuda"``
    (or ``"cuda:N"``): that GPU, or :class:`AcceleratorError` when there is none; an :class:`Accelerator` as it
    is. No side effects: torch's global settings are :func:`apply_precision_settings`'s job."""
    if isinstance(spec, Accelerator):
        return spec
    name = (spec or "cpu").strip().lower()
    if name == "cpu":
        return CPU
    if name == "auto":
        if not torch.cuda.is_available():
            return CPU
        name = "cuda"
    if name != "cuda" and not (name.startswith("cuda:") and name[5:].isdigit()):
        raise AcceleratorError(f"--accelerator must be one of {', '.join(ACCELERATORS)}, got {spec!r}")
    if not torch.cuda.is_available():
        raise AcceleratorError(_no_gpu())
    device = torch.device(name)
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise AcceleratorError(f"--accelerator {name}: this machine has {torch.cuda.device_count()} GPU(s)")
    return Accelerator(device, bool(torch.cuda.is_bf16_supported()))


def apply_precision_settings(acc: Accelerator) -> None:
    """Set the global torch settings that work on ``acc`` runs with: on a GPU, TF32 for the fp32 matmuls outside
    autocast (and without bf16); on the CPU nothing (the numbers as they always were). Called by the code that
    runs the work, before it runs; calling it again changes nothing."""
    if acc.is_cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def accelerator_of(model: Any) -> Accelerator:
    """The accelerator a model's weights live on (the CPU for a model without parameters)."""
    try:
        device = next(iter(model.parameters())).device
    except (StopIteration, AttributeError, TypeError):
        return CPU
    return CPU if device.type == "cpu" else resolve(str(device))


# -- failures of one candidate ---------------------------------------------------------------------
def is_oom(exc: BaseException) -> bool:
    """A CUDA (or other device) out-of-memory error."""
    return isinstance(exc, torch.OutOfMemoryError) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc))


def failure_message(exc: BaseException) -> str | None:
    """The one-line message of a failure that is the candidate's own (out of memory, a sub-network that
    cannot be built), or None for any other error (which stops the search: it would hit every candidate)."""
    if not (is_oom(exc) or isinstance(exc, CandidateFailure)):
        return None
    text = " ".join(str(exc).split())[:500] or type(exc).__name__
    return f"out of memory: {text}" if is_oom(exc) and not text.lower().startswith(("cuda out of memory", "out of")) \
        else text


def free_memory() -> None:
    """After a failed candidate: drop its tensors and hand the GPU's cached blocks back."""
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


# -- the teacher on the device ---------------------------------------------------------------------
_DEVICE_COPIES: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def teacher_model(teacher: Teacher, acc: Accelerator) -> Any:
    """The teacher's model on ``acc`` for forwards: the model itself on the CPU, else a device copy made once
    per teacher model (the CPU model stays where importance, inheritance and hashing read it)."""
    if not acc.on_device:
        return teacher.model
    copies = _DEVICE_COPIES.setdefault(teacher.model, {})
    key = str(acc.device)
    if key not in copies:
        copies[key] = copy.deepcopy(teacher.model).to(acc.device).eval()
    return copies[key]


# -- batches on the device -------------------------------------------------------------------------
class DeviceSet:
    """An ``Encoded`` set padded once into device tensors; a batch is an index and a slice to its longest
    example, the same tensors :func:`~kdnas_bench.distill.data.collate` builds on the CPU."""

    def __init__(self, data: Encoded, device: torch.device) -> None:
        lengths = data.lengths()
        n, width = len(data), int(lengths.max()) if len(data) else 1
        ids = np.full((n, width), data.pad_id, dtype=np.int64)
        types = np.zeros((n, width), dtype=np.int64)
        for i, (a, b) in enumerate(zip(data.input_ids, data.token_type_ids, strict=True)):
            ids[i, : len(a)] = a
            types[i, : len(b)] = b
        mask = (np.arange(width)[None, :] < lengths[:, None]).astype(np.int64)
        self.lengths = lengths
        self.device = device
        self.ids, self.types, self.mask = (torch.from_numpy(x).to(device) for x in (ids, types, mask))
        self.labels = torch.as_tensor(np.asarray(data.labels)).to(device)

    def batch(self, rows: np.ndarray, index: torch.Tensor) -> dict[str, Any]:
        """The batch of examples ``rows`` (host indices), ``index`` the same indices already on the device."""
        width = int(self.lengths[rows].max())
        return {"input_ids": self.ids[index, :width], "attention_mask": self.mask[index, :width],
                "token_type_ids": self.types[index, :width], "labels": self.labels[index], "index": index,
                "rows": rows.tolist()}


def device_set(data: Encoded, acc: Accelerator) -> DeviceSet:
    """``data`` on ``acc``'s device, built once per set and device (kept on the set, like its teacher cache)."""
    held = getattr(data, "_device_set", None)
    if held is None or held.device != acc.device:
        held = DeviceSet(data, acc.device)
        data._device_set = held  # type: ignore[attr-defined]
    return held


def batches_on(data: Encoded, acc: Accelerator, batch_size: int, *, shuffle: bool, seed: int = 0,
               batching: str = "random") -> Iterator[dict[str, Any]]:
    """:func:`~kdnas_bench.distill.data.batches` on ``acc``: the same examples in the same order; on the CPU
    the very same function."""
    if not acc.on_device:
        yield from batches(data, batch_size, shuffle=shuffle, seed=seed, batching=batching)
        return
    on = device_set(data, acc)
    chunks = batch_order(data, batch_size, shuffle=shuffle, seed=seed, batching=batching)
    if not chunks:
        return
    flat = torch.from_numpy(np.concatenate(chunks).astype(np.int64)).to(acc.device)  # one copy per epoch
    start = 0
    for chunk in chunks:
        yield on.batch(chunk, flat[start : start + len(chunk)])
        start += len(chunk)


def batch_rows(batch: dict[str, Any]) -> list[int]:
    """The example indices of a batch as a list (from the host copy on a GPU: no device sync)."""
    rows = batch.get("rows")
    return list(rows) if rows is not None else batch["index"].tolist()
