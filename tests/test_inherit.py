"""Inherited weights: importance rewiring keeps the teacher's function, every student of a space loads from
it with one consistent hidden-channel order, whole heads are kept, depth follows the layer map."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kdnas_bench.distill import distill, get_task, load_teacher, prepare_data
from kdnas_bench.distill.data import batches
from kdnas_bench.distill.inherit import TeacherShape, depth_map, measure_importance, rewire
from kdnas_bench.distill.trainer import init_student
from kdnas_bench.models import build_model
from kdnas_bench.space import Arch, SearchSpace

from .conftest import TINY_SPACE
from .helpers import FAST, GLUE, TEACHER_ARCH

pytestmark = pytest.mark.skipif(not (GLUE / "SST-2" / "dev.tsv").is_file(), reason="../shared/data/glue not present")
SST2 = get_task("sst2")


@pytest.fixture(scope="module")
def setup(tiny_teacher: Path, tiny_glue: Path):
    teacher = load_teacher(tiny_teacher, task="sst2")
    data = prepare_data(teacher.tokenizer, "sst2", data_dir=tiny_glue, max_examples=200)
    batch = next(batches(data.dev, 16, shuffle=False))
    return teacher, data, {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


def test_depth_map_spreads_layers_and_keeps_the_last() -> None:
    assert depth_map(1, 6) == [5] and depth_map(2, 6) == [2, 5] and depth_map(3, 6) == [1, 3, 5]
    assert depth_map(4, 6) == [1, 2, 4, 5] and depth_map(6, 6) == list(range(6))
    assert depth_map(4, 2) == [0, 0, 1, 1]


def test_teacher_shaped_student_reproduces_the_teachers_logits(setup) -> None:
    teacher, data, inputs = setup
    student = init_student(TEACHER_ARCH, teacher, SST2, data=data.train)
    with torch.no_grad():
        want, got = teacher.model(**inputs).logits, student(**inputs).logits
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    # it is a permutation of the teacher, not a copy: the rewiring really reordered channels
    imp = measure_importance(teacher.model, data.train, examples=64)
    assert not torch.equal(imp.hidden, torch.arange(TEACHER_ARCH.hidden))


def test_every_arch_of_the_space_inherits_with_one_hidden_order(setup) -> None:
    teacher, data, inputs = setup
    imp = measure_importance(teacher.model, data.train, examples=256)
    t_state = teacher.model.state_dict()
    for arch in SearchSpace.load(TINY_SPACE).archs:
        student = init_student(arch, teacher, SST2, data=data.train)
        shapes = {k: v.shape for k, v in build_model(arch).state_dict().items()}
        assert {k: v.shape for k, v in student.state_dict().items()} == shapes, arch
        keep, att0 = imp.hidden[: arch.hidden], imp.attention[depth_map(arch.layers, 2)[0]][: arch.hidden]
        s = student.state_dict()
        emb = "bert.embeddings.word_embeddings.weight"
        assert torch.equal(s[emb], t_state[emb][:, keep])
        assert torch.equal(s["bert.embeddings.LayerNorm.weight"], t_state["bert.embeddings.LayerNorm.weight"][keep])
        t_layer = f"bert.encoder.layer.{depth_map(arch.layers, 2)[0]}."
        assert torch.equal(s["bert.encoder.layer.0.attention.self.query.weight"],
                           t_state[t_layer + "attention.self.query.weight"][att0][:, keep])
        assert torch.equal(s["bert.encoder.layer.0.attention.output.dense.weight"],
                           t_state[t_layer + "attention.output.dense.weight"][keep][:, att0])
        pool = imp.pooler[: arch.hidden]
        assert torch.equal(s["bert.pooler.dense.weight"], t_state["bert.pooler.dense.weight"][pool][:, keep])
        with torch.no_grad():
            assert torch.isfinite(student(**inputs).logits).all()


def test_attention_channels_keep_whole_teacher_heads(setup) -> None:
    teacher, data, _ = setup
    imp = measure_importance(teacher.model, data.train, examples=128)
    d = TEACHER_ARCH.hidden // TEACHER_ARCH.heads
    for order in imp.attention:
        heads = [set((order[i * d:(i + 1) * d] // d).tolist()) for i in range(TEACHER_ARCH.heads)]
        assert all(len(h) == 1 for h in heads)  # every block of d channels is one teacher head
        assert sorted(order.tolist()) == list(range(TEACHER_ARCH.hidden))
    # importance is measured on data: other examples, other orders are possible but the same data give the same
    again = measure_importance(teacher.model, data.train, examples=128)
    assert all(torch.equal(a, b) for a, b in zip(imp.attention, again.attention, strict=True))


def test_rewired_teacher_is_the_same_function(setup) -> None:
    teacher, data, inputs = setup
    imp = measure_importance(teacher.model, data.train, examples=64)
    model = build_model(TEACHER_ARCH)
    model.load_state_dict(rewire(teacher.model.state_dict(), imp), strict=False)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(**inputs).logits, teacher.model(**inputs).logits, atol=1e-5, rtol=1e-5)
    assert TeacherShape.of(teacher.model.config).arch == TEACHER_ARCH


def test_init_modes_and_distill_default(setup, tiny_teacher: Path, tiny_glue: Path) -> None:
    teacher, data, _ = setup
    arch = Arch(1, 32, 2, 64)
    inh = init_student(arch, teacher, SST2, data=data.train)
    emb = init_student(arch, teacher, SST2, init="embeddings")
    rnd = init_student(arch, teacher, SST2, init="random")
    w = "bert.encoder.layer.0.intermediate.dense.weight"
    assert not torch.equal(inh.state_dict()[w], emb.state_dict()[w])
    assert torch.equal(emb.state_dict()[w], rnd.state_dict()[w])  # only embeddings come from the teacher
    wide = init_student(Arch(1, 128, 2, 64), teacher, SST2, data=data.train)  # wider than the teacher: embeddings mode
    assert wide.config.hidden_size == 128
    with pytest.raises(Exception, match="init must be one of"):
        init_student(arch, teacher, SST2, init="bogus")
    r = distill(tiny_teacher, "sst2", arch, data_dir=tiny_glue, max_examples=64, **FAST)
    assert r.config["init"] == "inherit"
