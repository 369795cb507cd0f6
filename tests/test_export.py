"""``kdnas-bench export`` (a saved model folder to ONNX fp32 / int8, the accuracy of each on a dev set) and a saved
model folder wherever an arch is taken (``predict --arch FOLDER``, ``measure``, ``distill``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from kdnas_bench.space import Arch

from .helpers import GLUE, TEACHER_ARCH, TOKENIZER_FILES, minilm_path

needs_glue = pytest.mark.skipif(not (GLUE / "SST-2" / "dev.tsv").is_file(), reason="../shared/data/glue not present")


def _ort_logits(path: Path, folder: Path, texts: list[str]) -> np.ndarray:
    """The exported file's output on real sentences, tokenized by the tokenizer written beside it."""
    import onnxruntime as ort
    from transformers import AutoTokenizer

    enc = AutoTokenizer.from_pretrained(str(folder))(texts, padding=True, return_tensors="np")
    feeds = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def _torch_logits(folder: Path, texts: list[str]) -> np.ndarray:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    enc = AutoTokenizer.from_pretrained(str(folder))(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**enc).logits.numpy()


@needs_glue
def test_export_round_trip_with_the_accuracy_after_quantization(tiny_teacher: Path, tiny_glue: Path, tmp_path: Path,
                                                                 run_cli) -> None:
    out = tmp_path / "onnx"
    code, stdout, err = run_cli("export", "--model", str(tiny_teacher), "--out", str(out), "--quantize", "int8",
                                "--task", "sst2", "--data-dir", str(tiny_glue), "--json")
    assert code == 0, err
    report = json.loads(stdout)
    assert json.loads((out / "export.json").read_text(encoding="utf-8")) | {"out": str(out)} == report
    assert Arch.from_dict(report["arch"]) == TEACHER_ARCH and report["output"] == "logits"
    assert report["onnx_bytes"]["int8"] < 0.5 * report["onnx_bytes"]["fp32"]
    # the folder is self-contained: its tokenizer and the fp32 file give the torch model's logits
    texts = ["a gripping , funny film", "dull and far too long", "it is what it is"]
    np.testing.assert_allclose(_ort_logits(out / "model.onnx", out, texts), _torch_logits(tiny_teacher, texts),
                               atol=1e-4)
    assert _ort_logits(out / "model.int8.onnx", out, texts).shape == (3, 2)
    assert report["fp32_max_abs_diff_vs_torch"] < 1e-4
    # the accuracy: each file's dev metric, the fp32 one what torch scores
    from kdnas_bench.deploy import evaluate_onnx
    from kdnas_bench.distill.data import encode, get_task, load_split
    from kdnas_bench.distill.teacher import load_teacher
    from kdnas_bench.distill.training import evaluate

    acc = report["accuracy"]
    assert acc["task"] == "sst2" and acc["primary_metric"] == "accuracy"
    assert acc["int8_metric"] == evaluate_onnx(out / "model.int8.onnx", "sst2", data_dir=tiny_glue,
                                               tokenizer_dir=out)["accuracy"]
    assert acc["drop_points"] == pytest.approx(100 * (acc["fp32_metric"] - acc["int8_metric"]))
    teacher = load_teacher(tiny_teacher)
    dev = encode(load_split(get_task("sst2"), "dev", tiny_glue), teacher.tokenizer, max_length=128)
    assert acc["fp32_metric"] == pytest.approx(evaluate(teacher.model, dev, get_task("sst2"))["accuracy"], abs=1 / 120)


def test_export_of_a_backbone_gives_its_hidden_states(tmp_path: Path, run_cli) -> None:
    """A folder without a classification head (a backbone such as the packaged MiniLM) exports its encoder."""
    from transformers import BertModel

    from kdnas_bench.models import bert_config

    backbone = tmp_path / "backbone"
    BertModel(bert_config(Arch(1, 32, 2, 64))).save_pretrained(backbone)
    for name in TOKENIZER_FILES:
        shutil.copy(minilm_path() / name, backbone / name)
    code, stdout, err = run_cli("export", "--model", str(backbone), "--out", str(tmp_path / "onnx"), "--json")
    assert code == 0, err
    report = json.loads(stdout)
    assert report["output"] == "last_hidden_state" and set(report["files"]) == {"fp32"}
    assert report["fp32_max_abs_diff_vs_torch"] < 1e-4
    assert _ort_logits(tmp_path / "onnx" / "model.onnx", tmp_path / "onnx", ["one sentence"]).shape[-1] == 32
    assert not (tmp_path / "onnx" / "model.int8.onnx").exists()


def _break(kind: str, model: Path) -> None:
    if kind == "no-config":
        (model / "config.json").unlink()
    elif kind == "no-weights":
        (model / "model.safetensors").unlink()
    elif kind == "no-tokenizer":
        for name in ("tokenizer.json", "vocab.txt"):
            (model / name).unlink()
    elif kind == "not-bert":
        (model / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 2}), encoding="utf-8")
    elif kind == "bad-weights":
        (model / "model.safetensors").write_bytes(b"not a safetensors file")


@pytest.mark.parametrize(("kind", "expected"), [
    ("no-config", "has no config.json"),
    ("no-weights", "has no model.safetensors"),
    ("no-tokenizer", "has no tokenizer"),
    ("not-bert", "is not a BERT-style encoder config"),
    ("bad-weights", "cannot load --model"),
])
def test_export_refuses_a_bad_model_folder_in_one_line(kind: str, expected: str, tiny_teacher: Path, tmp_path: Path,
                                                       run_cli) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_teacher, model)
    _break(kind, model)
    code, _, err = run_cli("export", "--model", str(model), "--out", str(tmp_path / "onnx"))
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "onnx").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging folder left behind


def test_export_keeps_an_existing_out_unless_overwrite(tiny_teacher: Path, tmp_path: Path, run_cli) -> None:
    out = tmp_path / "onnx"
    out.mkdir()
    (out / "mine.txt").write_text("keep me", encoding="utf-8")
    code, _, err = run_cli("export", "--model", str(tiny_teacher), "--out", str(out))
    assert code == 2 and "already exists" in err and "--overwrite" in err
    assert (out / "mine.txt").read_text(encoding="utf-8") == "keep me"
    code, _, err = run_cli("export", "--model", str(tiny_teacher), "--out", str(out), "--overwrite")
    assert code == 0, err
    assert (out / "model.onnx").is_file() and not (out / "mine.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx"]
    code, _, err = run_cli("export", "--model", str(tiny_teacher), "--out", str(tiny_teacher), "--overwrite")
    assert code == 2 and "holds the model folder" in err
    assert (tiny_teacher / "model.safetensors").is_file()


@needs_glue
def test_export_checks_the_task_before_exporting(tiny_teacher: Path, tiny_glue: Path, tmp_path: Path, run_cli) -> None:
    code, _, err = run_cli("export", "--model", str(tiny_teacher), "--out", str(tmp_path / "onnx"), "--task", "stsb",
                           "--data-dir", str(tiny_glue))
    assert code == 2 and "2 output label(s) but task stsb needs 1" in err
    code, _, err = run_cli("export", "--model", str(tiny_teacher), "--out", str(tmp_path / "onnx"), "--task", "sst2",
                           "--data-dir", str(tmp_path / "no-glue"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "onnx").exists()


# -- a saved model folder wherever an arch is taken -----------------------------------------------------------
def test_predict_takes_a_model_folder_as_arch(tiny_teacher: Path, preds: Path, run_cli) -> None:
    from .helpers import DEV

    common = ("predict", "--device", DEV, "--predictors", str(preds), "--seq", "16", "--batch", "1", "--json")
    code, by_folder, err = run_cli(*common, "--arch", str(tiny_teacher), "--arch", "tinybert-4l")
    assert code == 0, err
    code, by_numbers, err = run_cli(*common, "--arch", "2,64,4,128", "--arch", "tinybert-4l")
    assert code == 0, err
    assert json.loads(by_folder) == json.loads(by_numbers)


@pytest.mark.parametrize(("path", "args"), [(("measure",), ("--seq", "8", "--batch", "1")),
                                           (("distill",), ("--teacher", "t", "--task", "sst2")),
                                           (("supernet", "evaluate"), ("--supernet", "s"))])
def test_every_arch_option_takes_a_model_folder(path: tuple[str, ...], args: tuple[str, ...], tiny_teacher: Path) -> None:
    """The options are parsed (nothing runs): the folder's config.json gives the arch."""
    import click

    from kdnas_bench.cli import cli

    cmd: click.Command = cli
    for name in path:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[name]
    arch = cmd.make_context(" ".join(path), [*args, "--arch", str(tiny_teacher)]).params["arch"]
    assert (arch[0] if isinstance(arch, tuple) else arch) == TEACHER_ARCH


@pytest.mark.parametrize(("text", "expected"), [("{tmp}/missing", "no such model folder"),
                                                ("{tmp}", "a folder without config.json")])
def test_a_bad_arch_folder_is_one_line(text: str, expected: str, tmp_path: Path, preds: Path, run_cli) -> None:
    from .helpers import DEV

    code, _, err = run_cli("predict", "--device", DEV, "--predictors", str(preds), "--seq", "16", "--batch", "1",
                           "--arch", text.format(tmp=tmp_path))
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, err
