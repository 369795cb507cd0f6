"""Search spaces (TOML), architectures and inference shapes, and how to sample them.

An :class:`Arch` is a frozen, validated value: any BERT-style encoder whose heads divide its hidden
size can be built and measured, not only the grid points of a space. A :class:`SearchSpace` holds the
grid that sampling and search draw from, plus the inference shapes to profile.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SpaceError

ARCH_DIMS = ("layers", "hidden", "heads", "ffn")
# limits that keep every space enumerable in memory and seconds (the default space: 10,488 archs)
MAX_VALUES = 10_000  # values per dimension
MAX_COMBINATIONS = 1_000_000  # layers x hidden x heads x ffn grid points, checked before enumerating
MAX_DIM = 2**31 - 1  # any single size (int32, so FLOPs of a config stay far inside int64)


@dataclass(frozen=True, order=True)
class Arch:
    """A BERT-style student: encoder layers, hidden size, attention heads, FFN (intermediate) size."""

    layers: int
    hidden: int
    heads: int
    ffn: int

    def __post_init__(self) -> None:
        for name in ARCH_DIMS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise SpaceError(f"arch {name} must be an integer, got {value!r}")
            if value <= 0:
                raise SpaceError(f"arch {name} must be positive, got {value}")
            if value > MAX_DIM:
                raise SpaceError(f"arch {name} {value} is too large (at most {MAX_DIM:,})")
            object.__setattr__(self, name, int(value))
        if self.hidden % self.heads:
            raise SpaceError(f"arch heads ({self.heads}) must divide hidden ({self.hidden})")

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @classmethod
    def parse(cls, text: str) -> Arch:
        """Parse ``"L,H,A,FFN"`` (e.g. ``"4,312,12,1200"``)."""
        parts = [p.strip() for p in str(text).split(",")]
        if len(parts) != 4:
            raise SpaceError(f"arch must be L,H,A,FFN (4 integers), got {text!r}")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise SpaceError(f"arch must be L,H,A,FFN (4 integers), got {text!r}") from None
        return cls(*values)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Arch:
        missing = [k for k in ARCH_DIMS if k not in d]
        if missing:
            raise SpaceError(f"arch is missing {', '.join(missing)}")
        return cls(*(d[k] for k in ARCH_DIMS))

    def to_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ARCH_DIMS}

    def __str__(self) -> str:
        return arch_text(self)


def arch_text(arch: Arch | Mapping[str, Any]) -> str:
    """The one way an arch is written in every table, report and line: ``L,H,A,FFN`` (``4,312,12,1200``), as
    ``--arch`` takes it. ``arch`` is an :class:`Arch` or its dict (``layers``, ``hidden``, ``heads``, ``ffn``)."""
    values = [getattr(arch, k) for k in ARCH_DIMS] if isinstance(arch, Arch) else [arch[k] for k in ARCH_DIMS]
    return ",".join(str(int(v)) for v in values)


@dataclass(frozen=True, order=True)
class Shape:
    """An inference shape: batch size and sequence length (tokens per forward = batch * seq)."""

    batch: int
    seq: int

    def __post_init__(self) -> None:
        for name in ("batch", "seq"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 0 < value <= MAX_DIM:
                raise SpaceError(f"{name} must be a positive integer (at most {MAX_DIM:,}), got {value!r}")
            object.__setattr__(self, name, int(value))


def _values(section: dict[str, Any], key: str, where: str) -> tuple[int, ...]:
    if key not in section:
        raise SpaceError(f"{where}: missing '{key}'")
    raw = section[key]
    if isinstance(raw, dict):
        bounds = (raw.get("min"), raw.get("max"), raw.get("step", 1))
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in bounds):
            raise SpaceError(f"{where}: '{key}' range needs integer min, max (and step)")
        lo, hi, step = (int(v) for v in bounds)  # type: ignore[arg-type]
        if step <= 0 or hi < lo:
            raise SpaceError(f"{where}: '{key}' range is empty (min {lo}, max {hi}, step {step})")
        if (hi - lo) // step + 1 > MAX_VALUES:
            raise SpaceError(f"{where}: '{key}' range has {(hi - lo) // step + 1:,} values, more than the "
                             f"{MAX_VALUES:,} a dimension may have (raise 'step')")
        values = tuple(range(lo, hi + 1, step))
    elif isinstance(raw, list):
        if not raw or not all(isinstance(v, int) and not isinstance(v, bool) for v in raw):
            raise SpaceError(f"{where}: '{key}' must be a non-empty list of integers")
        values = tuple(sorted(set(raw)))
        if len(values) > MAX_VALUES:
            raise SpaceError(f"{where}: '{key}' lists {len(values):,} values, more than the {MAX_VALUES:,} a "
                             "dimension may have")
    else:
        raise SpaceError(f"{where}: '{key}' must be a list or a {{min, max, step}} range")
    if any(v <= 0 for v in values):
        raise SpaceError(f"{where}: '{key}' values must be positive, got {min(values)}")
    if max(values) > MAX_DIM:
        raise SpaceError(f"{where}: '{key}' value {max(values)} is too large (at most {MAX_DIM:,})")
    return values


@dataclass(frozen=True)
class SearchSpace:
    """The grid of student archs and inference shapes a campaign or search draws from."""

    name: str
    layers: tuple[int, ...]
    hidden: tuple[int, ...]
    heads: tuple[int, ...]
    ffn: tuple[int, ...]
    seq: tuple[int, ...]
    batch: tuple[int, ...]
    max_tokens: int
    min_head_dim: int = 1
    head_dim: int | None = None  # only archs of this head size (hidden / heads), e.g. the teacher's
    vocab_size: int = 30522
    max_position: int = 512
    num_labels: int = 2
    description: str = ""
    source: str = ""
    _archs: tuple[Arch, ...] = field(default=(), repr=False, compare=False)
    _shapes: tuple[Shape, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        combos = math.prod(len(getattr(self, d)) for d in ARCH_DIMS)
        if combos > MAX_COMBINATIONS:
            raise SpaceError(f"space '{self.name}' has {combos:,} arch grid points, more than {MAX_COMBINATIONS:,}; "
                             "use fewer values per dimension")
        archs = tuple(
            Arch(lay, hid, hea, ffn)
            for lay, hid, hea, ffn in itertools.product(self.layers, self.hidden, self.heads, self.ffn)
            if hid % hea == 0 and hid // hea >= self.min_head_dim and self.head_dim in (None, hid // hea)
        )
        if not archs:
            what = f"of head size {self.head_dim}" if self.head_dim else "(no heads divide any hidden size)"
            raise SpaceError(f"space '{self.name}' has no valid arch {what}")
        shapes = tuple(Shape(b, s) for b in self.batch for s in self.seq if b * s <= self.max_tokens)
        if not shapes:
            raise SpaceError(f"space '{self.name}' has no shape with batch*seq <= max_tokens ({self.max_tokens})")
        if max(self.seq) > self.max_position:
            raise SpaceError(f"space '{self.name}': seq {max(self.seq)} exceeds max_position {self.max_position}")
        object.__setattr__(self, "_archs", archs)
        object.__setattr__(self, "_shapes", shapes)

    # -- loading ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> SearchSpace:
        path = Path(path)
        if path.is_dir():
            inside = " (it holds space.toml: pass that file)" if (path / "space.toml").is_file() else ""
            raise SpaceError(f"space file {path} is a folder; --space takes a space TOML file or 'auto'{inside}")
        if not path.is_file():
            raise SpaceError(f"space file not found: {path}")
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SpaceError(f"malformed space file {path}: {exc}") from None
        return cls.from_dict(doc, source=str(path))

    @classmethod
    def from_dict(cls, doc: dict[str, Any], source: str = "") -> SearchSpace:
        where = source or "space"
        for section in ("arch", "shapes"):
            if not isinstance(doc.get(section), dict):
                raise SpaceError(f"{where}: missing [{section}] table")
        arch, shapes = doc["arch"], doc["shapes"]
        meta = doc.get("space", {}) if isinstance(doc.get("space"), dict) else {}
        model = doc.get("model", {}) if isinstance(doc.get("model"), dict) else {}
        max_tokens = shapes.get("max_tokens", 10**9)
        min_head_dim = arch.get("min_head_dim", 1)
        extra: dict[str, Any] = {k: model[k] for k in ("vocab_size", "max_position", "num_labels") if k in model}
        if "head_dim" in arch:
            extra["head_dim"] = arch["head_dim"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (max_tokens, min_head_dim, *extra.values())):
            raise SpaceError(f"{where}: max_tokens, min_head_dim, head_dim and [model] values must be integers")
        if max_tokens <= 0 or any(v <= 0 for v in extra.values()):
            raise SpaceError(f"{where}: max_tokens, head_dim and [model] values must be positive")
        hidden = _values(arch, "hidden", where)
        if "heads" not in arch and "head_dim" in extra:  # a fixed head size: heads follow from hidden
            arch = {**arch, "heads": sorted({h // extra["head_dim"] for h in hidden if h % extra["head_dim"] == 0})
                    or [1]}
        return cls(
            name=str(meta.get("name", Path(source).stem if source else "space")),
            description=str(meta.get("description", "")),
            layers=_values(arch, "layers", where),
            hidden=hidden,
            heads=_values(arch, "heads", where),
            ffn=_values(arch, "ffn", where),
            seq=_values(shapes, "seq", where),
            batch=_values(shapes, "batch", where),
            max_tokens=max_tokens,
            min_head_dim=min_head_dim,
            source=source,
            **extra,
        )

    def restrict_shapes(self, seq: Sequence[int] | None = None, batch: Sequence[int] | None = None) -> SearchSpace:
        """The same space with only the given sequence lengths / batch sizes."""
        kwargs = {k: getattr(self, k) for k in self.__dataclass_fields__ if not k.startswith("_")}
        if seq:
            kwargs["seq"] = tuple(sorted(set(seq)))
        if batch:
            kwargs["batch"] = tuple(sorted(set(batch)))
        for key in ("seq", "batch"):
            if any(int(v) <= 0 for v in kwargs[key]):
                raise SpaceError(f"{key} values must be positive, got {list(kwargs[key])}")
        return SearchSpace(**kwargs)

    # -- contents --------------------------------------------------------------------------------
    @property
    def archs(self) -> tuple[Arch, ...]:
        return self._archs

    @property
    def shapes(self) -> tuple[Shape, ...]:
        return self._shapes

    @property
    def size(self) -> int:
        return len(self._archs)

    def contains(self, arch: Arch) -> bool:
        return (
            arch.layers in self.layers
            and arch.hidden in self.hidden
            and arch.heads in self.heads
            and arch.ffn in self.ffn
            and arch.head_dim >= self.min_head_dim
            and self.head_dim in (None, arch.head_dim)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "layers": list(self.layers),
            "hidden": list(self.hidden),
            "heads": list(self.heads),
            "ffn": list(self.ffn),
            "min_head_dim": self.min_head_dim,
            **({"head_dim": self.head_dim} if self.head_dim else {}),
            "seq": list(self.seq),
            "batch": list(self.batch),
            "max_tokens": self.max_tokens,
            "archs": self.size,
            "shapes": len(self.shapes),
            "configs": self.size * len(self.shapes),
        }


# -- sampling ------------------------------------------------------------------------------------
SAMPLERS = ("uniform", "sobol", "lhs")


def _nearest(values: Sequence[int], target: float) -> int:
    return min(values, key=lambda v: (abs(v - target), v))


def _valid_heads(space: SearchSpace, hidden: int) -> list[int]:
    return [h for h in space.heads if hidden % h == 0 and hidden // h >= space.min_head_dim
            and space.head_dim in (None, hidden // h)]


def sample_archs(space: SearchSpace, n: int, *, sampler: str = "uniform", seed: int = 0) -> list[Arch]:
    """``n`` archs from the space. ``uniform`` draws valid archs uniformly; ``sobol`` / ``lhs`` spread
    points over the ordinal choices of (layers, hidden, heads, ffn) and repair heads to the nearest
    valid value, so the whole range is covered."""
    if sampler not in SAMPLERS:
        raise SpaceError(f"unknown sampler '{sampler}' (choose from {', '.join(SAMPLERS)})")
    if n <= 0:
        return []
    if sampler == "uniform":
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, space.size, size=n)
        return [space.archs[i] for i in idx]
    unit = _unit_points(n, 4, sampler, seed)
    out = []
    for u in unit:
        layers = space.layers[int(u[0] * len(space.layers))]
        hidden = space.hidden[int(u[1] * len(space.hidden))]
        ffn = space.ffn[int(u[3] * len(space.ffn))]
        valid_heads = _valid_heads(space, hidden)
        if not valid_heads:  # this hidden size has no valid head count: take the nearest that has
            hidden = _nearest([a.hidden for a in space.archs], hidden)
            valid_heads = _valid_heads(space, hidden)
        heads = valid_heads[int(u[2] * len(valid_heads))]
        out.append(Arch(layers, hidden, heads, ffn))
    return out


def sample_shapes(space: SearchSpace, n: int, *, sampler: str = "uniform", seed: int = 0) -> list[Shape]:
    """``n`` inference shapes (batch, seq) within ``max_tokens``."""
    if sampler not in SAMPLERS:
        raise SpaceError(f"unknown sampler '{sampler}' (choose from {', '.join(SAMPLERS)})")
    if n <= 0:
        return []
    if sampler == "uniform":
        rng = np.random.default_rng(seed)
        return [space.shapes[i] for i in rng.integers(0, len(space.shapes), size=n)]
    out = []
    for u in _unit_points(n, 2, sampler, seed):
        seq = space.seq[int(u[0] * len(space.seq))]
        fitting = [b for b in space.batch if b * seq <= space.max_tokens]
        if not fitting:
            seq = max(s for s in space.seq if min(space.batch) * s <= space.max_tokens)
            fitting = [b for b in space.batch if b * seq <= space.max_tokens]
        out.append(Shape(fitting[int(u[1] * len(fitting))], seq))
    return out


def _unit_points(n: int, dims: int, sampler: str, seed: int) -> np.ndarray:
    from scipy.stats import qmc  # noqa: PLC0415  lazy: scipy

    if sampler == "sobol":
        engine: qmc.QMCEngine = qmc.Sobol(d=dims, scramble=True, seed=seed)
        pts = engine.random(2 ** math.ceil(math.log2(max(n, 2))))[:n]
    else:
        pts = qmc.LatinHypercube(d=dims, seed=seed).random(n)
    return np.clip(pts, 0.0, np.nextafter(1.0, 0.0))


def iter_configs(
    space: SearchSpace, *, sampler: str = "uniform", seed: int = 0, shapes_per_arch: int = 4, chunk: int = 256
) -> Iterator[tuple[int, Arch, Shape]]:
    """An endless, deterministic stream of (index, arch, shape): each arch comes with
    ``shapes_per_arch`` shapes so a backend builds (or exports) it once. The same seed gives the
    same stream, which is what lets an interrupted campaign resume."""
    block = 0
    index = 0
    while True:
        archs = sample_archs(space, chunk, sampler=sampler, seed=seed * 1_000_003 + block)
        shapes = sample_shapes(space, chunk * shapes_per_arch, sampler=sampler, seed=seed * 1_000_003 + block + 7)
        for i, arch in enumerate(archs):
            for shape in dict.fromkeys(shapes[i * shapes_per_arch : (i + 1) * shapes_per_arch]):
                yield index, arch, shape
                index += 1
        block += 1
