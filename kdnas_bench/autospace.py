"""``--space auto``: the student space of a teacher, derived from its shape and written as TOML.

For a teacher of ``L`` layers, hidden size ``H``, ``A`` heads of size ``d = H / A`` and FFN size ``F``:

- **layers**: 1 to ``L`` (at most 12 values, always ``L``);
- **hidden**: multiples of ``d`` from ``max(d, min(128, H / 2))`` to ``H`` (at most 8 values, always ``H``),
  each with ``hidden / d`` heads: every student keeps the teacher's head size, so inherited students keep whole
  teacher heads (the measured best recipe);
- **ffn**: steps of a multiple of ``d`` down from ``F`` to ``min(256, F / 2)`` (at most 12 values, always ``F``);
- **shapes**: the default space's (the profiled ones), sequence lengths capped at the teacher's positions;
- **[model]**: the teacher's vocabulary, positions and label count.

128 and 256 are the smallest hidden and FFN sizes of the default space (what the committed latency profiles
cover): a big teacher's space stays inside the profiled range where it can. The space is written as
``space.toml`` into the run (or supernet) folder, so ``--space FOLDER/space.toml`` repeats the run.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from pathlib import Path
from typing import Any

from .errors import SpaceError
from .paths import default_space
from .space import SearchSpace

AUTO = "auto"
SPACE_FILE = "space.toml"
MAX_LAYERS, MAX_HIDDEN, MAX_FFN = 12, 8, 12  # values per dimension


def _grid(top: int, floor: int, quantum: int, most: int) -> tuple[int, ...]:
    """At most ``most`` values ``top - k * stride * quantum`` that stay at or above ``floor`` (always ``top``)."""
    floor = min(max(floor, quantum), top)
    span = (top - floor) // quantum
    stride = max(1, math.ceil((span + 1) / most))
    return tuple(sorted(top - k * stride * quantum for k in range(span // stride + 1)))


def teacher_shape(config: Any) -> tuple[int, int, int, int]:
    """(layers, hidden, heads, ffn) of a BERT-layout teacher config."""
    try:
        return (int(config.num_hidden_layers), int(config.hidden_size), int(config.num_attention_heads),
                int(config.intermediate_size))
    except (AttributeError, TypeError, ValueError):
        raise SpaceError("--space auto needs a BERT-layout teacher (layers, hidden size, heads and FFN size in "
                         "its config.json)") from None


def derive_space(config: Any, *, base: SearchSpace | None = None, teacher: str = "") -> SearchSpace:
    """The student space of the teacher whose ``transformers`` config is ``config`` (rules: module docstring).
    ``base`` gives the smallest sizes and the shapes (default: the default space)."""
    base = base or SearchSpace.load(default_space())
    layers, hidden, heads, ffn = teacher_shape(config)
    if heads <= 0 or hidden % heads:
        raise SpaceError(f"teacher heads ({heads}) do not divide its hidden size ({hidden})")
    d = hidden // heads
    widths = _grid(hidden, max(d, min(min(base.hidden), hidden // 2)), d, MAX_HIDDEN)
    max_position = int(getattr(config, "max_position_embeddings", base.max_position))
    seq = tuple(s for s in base.seq if s <= max_position) or (max_position,)
    where = f" {teacher}" if teacher else ""
    return SearchSpace(
        name=f"students-of-{layers}x{hidden}-{heads}h-{ffn}",
        description=f"students of the teacher{where} ({layers} layers, hidden {hidden}, {heads} heads of {d}, "
                    f"FFN {ffn}), derived by --space auto",
        layers=_grid(layers, 1, 1, MAX_LAYERS),
        hidden=widths,
        heads=tuple(sorted({w // d for w in widths})),
        ffn=_grid(ffn, min(min(base.ffn), ffn // 2), d, MAX_FFN),
        seq=seq,
        batch=base.batch,
        max_tokens=base.max_tokens,
        min_head_dim=d,
        head_dim=d,
        vocab_size=int(getattr(config, "vocab_size", base.vocab_size)),
        max_position=max_position,
        num_labels=int(getattr(config, "num_labels", base.num_labels)),
    )


def _ints(values: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"


def space_toml(space: SearchSpace) -> str:
    """The space as a TOML document that :meth:`SearchSpace.load` reads back to an equal grid."""
    lines = [
        "# A student space written by kdnas-bench (--space auto): every arch is at most as deep and as wide as the",
        "# teacher and keeps its head size. Repeat the run with --space <this file>; edit it to change the grid.",
        "",
        "[space]",
        f"name = {json.dumps(space.name)}",
        f"description = {json.dumps(space.description)}",
        "",
        "[arch]",
        f"layers = {_ints(space.layers)}",
        f"hidden = {_ints(space.hidden)}",
        f"heads = {_ints(space.heads)}",
        f"ffn = {_ints(space.ffn)}",
        f"min_head_dim = {space.min_head_dim}",
        *([f"head_dim = {space.head_dim}             # only archs of this head size (hidden / heads)"]
          if space.head_dim else []),
        "",
        "[model]",
        f"vocab_size = {space.vocab_size}",
        f"max_position = {space.max_position}",
        f"num_labels = {space.num_labels}",
        "",
        "[shapes]",
        f"seq = {_ints(space.seq)}",
        f"batch = {_ints(space.batch)}",
        f"max_tokens = {space.max_tokens}",
        "",
    ]
    return "\n".join(lines)


def check_space_folder(space: SearchSpace, folder: str | Path) -> Path:
    """``FOLDER/space.toml`` may hold ``space``: the folder is a folder (or new), and a space already there is the
    same grid (a different one means the folder holds the run of another teacher). Nothing is written."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise SpaceError(f"{folder} is a file, not a folder to write {SPACE_FILE} into")
    path = folder / SPACE_FILE
    if path.is_file():
        try:
            old = SearchSpace.load(path)
        except SpaceError:
            old = None
        if old is None or _grid_of(old) != _grid_of(space):
            raise SpaceError(f"{path} holds another space ('{old.name if old else 'unreadable'}', not "
                             f"'{space.name}'): pass another folder, or --space {path} to repeat that run")
    return path


def write_space(space: SearchSpace, folder: str | Path) -> Path:
    """``FOLDER/space.toml`` (atomic), checked first by :func:`check_space_folder` (an equal one is kept)."""
    path = check_space_folder(space, folder)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(space_toml(space), encoding="utf-8")
    os.replace(tmp, path)
    return path


def _grid_of(space: SearchSpace) -> tuple[Any, ...]:
    return (space.archs, space.shapes, space.vocab_size, space.max_position, space.num_labels)


def resolve_space(spec: str | None, config: Any | None, folder: str | Path, *, teacher: str = "",
                  write: bool = True) -> tuple[SearchSpace, str]:
    """The space a command uses and its file: ``spec`` a TOML path loads it; ``auto`` (or None with a teacher
    ``config``) derives the teacher's space and writes it to ``FOLDER/space.toml`` (with ``write=False`` only
    checks that it may: the caller writes it with :func:`write_space` once every other check passed); None without
    a teacher: the default space."""
    if spec is not None and spec.strip().lower() != AUTO:
        return SearchSpace.load(spec), str(spec)
    if config is None:
        if spec is not None:
            raise SpaceError("--space auto derives the space from a teacher: pass --teacher (or a space TOML)")
        path = default_space()
        return SearchSpace.load(path), str(path)
    space = derive_space(config, teacher=teacher)
    path = write_space(space, folder) if write else check_space_folder(space, folder)
    if path.is_file():
        return SearchSpace.load(path), str(path)
    return SearchSpace.from_dict(tomllib.loads(space_toml(space)), source=str(path)), str(path)


__all__ = ["AUTO", "SPACE_FILE", "check_space_folder", "derive_space", "resolve_space", "space_toml", "write_space"]
