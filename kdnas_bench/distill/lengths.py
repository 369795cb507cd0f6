"""How many tokens an example keeps (``--max-length``).

``"auto"`` (the default of ``teacher finetune``, ``distill``, ``supernet train`` and the search's final): the
longest example of the train and dev sets, rounded up to a multiple of 8 and capped at the model's positions,
so no example is cut unless it is longer than the model can read. A number cuts every longer example to it.
Either way :class:`Lengths` says which length was used and how many examples were cut.

An example no longer than the length is tokenised exactly as before (truncation only touches longer ones), so
on data whose examples all fit in 128 tokens (SST-2) ``auto`` gives the same tokens as the old fixed 128.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import KdnasError
from .data import Encoded, encode
from .taskspec import Examples

AUTO = "auto"
LEGACY = 128  # the fixed length before --max-length: a run folder that records none used it
MULTIPLE = 8
FALLBACK_POSITIONS = 512  # a tokenizer without a sane model_max_length and no model config given


def parse_max_length(value: int | str | None) -> int | str:
    """``"auto"`` (also for None) or a positive number of tokens; KdnasError otherwise."""
    if value is None or str(value).strip().lower() == AUTO:
        return AUTO
    try:
        n = int(str(value).strip())
    except ValueError:
        raise KdnasError(f"--max-length must be 'auto' or a number of tokens, got {value!r}") from None
    if n <= 0:
        raise KdnasError(f"--max-length must be positive (tokens per example) or 'auto', got {n}")
    return n


def model_positions(config: Any) -> int | None:
    """The tokens a model can read: ``max_position_embeddings`` (less RoBERTa's padding offset)."""
    positions = getattr(config, "max_position_embeddings", None)
    if positions is None:
        return None
    kind = getattr(config, "model_type", "")
    offset = int(getattr(config, "pad_token_id", 0) or 0) + 1 if kind in ("roberta", "xlm-roberta", "camembert") else 0
    return int(positions) - offset


def token_cap(tokenizer: Any, positions: int | None) -> int:
    """The most tokens an example may keep: the model's positions, and the tokenizer's own limit when smaller."""
    limits = [positions] if positions else []
    own = getattr(tokenizer, "model_max_length", None)
    if isinstance(own, int) and 0 < own < 1_000_000:
        limits.append(own)
    return min(limits) if limits else FALLBACK_POSITIONS


@dataclass(frozen=True)
class Lengths:
    """The length examples were cut to, how it was chosen, and what it cut."""

    max_length: int
    chosen: str  # "auto" (from the data) or "given"
    positions: int  # the model's limit (the cap of "auto")
    longest: int  # tokens of the longest train or dev example (at most positions + 1: longer ones are not counted on)
    cut_train: int
    cut_dev: int
    train: int
    dev: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line: the length, why, and how many examples it cuts."""
        if self.chosen == AUTO:
            why = (f"auto: the longest example, {self.longest} tokens, rounded up to a multiple of {MULTIPLE}"
                   if self.longest <= self.positions else f"auto: capped at the model's {self.positions} positions")
        else:
            why = "given"
        return f"max length {self.max_length} tokens ({why}); {self.cut_line()}"

    def cut_line(self) -> str:
        if not self.cut_train and not self.cut_dev:
            return "no example is cut"
        return (f"{self.cut_train:,} of {self.train:,} train and {self.cut_dev:,} of {self.dev:,} dev examples are longer "
                f"and are cut to {self.max_length} tokens")


def _cut(probe: Encoded, examples: Examples, tokenizer: Any, length: int) -> tuple[Encoded, int]:
    """``probe`` (tokenised with a longer limit) with its examples longer than ``length`` re-tokenised at ``length``."""
    longer = np.flatnonzero(probe.lengths() > length)
    if len(longer) == 0:
        return probe, 0
    short = encode(examples.subset(longer), tokenizer, max_length=length)
    ids, types = list(probe.input_ids), list(probe.token_type_ids)
    for row, i in enumerate(longer.tolist()):
        ids[i], types[i] = short.input_ids[row], short.token_type_ids[row]
    return Encoded(ids, types, probe.labels, probe.pad_id, probe.source), len(longer)


def _beyond(wanted: int, cap: int) -> str:
    return f"--max-length {wanted} is more than the model reads ({cap} positions); pass at most {cap} or 'auto'"


def check_fits(max_length: int | str, model: str | Path | None) -> None:
    """Refuse a number beyond the positions of the model saved in ``model`` (its config.json) in one line, before
    any work; nothing when the config cannot be read (loading the model names that)."""
    if not isinstance(max_length, int) or model is None:
        return
    try:
        from transformers import AutoConfig  # noqa: PLC0415  lazy: transformers, optional

        positions = model_positions(AutoConfig.from_pretrained(str(model)))
    except Exception:  # a missing or broken model: the verb's own loading says so
        return
    if positions is not None and max_length > positions:
        raise KdnasError(_beyond(max_length, positions))


def encode_pair(train: Examples, dev: Examples, tokenizer: Any, max_length: int | str,
                positions: int | None = None) -> tuple[Encoded, Encoded, Lengths]:
    """Tokenise train and dev at ``max_length`` (``"auto"``: from their longest example, see the module doc),
    refusing a length beyond the model's ``positions`` in one line."""
    wanted = parse_max_length(max_length)
    cap = token_cap(tokenizer, positions)
    if wanted != AUTO and int(wanted) > cap:
        raise KdnasError(_beyond(int(wanted), cap))
    probes = [encode(part, tokenizer, max_length=cap + 1) for part in (train, dev)]  # cap + 1: longer ones show
    longest = max(int(p.lengths().max()) for p in probes)
    length = min(cap, -(-longest // MULTIPLE) * MULTIPLE) if wanted == AUTO else int(wanted)
    (train_enc, cut_train), (dev_enc, cut_dev) = (_cut(p, ex, tokenizer, length) for p, ex in zip(probes, (train, dev),
                                                                                             strict=True))
    chosen = AUTO if wanted == AUTO else "given"
    return train_enc, dev_enc, Lengths(length, chosen, cap, longest, cut_train, cut_dev, len(train), len(dev))


def recorded_max_length(config: dict[str, Any] | None) -> int:
    """The length a stored run used: its ``max_length``, or the old fixed 128 when it records none."""
    value = (config or {}).get("max_length")
    return int(value) if isinstance(value, int) and value > 0 else LEGACY


def length_config(lengths: Lengths | None, fallback: int | str = LEGACY) -> dict[str, Any]:
    """The ``config`` entries of a metrics.json: ``max_length`` (tokens) and, when known, how it was chosen and
    how many examples it cut (``max_length_auto``, ``cut_examples``)."""
    if lengths is None:
        return {"max_length": fallback}
    return {"max_length": lengths.max_length, "max_length_auto": lengths.chosen == AUTO,
            "cut_examples": {"train": lengths.cut_train, "dev": lengths.cut_dev}}


def trained_max_length(folder: Path) -> int:
    """The length a saved teacher or student was trained with (``config.max_length`` of its metrics.json; 128
    when it has none or records none)."""
    try:
        doc = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return LEGACY
    return recorded_max_length(doc.get("config") if isinstance(doc, dict) else None)
