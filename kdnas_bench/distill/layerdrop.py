"""The baseline a practitioner tries first: the teacher with layers dropped (DistilBERT-style).

Full width — the teacher's hidden size, heads and FFN — and only ``k`` of its encoder layers, evenly spread
and always keeping the last one (:func:`~kdnas_bench.distill.inherit.depth_map`: 6 -> 2 keeps layers 3 and 6,
6 -> 3 keeps every other one, 2, 4 and 6), every tensor copied from the teacher: embeddings, the kept layers,
pooler and classifier. Inheriting ``Arch(k, H, A, F)`` through :func:`~kdnas_bench.distill.inherit.inherit_into`
gives the same function (the importance rewiring is a permutation and the width is the teacher's): this module
builds it without measuring importance.

``keep="bottom"`` keeps the first ``k`` layers instead (the top ones dropped). :func:`layers_for_budget` scales
it to a latency budget: the deepest such model whose predicted latency fits.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch

from ..errors import KdnasError
from ..space import Arch
from .inherit import TeacherShape, depth_map


def dropped_arch(teacher_config: Any, layers: int) -> Arch:
    """The arch of the teacher kept at full width with ``layers`` encoder layers."""
    shape = TeacherShape.of(teacher_config)
    if not 1 <= layers <= shape.layers:
        raise KdnasError(f"a layer-dropped teacher keeps 1 to {shape.layers} layers, got {layers}")
    return Arch(layers, shape.hidden, shape.heads, shape.ffn)


KEEP = ("spread", "bottom")


def kept_layers(layers: int, teacher_layers: int, keep: str = "spread") -> list[int]:
    """The teacher layers (0-based) a ``layers``-deep layer-dropped teacher keeps: ``spread`` — evenly spread,
    ending with the last (DistilBERT-style; 6 -> 1 keeps the last layer alone) — or ``bottom`` — the first
    ``layers`` ones, i.e. the top layers dropped, the strategy that kept the most accuracy in layer-dropping
    studies of fine-tuned BERTs (6 -> 1 keeps the first layer, which still sees the embeddings it was trained on)."""
    if keep not in KEEP:
        raise KdnasError(f"keep must be one of {', '.join(KEEP)}, got {keep!r}")
    return depth_map(layers, teacher_layers) if keep == "spread" else list(range(layers))


@torch.no_grad()
def layer_dropped(teacher_model: Any, layers: int, keep: str = "spread") -> Any:
    """A standalone copy of ``teacher_model`` (a BERT classifier) that keeps ``layers`` of its encoder layers
    (:func:`kept_layers`: evenly spread by default, or the bottom ones); the teacher is left untouched."""
    if getattr(teacher_model.config, "model_type", "") != "bert" or not hasattr(teacher_model, "bert"):
        raise KdnasError(f"a layer-dropped teacher needs a BERT classifier, got {teacher_model.config.model_type!r}")
    dropped_arch(teacher_model.config, layers)  # validates the count
    kept = kept_layers(layers, int(teacher_model.config.num_hidden_layers), keep)
    student = copy.deepcopy(teacher_model)
    student.bert.encoder.layer = torch.nn.ModuleList([student.bert.encoder.layer[i] for i in kept])
    student.config.num_hidden_layers = layers
    for i, layer in enumerate(student.bert.encoder.layer):  # newer transformers index KV caches by layer
        attn = getattr(layer.attention, "self", None)
        if attn is not None and hasattr(attn, "layer_idx"):
            attn.layer_idx = i
    return student.eval()


def layers_for_budget(teacher_config: Any, budget_ms: float, predict_ms: Callable[[Arch], float]) -> int:
    """The most layers a full-width layer-dropped teacher can keep with ``predict_ms(arch) <= budget_ms``; 1 when
    even one layer does not fit (the caller sees it over the budget)."""
    shape = TeacherShape.of(teacher_config)
    fits = [k for k in range(1, shape.layers + 1) if predict_ms(dropped_arch(teacher_config, k)) <= budget_ms]
    return max(fits) if fits else 1
