"""Which teacher layers a shallower student inherits: evenly spread, or chosen by measurement.

``spread`` (the default, :func:`~kdnas_bench.distill.inherit.depth_map`) keeps evenly spaced teacher layers ending
with the last. ``importance`` measures it instead, in the spirit of depth pruning by block importance (Minitron;
ShortGPT): starting from the whole teacher, it removes one layer at a time — each time the layer whose removal moves
the teacher's output least on a few hundred task examples (KL divergence of the class distributions; squared error
for regression) — until ``L`` layers remain, and the student inherits those, in their order. Greedy backward
elimination needs ``T + (T-1) + … + (L+1)`` forward passes of the shrinking teacher (20 for 6 -> 1), a few seconds
for a small BERT; the same (teacher, data, L, examples, seed) give the same layers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from ..defaults import LAYER_CHOICES
from ..errors import KdnasError
from .data import proxy_indices
from .inherit import depth_map
from .training import logits_of

__all__ = ["LAYER_CHOICES", "choose_layers", "removal_order", "teacher_layers"]


@contextmanager
def _only_layers(model: Any, kept: list[int]) -> Iterator[None]:
    """``model`` (a BERT classifier) running only the encoder layers ``kept``, restored afterwards."""
    encoder = model.bert.encoder
    full, n = encoder.layer, model.config.num_hidden_layers
    encoder.layer = torch.nn.ModuleList([full[i] for i in kept])
    model.config.num_hidden_layers = len(kept)
    try:
        yield
    finally:
        encoder.layer, model.config.num_hidden_layers = full, n


def _logits(model: Any, data: Any, batch_size: int) -> torch.Tensor:
    return torch.from_numpy(logits_of(model, data, batch_size=batch_size))


def _divergence(ref: torch.Tensor, out: torch.Tensor, regression: bool) -> float:
    if regression:
        return float(((out - ref) ** 2).mean())
    return float(torch.nn.functional.kl_div(out.log_softmax(-1), ref.log_softmax(-1), log_target=True,
                                            reduction="batchmean"))


@torch.no_grad()
def removal_order(model: Any, data: Any, *, examples: int = 256, batch_size: int = 32, regression: bool = False,
                  seed: int = 0, stop: int = 1) -> list[int]:
    """Teacher layers (0-based) in the order greedy elimination removes them until ``stop`` remain: each step
    removes the layer whose absence moves the output of what is left least from the whole teacher's on
    ``examples`` examples of ``data`` (an ``Encoded`` set; a stratified seeded subset)."""
    if getattr(model.config, "model_type", "") != "bert" or not hasattr(model, "bert"):
        raise KdnasError(f"choosing layers by importance needs a BERT classifier, got {model.config.model_type!r}")
    if data is None or len(data) == 0:
        raise KdnasError("choosing layers by importance needs task examples (the training set)")
    subset = data.subset(proxy_indices(data.labels, min(examples, len(data)), seed=seed))
    was_training = model.training
    model.eval()
    try:
        ref = _logits(model, subset, batch_size)
        kept, removed = list(range(int(model.config.num_hidden_layers))), []
        while len(kept) > max(stop, 1):
            scores = []
            for drop in kept:
                with _only_layers(model, [k for k in kept if k != drop]):
                    scores.append(_divergence(ref, _logits(model, subset, batch_size), regression))
            removed.append(kept.pop(min(range(len(kept)), key=lambda i: (scores[i], -kept[i]))))  # ties: lower
        return removed
    finally:
        model.train(was_training)


def choose_layers(model: Any, data: Any, layers: int, *, examples: int = 256, batch_size: int = 32,
                  regression: bool = False, seed: int = 0) -> list[int]:
    """The ``layers`` teacher layers (0-based, ascending) whose output stays closest to the whole teacher's:
    what greedy elimination (:func:`removal_order`) leaves."""
    total = int(model.config.num_hidden_layers)
    if layers <= 0:
        raise KdnasError(f"student layers must be positive, got {layers}")
    if layers >= total:
        return depth_map(layers, total)  # nothing to drop (deeper students repeat layers)
    gone = set(removal_order(model, data, examples=examples, batch_size=batch_size, regression=regression,
                             seed=seed, stop=layers))
    return [k for k in range(total) if k not in gone]


_CACHE: dict[tuple[int, int, int, int], tuple[Any, Any, list[int]]] = {}


def teacher_layers(model: Any, data: Any, layers: int, *, examples: int = 256, regression: bool = False,
                   seed: int = 0) -> list[int]:
    """:func:`choose_layers` from one elimination down to a single layer, computed once per (teacher model,
    data set) in this process (greedy elimination is nested: every depth's layers lie on the same path)."""
    total = int(model.config.num_hidden_layers)
    if layers <= 0 or layers >= total:
        return choose_layers(model, data, layers, examples=examples, regression=regression, seed=seed)
    key = (id(model), id(data), examples, seed)
    hit = _CACHE.get(key)
    if hit is None or hit[0] is not model or hit[1] is not data:
        order = removal_order(model, data, examples=examples, regression=regression, seed=seed)
        if len(_CACHE) >= 4:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = hit = (model, data, order)
    gone = set(hit[2][:total - layers])
    return [k for k in range(total) if k not in gone]
