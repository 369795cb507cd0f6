"""Which teacher layers a shallower student keeps: chosen by greedy elimination on task data — the best
single removal first, nested across depths, deterministic — and loaded by inheritance where asked."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import pytest
import torch

from kdnas_bench.distill import get_task, load_teacher, prepare_data
from kdnas_bench.distill.data import proxy_indices
from kdnas_bench.distill.inherit import TeacherShape, depth_map, measure_importance, rewire, slice_state
from kdnas_bench.distill.layerchoice import (
    _divergence,
    _logits,
    _only_layers,
    choose_layers,
    removal_order,
    teacher_layers,
)
from kdnas_bench.distill.trainer import init_student
from kdnas_bench.errors import KdnasError
from kdnas_bench.space import Arch

from .helpers import GLUE

pytestmark = pytest.mark.skipif(not (GLUE / "SST-2" / "dev.tsv").is_file(), reason="../shared/data/glue not present")
SST2 = get_task("sst2")


@pytest.fixture(scope="module")
def deep(tiny_teacher: Path, tiny_glue: Path):
    """The tiny teacher made 4 layers deep (its 2 layers and perturbed copies), and its training examples."""
    teacher = load_teacher(tiny_teacher, task="sst2")
    model = teacher.model
    torch.manual_seed(0)
    extra = [copy.deepcopy(layer) for layer in model.bert.encoder.layer]
    with torch.no_grad():
        for layer in extra:
            for p in layer.parameters():
                p.add_(0.05 * torch.randn_like(p))
    model.bert.encoder.layer = torch.nn.ModuleList([*model.bert.encoder.layer, *extra])
    model.config.num_hidden_layers = 4
    data = prepare_data(teacher.tokenizer, "sst2", data_dir=tiny_glue, max_examples=200)
    return teacher, data


def _divergence_of(model, data, kept: list[int], examples: int = 64) -> float:
    subset = data.subset(proxy_indices(data.labels, examples, seed=0))
    with torch.no_grad():
        ref = _logits(model, subset, 32)
        with _only_layers(model, kept):
            return _divergence(ref, _logits(model, subset, 32), regression=False)


def test_first_removal_is_the_best_single_removal(deep) -> None:
    teacher, data = deep
    model = teacher.model
    kept = choose_layers(model, data.train, 3, examples=64)
    every = {c: _divergence_of(model, data.train, list(c)) for c in itertools.combinations(range(4), 3)}
    assert tuple(kept) == min(every, key=lambda c: (every[c], [-x for x in c]))
    assert model.config.num_hidden_layers == 4 and len(model.bert.encoder.layer) == 4  # the teacher is restored


def test_elimination_is_nested_deterministic_and_sorted(deep) -> None:
    teacher, data = deep
    model = teacher.model
    order = removal_order(model, data.train, examples=64)
    assert len(set(order)) == 3 and set(order) <= set(range(4))  # three distinct layers removed, one left
    assert removal_order(model, data.train, examples=64) == order
    for depth in (1, 2, 3):
        kept = choose_layers(model, data.train, depth, examples=64)
        assert kept == sorted(kept) and len(kept) == depth
        assert set(kept) == set(range(4)) - set(order[:4 - depth])
        assert teacher_layers(model, data.train, depth, examples=64) == kept
    assert choose_layers(model, data.train, 4, examples=64) == depth_map(4, 4)  # nothing to drop
    with pytest.raises(KdnasError, match="needs task examples"):
        choose_layers(model, None, 2)


def test_slice_state_takes_the_given_teacher_layers(deep) -> None:
    teacher, data = deep
    model = teacher.model
    shape = TeacherShape.of(model.config)
    rewired = rewire(model.state_dict(), measure_importance(model, data.train, examples=32))
    arch = Arch(2, 32, 2, 64)
    state = slice_state(rewired, arch, shape, layers=[0, 2])
    w = "intermediate.dense.weight"
    assert torch.equal(state[f"bert.encoder.layer.1.{w}"], rewired[f"bert.encoder.layer.2.{w}"][:64, :32])
    assert torch.equal(state[f"bert.encoder.layer.0.{w}"], rewired[f"bert.encoder.layer.0.{w}"][:64, :32])
    with pytest.raises(KdnasError, match="needs 2 teacher layers"):
        slice_state(rewired, arch, shape, layers=[0])
    with pytest.raises(KdnasError, match="needs 2 teacher layers"):
        slice_state(rewired, arch, shape, layers=[0, 4])


def test_init_student_inherits_the_chosen_layers(deep) -> None:
    teacher, data = deep
    arch = Arch(2, 32, 2, 64)
    kept = teacher_layers(teacher.model, data.train, 2)
    chosen = init_student(arch, teacher, SST2, data=data.train, layer_choice="importance")
    spread = init_student(arch, teacher, SST2, data=data.train)
    rewired = rewire(teacher.model.state_dict(), measure_importance(teacher.model, data.train))
    w = "intermediate.dense.weight"
    for s, t in enumerate(kept):
        assert torch.equal(chosen.state_dict()[f"bert.encoder.layer.{s}.{w}"],
                           rewired[f"bert.encoder.layer.{t}.{w}"][:64, :32])
    if kept != depth_map(2, 4):
        assert not torch.equal(chosen.state_dict()[f"bert.encoder.layer.0.{w}"],
                               spread.state_dict()[f"bert.encoder.layer.0.{w}"])
    with pytest.raises(KdnasError, match="layer choice must be one of"):
        init_student(arch, teacher, SST2, data=data.train, layer_choice="top")


def test_distill_records_a_chosen_layer_choice_only(tiny_teacher: Path, tiny_glue: Path, run_cli) -> None:
    from kdnas_bench.distill import distill

    from .helpers import FAST

    arch = Arch(1, 32, 2, 64)
    chosen = distill(tiny_teacher, "sst2", arch, data_dir=tiny_glue, max_examples=64, layer_choice="importance", **FAST)
    spread = distill(tiny_teacher, "sst2", arch, data_dir=tiny_glue, max_examples=64, **FAST)
    assert chosen.config["layer_choice"] == "importance" and "layer_choice" not in spread.config
    code, _, err = run_cli("distill", "--teacher", str(tiny_teacher), "--task", "sst2", "--data-dir", str(tiny_glue),
                           "--arch", "1,32,2,64", "--layer-choice", "top")
    assert code != 0 and "--layer-choice" in err
