"""A weight-sharing BERT supernet whose sub-networks are prefix slices of one set of tensors.

The shared tensors are the fine-tuned teacher's, rewired into descending importance
(:mod:`kdnas_bench.distill.inherit`): a sub-network ``(L, h, A, f)`` uses the teacher layers
:func:`~kdnas_bench.distill.inherit.depth_map` picks and the first ``h`` hidden / attention channels and
first ``f`` FFN neurons of each. It runs as a standalone ``BertForSequenceClassification`` of its own
shape through :func:`torch.func.functional_call` with the slices (views) as its parameters, so gradients
reach the shared tensors, and extracting it is copying those slices: the extracted model is the same
function by construction.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.func import functional_call

from ..distill.inherit import Importance, TeacherShape, depth_map, rewire, slice_state
from ..errors import KdnasError
from ..models import build_model, teacher_extras
from ..space import Arch, SearchSpace


class SupernetError(KdnasError):
    """A supernet that does not fit its teacher, space or task, or a file that cannot be used."""


def space_dims(space: SearchSpace) -> dict[str, Any]:
    dims = {"name": space.name, "layers": list(space.layers), "hidden": list(space.hidden),
            "heads": list(space.heads), "ffn": list(space.ffn), "min_head_dim": space.min_head_dim}
    return dims | ({"head_dim": space.head_dim} if space.head_dim else {})  # absent: the hash of older spaces


def space_hash(space: SearchSpace) -> str:
    dims = {k: v for k, v in space_dims(space).items() if k != "name"}
    return hashlib.sha256(json.dumps(dims, sort_keys=True).encode()).hexdigest()[:16]


def data_hash(encoded: Any) -> str:
    h = hashlib.sha256()
    lengths = encoded.lengths()
    h.update(lengths.tobytes())
    h.update(np.concatenate([np.asarray(x, dtype=np.int32) for x in encoded.input_ids]).tobytes())
    h.update(np.asarray(encoded.labels).tobytes())
    return h.hexdigest()[:16]


def space_fits(space: SearchSpace, teacher: TeacherShape) -> None:
    """Every arch of ``space`` must be a slice of the teacher (no deeper, no wider, no larger FFN)."""
    over = [(d, max(getattr(space, d)), getattr(teacher, d)) for d in ("layers", "hidden", "ffn")
            if max(getattr(space, d)) > getattr(teacher, d)]
    if over:
        what = ", ".join(f"{d} up to {mx} > teacher's {t}" for d, mx, t in over)
        raise SupernetError(f"space '{space.name}' does not fit inside the teacher {teacher.arch} ({what}): "
                            "use --space auto (the teacher's students) or a space no larger than the teacher")


def extremes(space: SearchSpace) -> tuple[Arch, Arch]:
    """The largest and the smallest arch of a space (sandwich rule), heads: the most / fewest valid."""
    archs = space.archs
    big = max(archs, key=lambda a: (a.layers, a.hidden, a.ffn, a.heads))
    small = min(archs, key=lambda a: (a.layers, a.hidden, a.ffn, a.heads))
    return big, small


@dataclass(frozen=True)
class TaskHead:
    """What a sub-network's config needs besides its arch: vocabulary, positions and the task's labels."""

    vocab_size: int
    max_position: int
    num_labels: int
    labels: tuple[str, ...]
    regression: bool
    extras: tuple[tuple[str, Any], ...] = ()  # the teacher's models.teacher_extras (activation, LayerNorm eps, ...)

    @classmethod
    def of(cls, config: Any, regression: bool) -> TaskHead:
        labels = tuple(str(config.id2label[i]) for i in range(int(config.num_labels)))
        return cls(int(config.vocab_size), int(config.max_position_embeddings), int(config.num_labels), labels,
                   regression, tuple(sorted(teacher_extras(config).items())))


class Supernet:
    """Shared tensors (``params``) plus the teacher's shape, the importance orders and the task head."""

    def __init__(self, tensors: dict[str, torch.Tensor], teacher: TeacherShape, head: TaskHead,
                 importance: Importance) -> None:
        self.teacher = teacher
        self.head = head
        self.importance = importance
        self.params = {k: torch.nn.Parameter(v.detach().clone()) for k, v in tensors.items()}
        self.device = torch.device("cpu")
        self._skeletons: OrderedDict[Arch, Any] = OrderedDict()
        self._buffers_ref: dict[str, torch.Tensor] | None = None

    def to(self, device: torch.device) -> Supernet:
        """Move the shared tensors to ``device`` (new parameters: build the optimizer after this)."""
        if device != self.device:
            self.params = {k: torch.nn.Parameter(v.detach().to(device), requires_grad=v.requires_grad)
                           for k, v in self.params.items()}
            self.device = device
            self._skeletons.clear()
            self._buffers_ref = None
        return self

    @classmethod
    def from_teacher(cls, teacher_model: Any, importance: Importance, regression: bool) -> Supernet:
        return cls(rewire(teacher_model.state_dict(), importance), TeacherShape.of(teacher_model.config),
                   TaskHead.of(teacher_model.config, regression), importance)

    def parameters(self) -> list[torch.nn.Parameter]:
        return [self.params[k] for k in sorted(self.params)]

    def named_parameters(self) -> list[tuple[str, torch.nn.Parameter]]:
        return [(k, self.params[k]) for k in sorted(self.params)]

    def state(self) -> dict[str, torch.Tensor]:
        return {k: p.detach() for k, p in self.params.items()}

    def check(self, arch: Arch) -> None:
        if arch.layers > self.teacher.layers or not self.teacher.fits(arch):
            raise SupernetError(f"arch {arch} is not a sub-network of the supernet {self.teacher.arch}")

    def sub_params(self, arch: Arch) -> dict[str, torch.Tensor]:
        """The sub-network's parameters: slices (views) of the shared tensors."""
        self.check(arch)
        return slice_state(self.params, arch, self.teacher)

    def _config_model(self, arch: Arch) -> Any:
        with torch.random.fork_rng(devices=[]):  # build_model seeds torch: keep the caller's dropout stream
            model = build_model(arch, num_labels=self.head.num_labels, vocab_size=self.head.vocab_size,
                                max_position=self.head.max_position, **dict(self.head.extras))
        model.config.id2label = dict(enumerate(self.head.labels))
        model.config.label2id = {n: i for i, n in enumerate(self.head.labels)}
        if self.head.regression:
            model.config.problem_type = "regression"
        return model

    def skeleton(self, arch: Arch) -> Any:
        """A standalone model of ``arch`` whose own weights are never used (functional_call replaces them).

        Built on the meta device (no weight allocation, no random init: most of a step's host time when built
        normally), its buffers (position / token-type ids, the same for every arch) copied from the first
        skeleton, built normally; parameters stay on meta, so one functional_call does not replace fails loudly."""
        if arch not in self._skeletons:
            if len(self._skeletons) >= 8:
                self._skeletons.popitem(last=False)
            self._skeletons[arch] = self._meta_skeleton(arch)
        self._skeletons.move_to_end(arch)
        return self._skeletons[arch]

    def _meta_skeleton(self, arch: Arch) -> Any:
        if self._buffers_ref is None:
            model = self._config_model(arch).to(self.device)
            self._buffers_ref = {n: b.detach().clone() for n, b in model.named_buffers()}
            return model
        with torch.device("meta"):
            model = self._config_model(arch)
        buffers = dict(model.named_buffers())
        ref = self._buffers_ref
        if set(buffers) != set(ref) or any(b.shape != ref[n].shape or b.dtype != ref[n].dtype for n, b in buffers.items()):
            return self._config_model(arch).to(self.device)  # arch-dependent buffers: build it normally
        for name in buffers:
            owner, _, leaf = name.rpartition(".")
            model.get_submodule(owner)._buffers[leaf] = ref[name].clone()
        return model

    def logits(self, arch: Arch, batch: dict[str, Any], *, train: bool = False) -> torch.Tensor:
        """The sub-network's logits on a batch; gradients flow into the shared tensors."""
        return self.forward(arch, batch, train=train).logits

    def forward(self, arch: Arch, batch: dict[str, Any], *, train: bool = False, hidden: bool = False) -> Any:
        """The sub-network's model output on a batch (``hidden``: with its hidden states: the embeddings' and
        one per layer, ``arch.hidden`` wide); gradients flow into the shared tensors."""
        model = self.skeleton(arch)
        model.train(train)
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
        return functional_call(model, self.sub_params(arch), args=(), kwargs={**inputs, "output_hidden_states": hidden},
                               strict=False)

    def teacher_hidden_targets(self, arch: Arch, teacher_hidden: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        """What each layer of sub-network ``arch`` is distilled towards: the output of the teacher layer it
        inherits (:func:`~kdnas_bench.distill.inherit.depth_map`), in the supernet's (importance) channel order
        and cut to the sub-network's first ``arch.hidden`` channels — no projection needed, the channels are
        the teacher's own. ``teacher_hidden``: the teacher's hidden states (embeddings + one per layer)."""
        order = self.importance.hidden[: arch.hidden].to(teacher_hidden[0].device)
        return [teacher_hidden[t + 1].index_select(-1, order) for t in depth_map(arch.layers, self.teacher.layers)]

    @torch.no_grad()
    def extract(self, arch: Arch) -> Any:
        """The sub-network as a standalone ``BertForSequenceClassification`` (its slices copied), eval mode."""
        model = self._config_model(arch)
        missing, unexpected = model.load_state_dict({k: v.detach().clone() for k, v in self.sub_params(arch).items()},
                                                    strict=False)
        missing = [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))]
        if missing or unexpected:
            raise SupernetError(f"sub-network {arch} does not match the supernet's tensors ({missing[:3]})")
        return model.eval()
