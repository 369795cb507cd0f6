"""Teachers of other shapes: ``--space auto`` derives their students (written as TOML, read back by the space
loader), inheritance, the supernet, the search (one-shot and proxy) and the final work for tiny random BERT
teachers of three shapes, big teachers get latency predictions with a warning, and other families are refused
in one line before any work."""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path

import pytest
import torch

from kdnas_bench.autospace import SPACE_FILE, derive_space, space_toml, write_space
from kdnas_bench.errors import SpaceError
from kdnas_bench.space import Arch, SearchSpace

from .helpers import DEV, GLUE, ROOT

needs_glue = pytest.mark.skipif(not (GLUE / "SST-2" / "dev.tsv").is_file(), reason="../shared/data/glue not present")
# (layers, hidden, heads, ffn): deep and narrow, wider with heads of 64, shallow and tiny (small enough that a
# test of each takes seconds on a busy 2-core machine)
SHAPES = [Arch(12, 64, 2, 128), Arch(3, 192, 3, 384), Arch(2, 64, 4, 128)]


def _config(arch: Arch, **extra: object):
    from transformers import BertConfig

    return BertConfig(num_hidden_layers=arch.layers, hidden_size=arch.hidden, num_attention_heads=arch.heads,
                      intermediate_size=arch.ffn, **extra)


@pytest.fixture(scope="module")
def vocab(tiny_glue: Path) -> list[str]:
    """A 400-word WordPiece vocabulary of the tiny SST-2 train set (other words are [UNK]): small embeddings."""
    words: collections.Counter[str] = collections.Counter()
    for line in (tiny_glue / "SST-2" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        words.update(re.findall(r"[a-z]+|[^a-z\s]", line.split("\t")[0].lower()))
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *(w for w, _ in words.most_common(400))]


def make_teacher(path: Path, arch: Arch, vocab: list[str], **extra: object) -> Path:
    """A random 2-label BERT of ``arch`` (seeded) with a tiny-vocabulary tokenizer, saved as a HF folder."""
    from transformers import BertForSequenceClassification, BertTokenizer

    torch.manual_seed(arch.layers * 1000 + arch.hidden)
    model = BertForSequenceClassification(_config(arch, vocab_size=len(vocab), **extra))
    model.save_pretrained(path)
    BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def teachers(tmp_path_factory: pytest.TempPathFactory, vocab: list[str]) -> dict[Arch, Path]:
    root = tmp_path_factory.mktemp("shapes")
    return {a: make_teacher(root / str(a).replace(",", "-"), a, vocab) for a in SHAPES}


# -- the auto space --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("teacher", [*SHAPES, Arch(8, 256, 4, 1024), Arch(12, 128, 2, 512), Arch(6, 384, 12, 1536),
                                     Arch(12, 768, 12, 3072), Arch(4, 312, 12, 1200)])
def test_auto_space_is_the_teachers_students_and_reloads_from_its_toml(teacher: Arch, tmp_path: Path) -> None:
    space = derive_space(_config(teacher, num_labels=3, vocab_size=999, max_position_embeddings=128))
    d = teacher.head_dim
    assert teacher in space.archs and space.contains(teacher)  # the teacher's own shape is the largest student
    for a in space.archs:
        assert a.layers <= teacher.layers and a.hidden <= teacher.hidden and a.ffn <= teacher.ffn, a
        assert a.head_dim == d and a.hidden % d == 0, a  # whole teacher heads
    assert 1 in space.layers or teacher.layers > 12
    assert len(space.hidden) <= 8 and len(space.ffn) <= 12 and len(space.layers) <= 12
    assert (space.vocab_size, space.max_position, space.num_labels) == (999, 128, 3)
    assert max(space.seq) <= 128  # sequence lengths within the teacher's positions
    path = write_space(space, tmp_path)
    again = SearchSpace.load(path)
    assert again.archs == space.archs and again.shapes == space.shapes and again.name == space.name
    assert (again.head_dim, again.vocab_size, again.num_labels) == (d, 999, 3)
    assert write_space(space, tmp_path) == path  # the same space again: kept


def test_auto_space_of_the_packaged_minilm_matches_its_hand_written_space() -> None:
    auto = derive_space(_config(Arch(6, 384, 12, 1536)))
    hand = SearchSpace.load(ROOT / "search" / "spaces" / "minilm-students.toml")
    assert (auto.layers, auto.hidden, auto.ffn, auto.seq, auto.batch) == (hand.layers, hand.hidden, hand.ffn, hand.seq,
                                                                          hand.batch)
    assert {a for a in hand.archs if a.head_dim == 32} <= set(auto.archs)


def test_auto_space_toml_format_and_a_conflicting_file(tmp_path: Path) -> None:
    space = derive_space(_config(Arch(2, 64, 4, 128)))
    text = space_toml(space)
    assert "[arch]" in text and "head_dim = 16" in text and "hidden = [32, 48, 64]" in text
    # a file without heads: a fixed head size derives them
    (tmp_path / "h.toml").write_text(text.replace("heads = [2, 3, 4]\n", ""))
    assert SearchSpace.load(tmp_path / "h.toml").archs == space.archs
    write_space(space, tmp_path / "run")
    other = derive_space(_config(Arch(2, 128, 4, 256)))
    with pytest.raises(SpaceError, match="holds another space"):
        write_space(other, tmp_path / "run")


def test_big_teachers_get_predictions_with_a_warning_not_a_crash(preds: Path) -> None:
    import numpy as np

    from kdnas_bench.predictors.registry import load_predictor
    from kdnas_bench.search.study import LatencyTable
    from kdnas_bench.space import Shape

    predictor = load_predictor(DEV, "torch", 1, root=preds)
    base = LatencyTable(predictor, list(derive_space(_config(Arch(12, 768, 12, 3072))).archs), Shape(1, 128))
    assert not any(base[a][3] for a in base.archs)  # BERT-base's students: inside the profiled range
    big = derive_space(_config(Arch(24, 1024, 16, 4096)))
    table = LatencyTable(predictor, list(big.archs), Shape(1, 128))
    rows = np.array([table[a][:3] for a in big.archs])
    assert np.isfinite(rows).all() and (rows > 0).all()
    assert any(table[a][3] for a in big.archs)  # deeper / wider than profiled: flagged out of range


# -- inheritance, supernet, search and final per teacher shape -------------------------------------------------
@needs_glue
@pytest.mark.parametrize("shape", SHAPES, ids=lambda a: f"{a.layers}x{a.hidden}")
def test_inheritance_into_every_kind_of_student(shape: Arch, teachers: dict[Arch, Path], tiny_glue: Path) -> None:
    from kdnas_bench.distill import get_task, load_teacher, prepare_data
    from kdnas_bench.distill.data import batches
    from kdnas_bench.distill.trainer import init_student

    teacher = load_teacher(teachers[shape], task="sst2")
    data = prepare_data(teacher.tokenizer, "sst2", data_dir=tiny_glue, max_examples=32)
    batch = next(batches(data.dev, 8, shuffle=False))
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    space = derive_space(teacher.model.config)
    same = init_student(shape, teacher, get_task("sst2"), data=data.train)
    with torch.no_grad():
        torch.testing.assert_close(same(**inputs).logits, teacher.model(**inputs).logits, atol=1e-5, rtol=1e-5)
    smallest = min(space.archs)
    for arch in (smallest, space.archs[len(space.archs) // 2]):
        student = init_student(arch, teacher, get_task("sst2"), data=data.train)
        emb = student.state_dict()["bert.embeddings.word_embeddings.weight"]
        assert emb.shape == (teacher.model.config.vocab_size, arch.hidden)
        t_emb = teacher.model.state_dict()["bert.embeddings.word_embeddings.weight"]
        assert all(any(torch.equal(emb[:, j], t_emb[:, k]) for k in range(shape.hidden)) for j in range(4))  # inherited


def _search(preds: Path, teacher: Path, glue: Path, run: Path, *extra: str) -> list[str]:
    return ["search", "--device", DEV, "--backend", "torch", "--budget-ms", "1000", "--task", "sst2",
            "--teacher", str(teacher), "--data-dir", str(glue), "--predictors", str(preds), "--episodes", "2",
            "--candidates", "2", "--proxy-examples", "48", "--proxy-epochs", "1", "--out", str(run), "--evaluator", "proxy",
            "--json", *extra]


ONESHOT = ("--evaluator", "supernet", "--supernet-examples", "64", "--supernet-epochs", "1", "--rerank-top", "1",
           "--rerank-examples", "32", "--rerank-epochs", "1", "--final", "--final-examples", "32", "--final-epochs", "1")


@needs_glue
@pytest.mark.parametrize("shape", SHAPES, ids=lambda a: f"{a.layers}x{a.hidden}")
def test_supernet_search_and_final_with_the_auto_space(shape: Arch, teachers: dict[Arch, Path], preds: Path,
                                                       tiny_glue: Path, tmp_path: Path, run_cli) -> None:
    run = tmp_path / "run"
    code, out, err = run_cli(*_search(preds, teachers[shape], tiny_glue, run, *ONESHOT))
    assert code == 0, err
    space = SearchSpace.load(run / SPACE_FILE)
    assert space.head_dim == shape.head_dim and max(space.archs) <= shape
    (w,) = json.loads(out)["winners"]
    arch = Arch.from_dict(w["arch"])
    assert space.contains(arch) and w["final_init"] == "supernet"
    assert (Path(w["student_dir"]) / "model.safetensors").is_file() and 0.0 <= w["final_metric"] <= 1.0
    doc = json.loads((run / "supernet" / "supernet.json").read_text())
    assert doc["largest"] == str(shape) and doc["recipe"]["space"]["head_dim"] == shape.head_dim
    # the written space repeats the run: the same config, nothing evaluated again
    code, out, err = run_cli(*_search(preds, teachers[shape], tiny_glue, run, "--space", str(run / SPACE_FILE),
                                      *ONESHOT))
    assert code == 0, err
    assert json.loads(out)["evaluated_now"] == 0


@needs_glue
def test_proxy_search_and_supernet_cli_with_the_auto_space(teachers: dict[Arch, Path], preds: Path, tiny_glue: Path,
                                                           tmp_path: Path, run_cli) -> None:
    shape = SHAPES[1]  # 3 x 192, three heads of 64
    run = tmp_path / "run"
    code, out, err = run_cli(*_search(preds, teachers[shape], tiny_glue, run, "--final", "--final-examples", "32",
                                      "--final-epochs", "1"))
    assert code == 0, err
    (w,) = json.loads(out)["winners"]
    assert w["final_init"] == "inherit" and Arch.from_dict(w["arch"]).head_dim == 64
    assert SearchSpace.load(run / SPACE_FILE).contains(Arch.from_dict(w["arch"]))
    # the tiny 2 x 64 teacher's students lie outside the test predictor's range: said, not a crash
    code, _, err = run_cli(*_search(preds, teachers[SHAPES[2]], tiny_glue, tmp_path / "tiny", "--episodes", "1",
                                    "--candidates", "1"))
    assert code == 0 and "outside the latency predictor's profiled range" in " ".join(err.split())
    # supernet train: --space auto is the default; the space goes next to the supernet
    out_dir = tmp_path / "supernet"
    code, out, err = run_cli("supernet", "train", "--teacher", str(teachers[shape]), "--task", "sst2", "--data-dir",
                             str(tiny_glue), "--out", str(out_dir), "--max-examples", "32", "--epochs", "1", "--json")
    assert code == 0, err
    assert SearchSpace.load(out_dir / SPACE_FILE).archs == SearchSpace.load(run / SPACE_FILE).archs
    assert json.loads(out)["largest"] == str(shape)


# -- other families --------------------------------------------------------------------------------------------
def _other_families(root: Path, vocab: list[str]) -> dict[str, Path]:
    from transformers import (
        BertTokenizer,
        DistilBertConfig,
        DistilBertForSequenceClassification,
        ElectraConfig,
        ElectraForSequenceClassification,
    )

    small = {"vocab_size": len(vocab), "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
             "intermediate_size": 64}
    models = {
        "distilbert": DistilBertForSequenceClassification(DistilBertConfig(vocab_size=len(vocab), dim=32, n_layers=1,
                                                                           n_heads=2, hidden_dim=64)),
        "electra": ElectraForSequenceClassification(ElectraConfig(embedding_size=32, **small)),
    }
    out = {}
    for name, model in models.items():
        model.save_pretrained(root / name)
        BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(root / name)
        out[name] = root / name
    out["relative"] = make_teacher(root / "relative", Arch(1, 32, 2, 64), vocab, position_embedding_type="relative_key")
    out["short"] = make_teacher(root / "short", Arch(1, 32, 2, 64), vocab, max_position_embeddings=64)
    return out


@needs_glue
def test_other_families_are_refused_in_one_line(vocab: list[str], preds: Path, tiny_glue: Path, tmp_path: Path,
                                                run_cli, capsys: pytest.CaptureFixture[str]) -> None:
    folders = _other_families(tmp_path, vocab)
    capsys.readouterr()  # save_pretrained's progress bars
    for name, folder in folders.items():
        commands = {
            "search": _search(preds, folder, tiny_glue, tmp_path / f"run-{name}"),
            "distill": ["distill", "--teacher", str(folder), "--task", "sst2", "--arch", "1,32,2,64", "--data-dir",
                        str(tiny_glue)],
            "supernet": ["supernet", "train", "--teacher", str(folder), "--task", "sst2", "--data-dir", str(tiny_glue),
                         "--out", str(tmp_path / f"sn-{name}")],
        }
        for verb, args in commands.items():
            code, _, err = run_cli(*args)
            lines = err.strip().splitlines()
            assert code == 2 and len(lines) == 1, (name, verb, err)
            if name == "short":
                assert "has 64 positions" in lines[0] and "at least 128" in lines[0], (verb, lines)
                continue
            assert "kdnas-bench distils BERT-layout" in lines[0] and "model_type 'bert'" in lines[0], (name, verb)
            assert "'roberta'" in lines[0]  # names every family that works
            assert (name if name != "relative" else "relative_key") in lines[0]
        assert not (tmp_path / f"run-{name}" / SPACE_FILE).exists() and not (tmp_path / f"sn-{name}").exists()


@needs_glue
def test_a_roberta_teacher_is_read_as_the_same_bert(vocab: list[str], preds: Path, tiny_glue: Path, tmp_path: Path,
                                                    run_cli) -> None:
    from transformers import BertTokenizer, RobertaConfig, RobertaForSequenceClassification

    from kdnas_bench.distill import get_task, load_teacher, prepare_data
    from kdnas_bench.distill.data import batches
    from kdnas_bench.distill.trainer import init_student

    words = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", *vocab[5:]]  # RoBERTa's special ids: padding 1
    torch.manual_seed(5)
    roberta = RobertaForSequenceClassification(RobertaConfig(vocab_size=len(words), hidden_size=64, num_hidden_layers=2,
                                                             num_attention_heads=2, intermediate_size=128,
                                                             type_vocab_size=1, layer_norm_eps=1e-5,
                                                             max_position_embeddings=514)).eval()  # as released
    folder = tmp_path / "roberta"
    roberta.save_pretrained(folder)
    BertTokenizer(vocab={w: i for i, w in enumerate(words)}, unk_token="<unk>", pad_token="<pad>", cls_token="<s>",
                  sep_token="</s>", mask_token="<mask>").save_pretrained(folder)
    teacher = load_teacher(folder, task="sst2")
    assert teacher.model.config.model_type == "bert" and teacher.model.config.max_position_embeddings == 512
    data = prepare_data(teacher.tokenizer, "sst2", data_dir=tiny_glue, max_examples=32)
    batch = next(batches(data.dev, 8, shuffle=False))
    assert (batch["input_ids"] == 1).any()  # padded: the positions of padded rows are what differs
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    student = init_student(Arch(2, 64, 2, 128), teacher, get_task("sst2"), data=data.train)
    with torch.no_grad():
        want = roberta(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        torch.testing.assert_close(teacher.model(**inputs).logits, want, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(student(**inputs).logits, want, atol=1e-5, rtol=1e-5)
    assert student.config.type_vocab_size == 1 and student.config.layer_norm_eps == 1e-5
    code, out, err = run_cli(*_search(preds, folder, tiny_glue, tmp_path / "run", *ONESHOT))
    assert code == 0, err
    (w,) = json.loads(out)["winners"]
    assert SearchSpace.load(tmp_path / "run" / SPACE_FILE).head_dim == 32
    assert (Path(w["student_dir"]) / "tokenizer_config.json").is_file()
