"""Arch -> transformers BERT model, and analytic parameter counts and FLOPs; an arch from its text
(:func:`parse_arch`: ``L,H,A,FFN``, ``4L-312H-12A-1200F``, a published student's name, a saved model folder).

The analytic figures are what the latency predictors use as features; ``tests/test_models.py`` checks
them against the real model (parameter count) and torch's FLOP counter (matmul + attention FLOPs).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import KdnasError, SpaceError, did_you_mean
from .lazy import lazy_module
from .space import Arch, Shape

if TYPE_CHECKING:
    import torch
    import transformers
else:
    torch = lazy_module("torch")
    transformers = lazy_module("transformers")

VOCAB_SIZE = 30522
MAX_POSITION = 512
TYPE_VOCAB = 2


def bert_config(
    arch: Arch,
    *,
    num_labels: int = 2,
    vocab_size: int = VOCAB_SIZE,
    max_position: int = MAX_POSITION,
    attn_implementation: str | None = None,
    **extra: Any,
) -> Any:
    extra = {"type_vocab_size": TYPE_VOCAB, **extra}
    cfg = transformers.BertConfig(
        vocab_size=vocab_size,
        hidden_size=arch.hidden,
        num_hidden_layers=arch.layers,
        num_attention_heads=arch.heads,
        intermediate_size=arch.ffn,
        max_position_embeddings=max_position,
        **extra,
    )
    cfg.num_labels = num_labels
    if attn_implementation is not None:
        cfg._attn_implementation = attn_implementation
    return cfg


# What a student takes from its teacher's config besides the shape: what makes a slice of the teacher compute
# the teacher's function (activation, LayerNorm epsilon) and fit its tensors (token types) and tokenizer (padding).
TEACHER_KEYS = ("hidden_act", "layer_norm_eps", "type_vocab_size", "pad_token_id")


def teacher_extras(config: Any) -> dict[str, Any]:
    """The :data:`TEACHER_KEYS` of a teacher's config (JSON values), for :func:`build_model`'s ``extra``."""
    out = {k: getattr(config, k) for k in TEACHER_KEYS if getattr(config, k, None) is not None}
    return {k: v for k, v in out.items() if isinstance(v, str | int | float) and not isinstance(v, bool)}


def build_model(
    arch: Arch,
    *,
    num_labels: int = 2,
    vocab_size: int = VOCAB_SIZE,
    max_position: int = MAX_POSITION,
    seed: int = 0,
    attn_implementation: str | None = None,
    **extra: Any,
) -> Any:
    """A randomly initialised ``BertForSequenceClassification`` (encoder + pooler + classifier), in eval mode.
    Its weights depend on ``seed`` only; the global RNG is left as it was. ``extra``: more ``BertConfig``
    fields (a teacher's :func:`teacher_extras`)."""
    cfg = bert_config(
        arch,
        num_labels=num_labels,
        vocab_size=vocab_size,
        max_position=max_position,
        attn_implementation=attn_implementation,
        **extra,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.BertForSequenceClassification(cfg)
    return model.eval()


def tensors_hash(state: dict[str, Any]) -> str:
    """sha256 (16 hex digits) of a state dict's names, shapes, dtypes and bytes (order-independent): a
    fingerprint of a model's weights that, unlike ``id(model)``, names the same weights in any process."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().contiguous().cpu()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()[:16]


def count_params(arch: Arch, *, num_labels: int = 2, vocab_size: int = VOCAB_SIZE, max_position: int = MAX_POSITION) -> int:
    """Parameters of ``BertForSequenceClassification`` for this arch."""
    h, f = arch.hidden, arch.ffn
    embeddings = (vocab_size + max_position + TYPE_VOCAB) * h + 2 * h  # + LayerNorm
    layer = 4 * (h * h + h) + (h * f + f) + (f * h + h) + 2 * (2 * h)  # QKV+O, FFN, two LayerNorms
    pooler = h * h + h
    classifier = h * num_labels + num_labels
    return embeddings + arch.layers * layer + pooler + classifier


@dataclass(frozen=True)
class Flops:
    """Forward FLOPs (2 per multiply-add) of one batch, split by kind."""

    linear: int  # Q, K, V, O projections and the FFN: grows with tokens * hidden * (hidden, ffn)
    attention: int  # QK^T and attention @ V: grows with batch * seq^2 * hidden
    head: int  # pooler + classifier

    @property
    def total(self) -> int:
        return self.linear + self.attention + self.head


def flops(arch: Arch, shape: Shape, *, num_labels: int = 2) -> Flops:
    b, s, h, f = shape.batch, shape.seq, arch.hidden, arch.ffn
    tokens = b * s
    linear = arch.layers * (2 * tokens * 4 * h * h + 2 * tokens * 2 * h * f)
    attention = arch.layers * (2 * 2 * b * s * s * h)
    head = 2 * b * (h * h + h * num_labels)
    return Flops(linear=linear, attention=attention, head=head)


def activation_bytes(arch: Arch, shape: Shape, *, dtype_bytes: int = 4) -> int:
    """Bytes of the main activations written per forward (hidden states, FFN, attention scores)."""
    b, s, h, f = shape.batch, shape.seq, arch.hidden, arch.ffn
    per_layer = b * s * (6 * h + 2 * f) + 2 * b * arch.heads * s * s
    return dtype_bytes * (arch.layers * per_layer + b * s * h)


def make_inputs(shape: Shape, *, vocab_size: int = VOCAB_SIZE, seed: int = 0) -> dict[str, Any]:
    """Fixed, seeded inputs (input_ids, attention_mask, token_type_ids) as CPU int64 tensors."""
    gen = torch.Generator().manual_seed(seed)
    low = 1000 if vocab_size > 2000 else 0  # past the special and unused ids when the vocabulary has them
    ids = torch.randint(low, vocab_size, (shape.batch, shape.seq), generator=gen, dtype=torch.long)
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "token_type_ids": torch.zeros_like(ids),
    }


def arch_of_model_dir(folder: str | Path) -> Arch:
    """The encoder shape of a saved Hugging Face BERT-style model folder (its config.json); one line otherwise."""
    path = Path(folder) / "config.json"
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KdnasError(f"cannot read {path}: {exc}") from None
    try:
        return Arch(int(cfg["num_hidden_layers"]), int(cfg["hidden_size"]), int(cfg["num_attention_heads"]),
                    int(cfg["intermediate_size"]))
    except (KeyError, TypeError, ValueError, SpaceError) as exc:
        raise KdnasError(f"{path} is not a BERT-style encoder config ({exc})") from None


# Encoder shapes as published (layers, hidden, heads, FFN), accepted wherever an arch is (``--arch tinybert-4l``,
# ``--students``). TinyBERT-6L has DistilBERT's shape; both are listed because users look for either name.
NAMED: dict[str, tuple[Arch, str]] = {
    "bert-base": (Arch(12, 768, 12, 3072), "BERT-base (Devlin et al., 2019)"),
    "bert-large": (Arch(24, 1024, 16, 4096), "BERT-large (Devlin et al., 2019)"),
    "distilbert": (Arch(6, 768, 12, 3072), "DistilBERT (Sanh et al., 2019)"),
    "minilm-l12": (Arch(12, 384, 12, 1536), "MiniLM-L12-H384 (Wang et al., 2020)"),
    "minilm-l6": (Arch(6, 384, 12, 1536), "MiniLM-L6-H384 / all-MiniLM-L6-v2"),
    "tinybert-6l": (Arch(6, 768, 12, 3072), "TinyBERT-6L (Jiao et al., 2020)"),
    "tinybert-4l": (Arch(4, 312, 12, 1200), "TinyBERT-4L (Jiao et al., 2020)"),
    "bert-medium": (Arch(8, 512, 8, 2048), "BERT-medium (Turc et al., 2019)"),
    "bert-small": (Arch(4, 512, 8, 2048), "BERT-small (Turc et al., 2019)"),
    "bert-mini": (Arch(4, 256, 4, 1024), "BERT-mini (Turc et al., 2019)"),
    "bert-tiny": (Arch(2, 128, 2, 512), "BERT-tiny (Turc et al., 2019)"),
}

ARCH_NAME = re.compile(r"^(\d+)L-(\d+)H-(\d+)A-(\d+)F$", re.IGNORECASE)


def arch_of_folder(text: str) -> Arch | None:
    """The arch of a saved model folder (its config.json), None when ``text`` names no folder."""
    folder = Path(text).expanduser()
    if not folder.is_dir():
        if "/" in text or os.sep in text:
            raise KdnasError(f"{text}: no such model folder (a saved model folder holds config.json)")
        return None
    if not (folder / "config.json").is_file():
        raise KdnasError(f"{text} is a folder without config.json: not a saved model")
    return arch_of_model_dir(folder)


def parse_arch(text: str, *, folder: Callable[[str], Arch | None] = arch_of_folder) -> Arch:
    """The one arch parser: ``L,H,A,FFN`` (``4,312,12,1200``), its name ``4L-312H-12A-1200F``, a named student
    (:data:`NAMED`, e.g. ``tinybert-4l``) or a saved model folder (the shape in its config.json, read by
    ``folder``); one-line :class:`~kdnas_bench.errors.KdnasError` otherwise.

        >>> parse_arch("4L-312H-12A-1200F") == parse_arch("tinybert-4l") == Arch(4, 312, 12, 1200)
        True
    """
    raw = str(text).strip()
    if raw.lower() in NAMED:
        return NAMED[raw.lower()][0]
    m = ARCH_NAME.match(raw)
    looks_like_arch = m is not None or raw[:1].isdigit()
    from_folder = None if looks_like_arch else folder(raw)
    if from_folder is not None:
        return from_folder
    try:
        return Arch(*(int(v) for v in m.groups())) if m else Arch.parse(raw)
    except SpaceError as exc:
        hint = did_you_mean(raw.lower(), list(NAMED)) if not any(c.isdigit() for c in raw[:1]) else ""
        raise KdnasError(f"invalid arch {raw!r}: {exc}{hint} (give L,H,A,FFN such as 4,312,12,1200, a saved model "
                         f"folder, or a name: {', '.join(NAMED)})") from None
