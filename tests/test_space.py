from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from kdnas_bench.errors import SpaceError
from kdnas_bench.paths import default_space
from kdnas_bench.space import Arch, SearchSpace, Shape, iter_configs, sample_archs, sample_shapes


def test_arch_validates() -> None:
    a = Arch(4, 312, 12, 1200)
    assert a.head_dim == 26
    assert Arch.parse("4, 312,12,1200") == a
    assert Arch.from_dict(a.to_dict()) == a
    with pytest.raises(SpaceError, match="must divide"):
        Arch(4, 310, 12, 1200)
    for bad in [(0, 128, 2, 256), (2, -128, 2, 256), (2, 128, 0, 256), (2, 128, 2, 0)]:
        with pytest.raises(SpaceError, match="positive"):
            Arch(*bad)
    for text in ["4,312,12", "a,b,c,d", "4,312,12,1200,5"]:
        with pytest.raises(SpaceError, match="L,H,A,FFN"):
            Arch.parse(text)
    with pytest.raises(SpaceError):
        Shape(0, 128)


def test_default_space_loads_and_contains_reference_students() -> None:
    space = SearchSpace.load(default_space())
    assert space.size > 1000
    assert all(s.batch * s.seq <= space.max_tokens for s in space.shapes)
    assert space.contains(Arch(6, 384, 12, 1536))  # MiniLM-L6 shape
    assert not space.contains(Arch(4, 312, 12, 1200))  # TinyBERT: valid, off-grid
    assert all(a.hidden % a.heads == 0 and a.head_dim >= space.min_head_dim for a in space.archs)


@pytest.mark.parametrize(
    "body, message",
    [
        ("[arch]\nlayers = [1]\n", "missing"),
        ("[arch\nlayers=", "malformed"),
        (
            "[arch]\nlayers=[1]\nhidden=[30]\nheads=[4]\nffn=[64]\n[shapes]\nseq=[8]\nbatch=[1]\n",
            "no valid arch",
        ),
        (
            "[arch]\nlayers=[1]\nhidden=[32]\nheads=[4]\nffn={min=64,max=32}\n[shapes]\nseq=[8]\nbatch=[1]\n",
            "empty",
        ),
        (
            "[arch]\nlayers=[0]\nhidden=[32]\nheads=[4]\nffn=[64]\n[shapes]\nseq=[8]\nbatch=[1]\n",
            "positive",
        ),
        (
            "[arch]\nlayers=[1]\nhidden=[32]\nheads=[4]\nffn=[64]\n[shapes]\nseq=[64]\nbatch=[2]\nmax_tokens=16\n",
            "no shape",
        ),
        (
            "[arch]\nlayers=[1]\nhidden=[32]\nheads=[4]\nffn=[64]\nhead_dim=16\n[shapes]\nseq=[8]\nbatch=[1]\n",
            "no valid arch of head size 16",
        ),
        (
            "[arch]\nlayers=[1]\nhidden=[32]\nheads=[4]\nffn=[64]\nhead_dim='8'\n[shapes]\nseq=[8]\nbatch=[1]\n",
            "head_dim and \\[model\\] values must be integers",
        ),
        (
            "[arch]\nlayers=[1]\nhidden=[32]\nheads=[4]\nffn=[64]\nhead_dim=0\n[shapes]\nseq=[8]\nbatch=[1]\n",
            "must be positive",
        ),
    ],
)
def test_bad_space_files(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(body)
    with pytest.raises(SpaceError, match=message):
        SearchSpace.load(path)


def test_sampling_is_seeded_and_space_filling(tiny_space_path: Path) -> None:
    space = SearchSpace.load(default_space())
    for sampler in ("uniform", "sobol", "lhs"):
        a1 = sample_archs(space, 64, sampler=sampler, seed=3)
        assert a1 == sample_archs(space, 64, sampler=sampler, seed=3)
        assert a1 != sample_archs(space, 64, sampler=sampler, seed=4)
        assert all(space.contains(a) for a in a1)
        shapes = sample_shapes(space, 64, sampler=sampler, seed=3)
        assert all(s in space.shapes for s in shapes)
    sobol = sample_archs(space, 64, sampler="sobol", seed=0)
    # a space-filling design reaches both ends of every ordinal dimension
    for dim in ("layers", "hidden", "ffn"):
        values = {getattr(a, dim) for a in sobol}
        grid = getattr(space, dim)
        assert min(values) <= grid[1] and max(values) >= grid[-2]


def test_config_stream_is_deterministic(tiny_space_path: Path) -> None:
    space = SearchSpace.load(tiny_space_path)
    first = [c for _, c in zip(range(40), iter_configs(space, seed=1, shapes_per_arch=3), strict=False)]
    again = [c for _, c in zip(range(40), iter_configs(space, seed=1, shapes_per_arch=3), strict=False)]
    assert first == again
    assert [i for i, _, _ in first] == list(range(40))
    # shapes of one arch come together, so a backend builds each arch once
    stream = iter_configs(SearchSpace.load(default_space()), seed=0, shapes_per_arch=4)
    archs = [a for _, (_, a, _) in zip(range(400), stream, strict=False)]
    runs = 1 + sum(a != b for a, b in itertools.pairwise(archs))
    assert runs <= 125  # ~100-115 archs for 400 configs (a repeated shape is dropped, never re-drawn)


def test_restrict_shapes(tiny_space_path: Path) -> None:
    space = SearchSpace.load(tiny_space_path).restrict_shapes(seq=[8], batch=[2])
    assert space.shapes == (Shape(2, 8),)
    with pytest.raises(SpaceError):
        SearchSpace.load(tiny_space_path).restrict_shapes(seq=[64])  # 64 tokens > max_tokens 32


def test_a_fixed_head_size_filters_contains_and_sampling(tmp_path: Path) -> None:
    path = tmp_path / "h.toml"
    path.write_text("[arch]\nlayers=[1, 2]\nhidden=[32, 64]\nheads=[1, 2, 4]\nffn=[64]\nhead_dim=16\n"
                    "[shapes]\nseq=[8]\nbatch=[1]\n")
    space = SearchSpace.load(path)
    assert {a.head_dim for a in space.archs} == {16} and space.size == 4
    assert not space.contains(Arch(1, 64, 2, 64)) and space.contains(Arch(1, 64, 4, 64))
    for sampler in ("uniform", "sobol", "lhs"):
        assert {a.head_dim for a in sample_archs(space, 16, sampler=sampler, seed=1)} == {16}
    assert space.to_dict()["head_dim"] == 16 and "head_dim" not in SearchSpace.load(default_space()).to_dict()
