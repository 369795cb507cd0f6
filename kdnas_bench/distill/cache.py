"""Teacher (and student) forward passes that return what the KD losses read, and the teacher-output
cache: the teacher runs once over a training set, and every student distilled on it reuses the result.

Measured on SST-2 (benchmarks/bench_distill.py): the teacher's forward passes are most of a small
student's proxy-distillation time, so the cache pays from the second epoch or the second candidate on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..errors import KdnasError
from .accelerator import Accelerator, apply_precision_settings, batch_rows, batches_on, resolve, teacher_model
from .data import Encoded, batches
from .losses import Outputs

if TYPE_CHECKING:
    from .teacher import Teacher


# -- forward passes --------------------------------------------------------------------------------
def _last_self_attention(model: Any) -> Any:
    try:
        return model.base_model.encoder.layer[-1].attention.self
    except AttributeError:
        raise KdnasError(f"attention-relation loss needs a BERT-style model, got {type(model).__name__}") from None


@contextmanager
def _capture_qkv(model: Any, enabled: bool) -> Iterator[dict[str, torch.Tensor]]:
    store: dict[str, torch.Tensor] = {}
    if not enabled:
        yield store
        return
    attn = _last_self_attention(model)
    hooks = [getattr(attn, n).register_forward_hook(lambda _m, _i, out, n=n: store.__setitem__(n, out))
             for n in ("query", "key", "value")]
    try:
        yield store
    finally:
        for h in hooks:
            h.remove()


def forward(model: Any, batch: dict[str, Any], needs: frozenset[str]) -> Outputs:
    with _capture_qkv(model, "qkv" in needs) as qkv:
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    token_type_ids=batch["token_type_ids"], output_hidden_states="hidden" in needs)
    return Outputs(out.logits, tuple(out.hidden_states) if "hidden" in needs else None,
                   (qkv["query"], qkv["key"], qkv["value"]) if "qkv" in needs else None)


@dataclass
class TeacherCache:
    """Teacher outputs per training example: logits (fp32), and hidden states / last-layer Q, K, V
    (fp16, unpadded) when a loss needs them. Held on the device of the accelerator that computed them
    (``accelerator``: "cpu", or "cuda" with the teacher under bf16 autocast)."""

    key: tuple[str, frozenset[str]]  # (the teacher's weight fingerprint, the outputs kept)
    logits: torch.Tensor
    hidden: list[torch.Tensor] | None  # per example (layers + 1, len, H)
    qkv: list[torch.Tensor] | None  # per example (3, len, H)
    seconds: float
    accelerator: str = "cpu"

    def covers(self, teacher: Teacher, needs: frozenset[str], accelerator: str = "cpu") -> bool:
        return self.key[0] == teacher.fingerprint and needs <= self.key[1] and self.accelerator == accelerator

    def outputs(self, batch: dict[str, Any]) -> Outputs:
        idx = batch_rows(batch)
        width = batch["input_ids"].shape[1]

        def pad(items: list[torch.Tensor]) -> torch.Tensor:
            first = items[0]
            out = torch.zeros((len(items), first.shape[0], width, first.shape[2]), dtype=torch.float32,
                              device=first.device)
            for row, x in enumerate(items):
                out[row, :, : x.shape[1]] = x
            return out

        hidden = qkv = None
        if self.hidden is not None:
            hidden = tuple(pad([self.hidden[i] for i in idx]).unbind(1))
        if self.qkv is not None:
            q, k, v = pad([self.qkv[i] for i in idx]).unbind(1)
            qkv = (q, k, v)
        logits = self.logits[idx] if self.logits.device.type == "cpu" else self.logits[batch["index"]]
        return Outputs(logits, hidden, qkv)


def cache_bytes(data: Encoded, teacher: Teacher, needs: frozenset[str]) -> int:
    tokens = int(data.lengths().sum())
    per_token = (teacher.layers + 1 if "hidden" in needs else 0) + (3 if "qkv" in needs else 0)
    return 2 * tokens * teacher.hidden * per_token + 4 * len(data) * teacher.num_labels


@torch.no_grad()
def cache_teacher(teacher: Teacher, data: Encoded, needs: frozenset[str], *, batch_size: int = 128,
                  accelerator: str | Accelerator | None = None) -> TeacherCache:
    """Run the teacher once over ``data`` (length-sorted batches) and keep what the losses need;
    stored on ``data.teacher_cache`` so later distillations on the same data reuse it. On a GPU
    (``accelerator``) the teacher's device copy runs under the accelerator's autocast and the outputs stay
    on the device."""
    acc = resolve(accelerator)
    apply_precision_settings(acc)
    if acc.on_device:
        return _cache_on_device(teacher, data, needs, batch_size, acc)
    start = time.perf_counter()
    teacher.model.eval()
    n = len(data)
    logits = torch.zeros((n, teacher.num_labels))
    hidden: list[Any] | None = [None] * n if "hidden" in needs else None
    qkv: list[Any] | None = [None] * n if "qkv" in needs else None
    for batch in batches(data, batch_size, shuffle=False):
        out = forward(teacher.model, batch, needs)
        lengths = batch["attention_mask"].sum(1).tolist()
        for row, i in enumerate(batch["index"].tolist()):
            logits[i] = out.logits[row]
            ln = lengths[row]
            if hidden is not None and out.hidden is not None:
                hidden[i] = torch.stack([h[row, :ln] for h in out.hidden]).half()
            if qkv is not None and out.qkv is not None:
                qkv[i] = torch.stack([x[row, :ln] for x in out.qkv]).half()
    cache = TeacherCache((teacher.fingerprint, needs), logits, hidden, qkv, time.perf_counter() - start)
    data.teacher_cache = cache
    return cache


def _cache_on_device(teacher: Teacher, data: Encoded, needs: frozenset[str], batch_size: int,
                     acc: Accelerator) -> TeacherCache:
    start = time.perf_counter()
    model = teacher_model(teacher, acc)
    n = len(data)
    logits = torch.zeros((n, teacher.num_labels), device=acc.device)
    hidden: list[Any] | None = [None] * n if "hidden" in needs else None
    qkv: list[Any] | None = [None] * n if "qkv" in needs else None
    for batch in batches_on(data, acc, batch_size, shuffle=False):
        with acc.autocast():
            out = forward(model, batch, needs)
        logits[batch["index"]] = out.logits.float()
        if hidden is None and qkv is None:
            continue
        lengths = data.lengths()[batch["rows"]].tolist()
        for row, i in enumerate(batch["rows"]):
            ln = lengths[row]
            if hidden is not None and out.hidden is not None:
                hidden[i] = torch.stack([h[row, :ln] for h in out.hidden]).half()
            if qkv is not None and out.qkv is not None:
                qkv[i] = torch.stack([x[row, :ln] for x in out.qkv]).half()
    acc.synchronize()
    cache = TeacherCache((teacher.fingerprint, needs), logits, hidden, qkv, time.perf_counter() - start, acc.name)
    data.teacher_cache = cache
    return cache


