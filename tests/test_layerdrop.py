"""The layer-dropped teacher baseline: full width, evenly spread layers, every tensor copied from the teacher
(and the same function as inheriting that arch through importance rewiring); scaled to a budget."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kdnas_bench.distill import get_task, load_teacher, prepare_data
from kdnas_bench.distill.layerdrop import dropped_arch, kept_layers, layer_dropped, layers_for_budget
from kdnas_bench.distill.trainer import init_student
from kdnas_bench.errors import KdnasError
from kdnas_bench.models import build_model, make_inputs
from kdnas_bench.space import Arch, Shape

from .helpers import GLUE


def test_layer_dropped_keeps_full_width_and_copies_the_kept_layers() -> None:
    teacher = build_model(Arch(6, 64, 4, 128), seed=3)
    student = layer_dropped(teacher, 2)
    assert student.config.num_hidden_layers == 2 and len(student.bert.encoder.layer) == 2
    assert teacher.config.num_hidden_layers == 6 and len(teacher.bert.encoder.layer) == 6  # untouched
    assert dropped_arch(teacher.config, 2) == Arch(2, 64, 4, 128)
    t, s = teacher.state_dict(), student.state_dict()
    for si, ti in enumerate([2, 5]):  # evenly spread, the last layer kept
        for k, v in s.items():
            if k.startswith(f"bert.encoder.layer.{si}."):
                assert torch.equal(v, t[k.replace(f"layer.{si}.", f"layer.{ti}.", 1)]), k
    for k in ("bert.embeddings.word_embeddings.weight", "bert.pooler.dense.weight", "classifier.weight"):
        assert torch.equal(s[k], t[k])
    assert sum(p.numel() for p in student.parameters()) == sum(
        p.numel() for p in build_model(Arch(2, 64, 4, 128)).parameters())
    # a standalone model: training it leaves the teacher alone
    student.bert.encoder.layer[0].output.dense.weight.data.add_(1.0)
    assert not torch.equal(student.state_dict()["bert.encoder.layer.0.output.dense.weight"],
                           t["bert.encoder.layer.2.output.dense.weight"])
    inputs = make_inputs(Shape(2, 16), vocab_size=teacher.config.vocab_size)
    with torch.no_grad():
        full = layer_dropped(teacher, 6)(**inputs).logits
        torch.testing.assert_close(full, teacher(**inputs).logits)


def test_bottom_keeps_the_first_layers_and_drops_the_top() -> None:
    teacher = build_model(Arch(6, 64, 4, 128), seed=5)
    assert kept_layers(1, 6) == [5] and kept_layers(2, 6) == [2, 5]  # spread: ends with the last layer
    assert kept_layers(1, 6, "bottom") == [0] and kept_layers(3, 6, "bottom") == [0, 1, 2]
    student = layer_dropped(teacher, 2, keep="bottom")
    t, s = teacher.state_dict(), student.state_dict()
    for si in (0, 1):
        for k, v in s.items():
            if k.startswith(f"bert.encoder.layer.{si}."):
                assert torch.equal(v, t[k]), k
    assert not any(k.startswith("bert.encoder.layer.2.") for k in s)
    with pytest.raises(KdnasError, match="keep must be one of"):
        layer_dropped(teacher, 2, keep="top")


def test_layer_dropped_rejects_bad_counts() -> None:
    teacher = build_model(Arch(2, 64, 4, 128))
    for bad in (0, 3):
        with pytest.raises(KdnasError, match="keeps 1 to 2 layers"):
            layer_dropped(teacher, bad)


def test_layers_for_budget_is_the_deepest_that_fits() -> None:
    cfg = build_model(Arch(6, 64, 4, 128)).config

    def per_layer(arch: Arch) -> float:
        return 1.0 + 2.0 * arch.layers

    assert layers_for_budget(cfg, 7.0, per_layer) == 3
    assert layers_for_budget(cfg, 100.0, per_layer) == 6
    assert layers_for_budget(cfg, 0.5, per_layer) == 1


@pytest.mark.skipif(not (GLUE / "SST-2" / "dev.tsv").is_file(), reason="../shared/data/glue not present")
def test_layer_dropped_is_the_inherited_student_of_its_arch(tiny_teacher: Path, tiny_glue: Path) -> None:
    teacher = load_teacher(tiny_teacher, task="sst2")
    data = prepare_data(teacher.tokenizer, "sst2", data_dir=tiny_glue, max_examples=100)
    arch = dropped_arch(teacher.model.config, 1)
    inherited = init_student(arch, teacher, get_task("sst2"), data=data.train)
    inputs = make_inputs(Shape(3, 12), vocab_size=teacher.model.config.vocab_size)
    with torch.no_grad():
        torch.testing.assert_close(layer_dropped(teacher.model, 1)(**inputs).logits, inherited(**inputs).logits,
                                   atol=1e-5, rtol=1e-5)
