"""Inherited weights for any student of a BERT teacher (DynaBERT-style rewiring).

1. **Importance** on task data: for every parameter, |w ⊙ ∂L/∂w| (L: the task loss of the teacher on a few
   hundred training examples) is summed onto the axes the parameter spans: the residual stream (one hidden
   order shared by embeddings, LayerNorms, Q/K/V inputs, attention and FFN outputs, pooler input), each
   layer's attention channels (Q/K/V rows, output columns; a head's score is the sum of its channels), each
   layer's FFN neurons, and the pooler's outputs (pooler rows, classifier columns).
2. **Rewiring**: the teacher's tensors are permuted along every axis into descending importance — whole
   heads first, by head score, each head's channels by their own score. A permutation leaves the
   teacher's function unchanged (LayerNorm statistics do not depend on channel order).
3. **Slicing**: a student ``(L, h, A, f)`` takes a prefix of every axis — the ``h`` most important hidden
   channels, the ``h`` most important attention channels (so whole teacher heads are kept where ``h`` is a
   multiple of the teacher's head dim; BERT ties the attention width to the hidden size, and the student's
   ``A`` heads split those channels into heads of ``h / A``), the ``f`` most important FFN neurons — and
   the teacher layers :func:`depth_map` picks. A student of the teacher's shape is the teacher.

The supernet (:mod:`kdnas_bench.supernet`) keeps the rewired tensors as its shared weights and runs each
sub-network on prefix slices of them, so the same :func:`slice_state` defines both.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import KdnasError
from ..space import Arch
from .data import batches, proxy_indices

# axis kinds: "hid" residual stream, "att" attention channels (per layer), "ffn" FFN neurons (per layer),
# "pool" pooler outputs, None: not sliced (vocab, positions, labels)
_LAYER = re.compile(r"^bert\.encoder\.layer\.(\d+)\.(.+)$")
_LAYER_AXES: dict[str, tuple[str | None, ...]] = {
    "attention.self.query.weight": ("att", "hid"), "attention.self.query.bias": ("att",),
    "attention.self.key.weight": ("att", "hid"), "attention.self.key.bias": ("att",),
    "attention.self.value.weight": ("att", "hid"), "attention.self.value.bias": ("att",),
    "attention.output.dense.weight": ("hid", "att"), "attention.output.dense.bias": ("hid",),
    "attention.output.LayerNorm.weight": ("hid",), "attention.output.LayerNorm.bias": ("hid",),
    "intermediate.dense.weight": ("ffn", "hid"), "intermediate.dense.bias": ("ffn",),
    "output.dense.weight": ("hid", "ffn"), "output.dense.bias": ("hid",),
    "output.LayerNorm.weight": ("hid",), "output.LayerNorm.bias": ("hid",),
}
_TOP_AXES: dict[str, tuple[str | None, ...]] = {
    "bert.embeddings.word_embeddings.weight": (None, "hid"),
    "bert.embeddings.position_embeddings.weight": (None, "hid"),
    "bert.embeddings.token_type_embeddings.weight": (None, "hid"),
    "bert.embeddings.LayerNorm.weight": ("hid",), "bert.embeddings.LayerNorm.bias": ("hid",),
    "bert.pooler.dense.weight": ("pool", "hid"), "bert.pooler.dense.bias": ("pool",),
    "classifier.weight": (None, "pool"), "classifier.bias": (None,),
}


def axes_of(name: str) -> tuple[tuple[str | None, ...], int | None]:
    """The axis kinds of a BERT-classifier parameter and its layer index (None outside the encoder)."""
    m = _LAYER.match(name)
    if m:
        if m.group(2) not in _LAYER_AXES:
            raise KdnasError(f"unexpected BERT parameter {name}")
        return _LAYER_AXES[m.group(2)], int(m.group(1))
    if name not in _TOP_AXES:
        raise KdnasError(f"unexpected BERT parameter {name}")
    return _TOP_AXES[name], None


def depth_map(student_layers: int, teacher_layers: int) -> list[int]:
    """Teacher layer (0-based) for each student layer: evenly spread, always ending with the last teacher
    layer (6 -> 1 layer: [5]; 2: [2, 5]; 3: [1, 3, 5]; 4: [1, 2, 4, 5]); repeats layers when deeper."""
    if student_layers <= 0:
        raise KdnasError(f"student layers must be positive, got {student_layers}")
    return [math.ceil(m * teacher_layers / student_layers) - 1 for m in range(1, student_layers + 1)]


@dataclass(frozen=True)
class TeacherShape:
    layers: int
    hidden: int
    heads: int
    ffn: int

    @classmethod
    def of(cls, config: Any) -> TeacherShape:
        return cls(int(config.num_hidden_layers), int(config.hidden_size), int(config.num_attention_heads),
                   int(config.intermediate_size))

    @property
    def arch(self) -> Arch:
        return Arch(self.layers, self.hidden, self.heads, self.ffn)

    def fits(self, arch: Arch) -> bool:
        """True when every slice of ``arch`` exists in the teacher (depth may exceed it: layers repeat)."""
        return arch.hidden <= self.hidden and arch.ffn <= self.ffn


@dataclass(frozen=True)
class Importance:
    """Descending-importance orders of every axis (index tensors, int64)."""

    hidden: torch.Tensor  # (H,)
    attention: tuple[torch.Tensor, ...]  # per layer (H,): whole heads by head score, channels by score within
    ffn: tuple[torch.Tensor, ...]  # per layer (F,)
    pooler: torch.Tensor  # (H,)
    examples: int  # how many examples measured it (0: weight magnitude, no data)

    def __post_init__(self) -> None:
        if len(self.attention) != len(self.ffn):
            raise KdnasError("importance needs one attention and one FFN order per layer")

    def order(self, kind: str, layer: int | None) -> torch.Tensor:
        if kind == "hid":
            return self.hidden
        if kind == "pool":
            return self.pooler
        if layer is None:
            raise KdnasError(f"axis {kind} needs a layer")
        return self.attention[layer] if kind == "att" else self.ffn[layer]

    def to_tensors(self) -> dict[str, torch.Tensor]:
        out = {"importance.hidden": self.hidden, "importance.pooler": self.pooler}
        for i, (a, f) in enumerate(zip(self.attention, self.ffn, strict=True)):
            out[f"importance.attention.{i}"] = a
            out[f"importance.ffn.{i}"] = f
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], examples: int) -> Importance:
        n = sum(1 for k in tensors if k.startswith("importance.attention."))
        return cls(tensors["importance.hidden"], tuple(tensors[f"importance.attention.{i}"] for i in range(n)),
                   tuple(tensors[f"importance.ffn.{i}"] for i in range(n)), tensors["importance.pooler"], examples)


def _orders(scores: dict[tuple[str, int | None], torch.Tensor], shape: TeacherShape, examples: int) -> Importance:
    def desc(x: torch.Tensor) -> torch.Tensor:
        return torch.argsort(-x.double(), stable=True)

    d = shape.hidden // shape.heads
    attention = []
    for layer in range(shape.layers):
        ch = scores[("att", layer)].double().view(shape.heads, d)
        within = torch.argsort(-ch, dim=1, stable=True)
        heads = desc(ch.sum(1))
        attention.append(torch.cat([h * d + within[h] for h in heads.tolist()]))
    return Importance(desc(scores[("hid", None)]), tuple(attention),
                      tuple(desc(scores[("ffn", i)]) for i in range(shape.layers)), desc(scores[("pool", None)]),
                      examples)


def _accumulate(model: Any, scores: dict[tuple[str, int | None], torch.Tensor], use_grad: bool) -> None:
    for name, p in model.named_parameters():
        kinds, layer = axes_of(name)
        value = (p.detach() * p.grad).abs() if use_grad and p.grad is not None else p.detach().abs()
        for dim, kind in enumerate(kinds):
            if kind is None:
                continue
            other = [i for i in range(value.ndim) if i != dim]
            key = (kind, layer if kind in ("att", "ffn") else None)
            part = value.sum(dim=other) if other else value
            scores[key] = scores[key] + part if key in scores else part.clone()


def importance_scores(model: Any, data: Any | None = None, *, examples: int = 256, batch_size: int = 32,
                      regression: bool = False, seed: int = 0) -> tuple[dict[tuple[str, int | None], torch.Tensor], int]:
    """The raw importance of every axis of a BERT classifier — ``{(kind, layer): scores}`` with kinds ``hid``,
    ``att``, ``ffn``, ``pool`` (layer None outside the encoder) — and how many examples measured it: |w ⊙ grad| of
    the task loss summed over ``examples`` training examples of ``data`` (an ``Encoded`` set; a stratified seeded
    subset), or |w| (0 examples) when ``data`` is None."""
    if getattr(model.config, "model_type", "") != "bert":
        raise KdnasError(f"weight inheritance needs a BERT teacher, got {model.config.model_type!r}")
    scores: dict[tuple[str, int | None], torch.Tensor] = {}
    was_training = model.training
    model.eval()  # no dropout: the same data give the same orders
    try:
        if data is None or examples <= 0:
            _accumulate(model, scores, use_grad=False)
            return scores, 0
        subset = data.subset(proxy_indices(data.labels, min(examples, len(data)), seed=seed))
        for batch in batches(subset, batch_size, shuffle=False):
            model.zero_grad(set_to_none=True)
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                           token_type_ids=batch["token_type_ids"]).logits
            if regression:
                loss = torch.nn.functional.mse_loss(logits.squeeze(-1), batch["labels"].float(), reduction="sum")
            else:
                loss = torch.nn.functional.cross_entropy(logits, batch["labels"], reduction="sum")
            loss.backward()
            _accumulate(model, scores, use_grad=True)
        model.zero_grad(set_to_none=True)
        return scores, len(subset)
    finally:
        model.train(was_training)


def measure_importance(model: Any, data: Any | None = None, *, examples: int = 256, batch_size: int = 32,
                       regression: bool = False, seed: int = 0) -> Importance:
    """Importance orders of a BERT classifier: every axis sorted by :func:`importance_scores`, descending."""
    scores, n = importance_scores(model, data, examples=examples, batch_size=batch_size, regression=regression,
                                  seed=seed)
    return _orders(scores, TeacherShape.of(model.config), n)


@torch.no_grad()
def rewire(state: dict[str, torch.Tensor], importance: Importance) -> dict[str, torch.Tensor]:
    """The teacher's tensors permuted along every axis into descending importance (the same function)."""
    out = {}
    for name, tensor in state.items():
        if name.endswith("position_ids") or name.endswith("token_type_ids"):
            continue  # buffers
        kinds, layer = axes_of(name)
        t = tensor
        for dim, kind in enumerate(kinds):
            if kind is not None:
                t = t.index_select(dim, importance.order(kind, layer))
        out[name] = t.contiguous()
    return out


def slice_state(rewired: dict[str, Any], arch: Arch, teacher: TeacherShape,
                num_labels: int | None = None, layers: list[int] | None = None) -> dict[str, Any]:
    """The student's parameters as prefix slices (views) of the rewired tensors; the teacher layers ``layers``
    (0-based, one per student layer; default :func:`depth_map`). ``num_labels`` None keeps the teacher's
    classifier rows."""
    if not teacher.fits(arch):
        raise KdnasError(f"student {arch} is wider than the teacher {teacher.arch}: nothing to inherit")
    size = {"hid": arch.hidden, "att": arch.hidden, "ffn": arch.ffn, "pool": arch.hidden}
    out: dict[str, Any] = {}
    if layers is None:
        layers = depth_map(arch.layers, teacher.layers)
    elif len(layers) != arch.layers or not all(0 <= t < teacher.layers for t in layers):
        raise KdnasError(f"student {arch} needs {arch.layers} teacher layers in 0..{teacher.layers - 1}, "
                         f"got {list(layers)}")
    for name, tensor in rewired.items():
        kinds, layer = axes_of(name)
        targets = [name] if layer is None else [f"bert.encoder.layer.{s}.{name.split('.', 4)[4]}"
                                                for s, t in enumerate(layers) if t == layer]
        if not targets:
            continue
        t = tensor
        for dim, kind in enumerate(kinds):
            if kind is not None:
                t = t.narrow(dim, 0, size[kind])
        for target in targets:
            out[target] = t
    if num_labels is not None and int(rewired["classifier.bias"].shape[0]) != num_labels:
        raise KdnasError(f"teacher has {rewired['classifier.bias'].shape[0]} labels, the student {num_labels}")
    return out


_CACHE: dict[tuple[int, int, int, int], tuple[Any, Any, Importance]] = {}


def teacher_importance(teacher_model: Any, data: Any | None, *, examples: int = 256, regression: bool = False,
                       seed: int = 0) -> Importance:
    """:func:`measure_importance`, computed once per (teacher model, data set) in this process."""
    key = (id(teacher_model), id(data), examples, seed)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is teacher_model and hit[1] is data:
        return hit[2]
    imp = measure_importance(teacher_model, data, examples=examples, regression=regression, seed=seed)
    if len(_CACHE) >= 4:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = (teacher_model, data, imp)
    return imp


@torch.no_grad()
def inherit_into(student: Any, teacher_model: Any, importance: Importance, layers: list[int] | None = None) -> None:
    """Load the sliced rewired teacher into ``student`` (a BertForSequenceClassification of a fitting arch);
    ``layers``: the teacher layers it keeps (default :func:`depth_map`)."""
    cfg = student.config
    arch = Arch(int(cfg.num_hidden_layers), int(cfg.hidden_size), int(cfg.num_attention_heads),
                int(cfg.intermediate_size))
    shape = TeacherShape.of(teacher_model.config)
    state = slice_state(rewire(teacher_model.state_dict(), importance), arch, shape, num_labels=int(cfg.num_labels),
                        layers=layers)
    missing, unexpected = student.load_state_dict({k: v.clone() for k, v in state.items()}, strict=False)
    missing = [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))]
    if missing or unexpected:
        raise KdnasError(f"inheritance left {len(missing)} student tensors unset ({', '.join(missing[:3])}) and "
                         f"{len(unexpected)} unused")
