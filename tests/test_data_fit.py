"""Own data read the way real files are written, and teachers checked against the task they are used for: the GLUE
TSVs as own files, a stray quote that never merges rows, a backbone's head of another class count, the class names
hub teachers give, the text columns a teacher's metrics.json records (and --force). The one-line refusals are rows of
tests/bad_input_data.py."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from kdnas_bench.distill.data import TASKS, Task, load_split
from kdnas_bench.distill.taskfiles import own_task
from kdnas_bench.distill.teacher import (
    TeacherError,
    check_label_names,
    check_teacher_before_work,
    check_text_columns,
    load_teacher,
)

from .helpers import GLUE, save_tiny


# -- files as real tools write them ----------------------------------------------------------------------
def test_the_glue_mrpc_and_stsb_tsvs_load_as_own_files() -> None:
    mrpc = own_task(train_file=str(GLUE / "MRPC" / "train.tsv"), validation_file=str(GLUE / "MRPC" / "dev.tsv"),
                    text_columns=("#1 String", "#2 String"), label_column="Quality")
    train = load_split(mrpc, "train")
    assert len(train) == 3668 and len(load_split(mrpc, "dev")) == 408 and mrpc.labels == ("0", "1")
    assert any(text.startswith('"') for text in train.texts[0])  # the field that used to break the reader
    stsb = own_task(train_file=str(GLUE / "STS-B" / "train.tsv"), validation_file=str(GLUE / "STS-B" / "dev.tsv"),
                    label_column="score")
    assert stsb.is_regression and stsb.text_fields == ("sentence1", "sentence2")
    assert len(load_split(stsb, "train")) == 5749 and len(load_split(stsb, "dev")) == 1500


def test_a_stray_quote_in_a_tsv_keeps_every_row(tmp_path: Path) -> None:
    stray = ' with a "stray quote'
    rows = [f"sentence {i}{stray if i == 7 else ''}\t{i % 2}" for i in range(200)]
    (tmp_path / "t.tsv").write_text("text\tlabel\n" + "\n".join(rows) + "\n")
    task = own_task(train_file=str(tmp_path / "t.tsv"), validation_file=str(tmp_path / "t.tsv"))
    train = load_split(task, "train")
    assert len(train) == 200 and train.texts[0][7] == 'sentence 7 with a "stray quote' and train.texts[0][8] == "sentence 8"


def test_a_tsv_written_by_pandas_reads_back_its_texts(tmp_path: Path) -> None:
    import pandas as pd

    texts = ['he said "hi" twice', '"quoted" at the start', "plain", 'a 5" screen', "o'clock"]
    pd.DataFrame({"text": texts, "label": [0, 1, 0, 1, 0]}).to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    assert '"he said ""hi"" twice"' in (tmp_path / "t.tsv").read_text()  # pandas quotes a cell holding a quote
    train = load_split(own_task(train_file=str(tmp_path / "t.tsv"), validation_file=str(tmp_path / "t.tsv")), "train")
    assert train.texts[0] == tuple(texts)


def test_a_csv_keeps_quoted_commas_and_doubled_quotes(tmp_path: Path) -> None:
    lines = ["review,label", '"good, really",1', '"a ""quoted"" word",0', 'a 5" screen,1', "plain,0"]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    train = load_split(own_task(train_file=str(tmp_path / "t.csv"), validation_file=str(tmp_path / "t.csv")), "train")
    assert train.texts[0] == ("good, really", 'a "quoted" word', 'a 5" screen', "plain")


# -- a backbone of another class count: a fresh head ------------------------------------------------------
def test_a_backbone_with_another_head_size_gets_a_fresh_head(tiny_teacher: Path) -> None:
    backbone = load_teacher(tiny_teacher, num_labels=3)
    assert backbone.num_labels == 3 and backbone.model.classifier.weight.shape[0] == 3
    with pytest.raises(TeacherError, match="has 2 output label"):  # a teacher keeps its head: the task must fit it
        load_teacher(tiny_teacher, task=own_task_of_classes(tiny_teacher.parent / "three", 3))


def test_teacher_finetune_of_a_two_class_backbone_on_three_classes(tiny_teacher: Path, tmp_path: Path, run_cli) -> None:
    task = own_task_of_classes(tmp_path / "data", 3)
    code, out, err = run_cli("teacher", "finetune", "--backbone", str(tiny_teacher), "--train-file", str(task.train_file),
                             "--validation-file", str(task.validation_file), "--epochs", "0.5", "--out",
                             str(tmp_path / "teacher"), "--json")
    assert code == 0, err
    config = json.loads((tmp_path / "teacher" / "config.json").read_text())
    assert config["id2label"] == {"0": "c0", "1": "c1", "2": "c2"} and "accuracy" in json.loads(out)["metrics"]
    assert load_teacher(tmp_path / "teacher", task=task).num_labels == 3


def own_task_of_classes(folder: Path, classes: int) -> Task:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"text {i},c{i % classes}" for i in range(4 * classes)]
    (folder / "d.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    return own_task(train_file=str(folder / "d.csv"), validation_file=str(folder / "d.csv"))


# -- class names ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("task", "names"), [
    ("sst2", ["0", "1"]), ("sst2", ["LABEL_0", "LABEL_1"]), ("sst2", ["NEGATIVE", "POSITIVE"]),
    ("mrpc", ["not_equivalent", "equivalent"]), ("mnli-m", ["ENTAILMENT", "NEUTRAL", "CONTRADICTION"]),
    ("rte", ["entailment", "not_entailment"]), ("stsb", ["score"]),
])
def test_glue_teachers_named_as_the_hub_names_them_fit(task: str, names: list[str]) -> None:
    check_label_names(names, TASKS[task], "t")


@pytest.mark.parametrize(("task", "names"), [
    ("sst2", ["no", "yes"]), ("sst2", ["POSITIVE", "NEGATIVE"]), ("mnli-m", ["contradiction", "neutral", "entailment"]),
    ("rte", ["0", "1"]),
])
def test_glue_teachers_of_other_classes_or_order_are_refused(task: str, names: list[str]) -> None:
    with pytest.raises(TeacherError, match=f"but task {task} has 0="):
        check_label_names(names, TASKS[task], "t")


# -- text columns: recorded by teacher finetune, compared before any work ---------------------------------------
def _pairs(folder: Path, columns: tuple[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"claim {i},{'same' if i % 2 else 'other'} {i},{'yes' if i % 2 else 'no'}" for i in range(12)]
    (folder / "pairs.csv").write_text(",".join((*columns, "label")) + "\n" + "\n".join(rows) + "\n")
    return folder / "pairs.csv"


def _teacher_for(folder: Path, task: Task) -> Path:
    save_tiny(folder, len(task.labels))
    doc = json.loads((folder / "config.json").read_text())
    doc.update(id2label={str(i): n for i, n in enumerate(task.labels)}, label2id={n: i for i, n in enumerate(task.labels)})
    (folder / "config.json").write_text(json.dumps(doc))
    (folder / "metrics.json").write_text(json.dumps({"task": task.name, "data": task.spec()}))  # as finetune writes it
    return folder


def test_recorded_text_columns_are_compared(tmp_path: Path) -> None:
    data = _pairs(tmp_path / "data", ("first", "second"))
    trained = own_task(train_file=str(data), validation_file=str(data), text_columns=("first", "second"))
    teacher = _teacher_for(tmp_path / "teacher", trained)
    check_text_columns(teacher, trained, "t")  # the same columns: fine
    swapped = own_task(train_file=str(data), validation_file=str(data), text_columns=("second", "first"))
    with pytest.raises(TeacherError, match=r"the same columns swapped\. Pass --text-columns first,second, or --force"):
        check_teacher_before_work(str(teacher), swapped)
    check_teacher_before_work(str(teacher), swapped, force=True)
    with pytest.raises(TeacherError, match="predicts the labels 0=no, 1=yes, but task sst2 has 0=0, 1=1"):
        check_teacher_before_work(str(teacher), "sst2")  # the label map first, then the columns (1 text, not 2)
    with pytest.raises(TeacherError, match=r"pairs of texts \(first, second\).*; task sst2 has one text \(sentence\)"):
        check_text_columns(teacher, TASKS["sst2"], "t")
    (teacher / "metrics.json").unlink()  # a checkpoint without a record (a hub download): nothing to compare
    check_text_columns(teacher, swapped, "t")


def test_distill_force_uses_a_teacher_of_swapped_columns(tmp_path: Path, run_cli) -> None:
    data = _pairs(tmp_path / "data", ("first", "second"))
    trained = own_task(train_file=str(data), validation_file=str(data), text_columns=("first", "second"))
    teacher = _teacher_for(tmp_path / "teacher", trained)
    argv = ["distill", "--teacher", str(teacher), "--train-file", str(data), "--validation-file", str(data),
            "--text-columns", "second,first", "--arch", "1,64,2,128", "--epochs", "0.5", "--init", "random", "--json"]
    code, _, err = run_cli(*argv)
    assert code == 2 and "the same columns swapped" in err
    code, out, err = run_cli(*argv, "--force")
    assert code == 0, err
    assert json.loads(out)["metrics"]


def test_a_config_namespace_is_enough_for_the_label_check() -> None:
    from kdnas_bench.distill.teacher import check_fits_task

    check_fits_task(SimpleNamespace(num_labels=2, id2label={0: "negative", 1: "positive"}), TASKS["sst2"], "t")
    with pytest.raises(TeacherError, match="has 3 output label"):
        check_fits_task(SimpleNamespace(num_labels=3, id2label={}), TASKS["sst2"], "t")
