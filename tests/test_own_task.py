"""Tasks of one's own: CSV / TSV / JSON Lines / Parquet files with renamed columns and text labels through teacher
finetune -> search -> final (the label map saved with every model), a regression file, integer labels, a
``datasets`` name, and a resumed run that refuses changed data. The bad files are in tests/bad_input_data.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kdnas_bench.distill.data import DataError, get_task, load_split
from kdnas_bench.distill.taskfiles import own_task

from .helpers import DEV, TINY_SPACE, save_tiny

FORMATS = {"csv": ".csv", "tsv": ".tsv", "jsonl": ".jsonl", "parquet": ".parquet"}


def _reviews(glue: Path, split: str, n: int) -> pd.DataFrame:
    """SST-2 rows as a review file: columns renamed (review, sentiment), labels as text, an id column."""
    df = pd.read_csv(glue / "SST-2" / f"{split}.tsv", sep="\t", quoting=3).head(n)
    return pd.DataFrame({"id": range(len(df)), "review": df["sentence"],
                         "sentiment": df["label"].map({0: "negative", 1: "positive"})})


def _write(df: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    elif path.suffix == ".tsv":
        df.to_csv(path, sep="\t", index=False)
    elif path.suffix == ".jsonl":
        df.to_json(path, orient="records", lines=True)
    else:
        df.to_parquet(path)
    return path


def _files(glue: Path, folder: Path, fmt: str, n_train: int = 80, n_dev: int = 40) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return (_write(_reviews(glue, "train", n_train), folder / f"reviews{FORMATS[fmt]}"),
            _write(_reviews(glue, "dev", n_dev), folder / f"reviews-dev{FORMATS[fmt]}"))


def _own(train: Path, dev: Path) -> list[str]:
    return ["--train-file", str(train), "--validation-file", str(dev), "--text-columns", "review",
            "--label-column", "sentiment"]


# -- reading ---------------------------------------------------------------------------------------------
def test_every_format_reads_the_same_task(tiny_glue: Path, tmp_path: Path) -> None:
    tasks = {fmt: own_task(train_file=str(t), validation_file=str(d), text_columns=("review",), label_column="sentiment")
             for fmt in FORMATS for t, d in [_files(tiny_glue, tmp_path / fmt, fmt)]}
    ref = tasks["csv"]
    assert ref.name == "reviews" and ref.labels == ("negative", "positive") and ref.label_type == "str"
    assert ref.metrics == ("accuracy", "f1", "matthews") and not ref.is_regression and ref.num_labels == 2
    gold = pd.read_csv(tiny_glue / "SST-2" / "dev.tsv", sep="\t", quoting=3).head(40)["label"].to_numpy()
    for fmt, task in tasks.items():
        assert (task.labels, task.metrics, task.text_fields) == (ref.labels, ref.metrics, ref.text_fields), fmt
        for split in ("train", "dev"):
            ex, ref_ex = load_split(task, split), load_split(ref, split)
            assert ex.texts == ref_ex.texts and np.array_equal(ex.labels, ref_ex.labels), (fmt, split)
        assert np.array_equal(load_split(task, "dev").labels, gold)  # negative = 0, positive = 1, as in SST-2
    assert len({t.data_hash for t in tasks.values()}) == 4  # the hash is of the bytes, so each file kind differs
    assert get_task(ref.spec()) == ref  # the spec run folders record reads back to the same task


def test_integer_labels_metric_and_default_text_column(tmp_path: Path) -> None:
    rows = pd.DataFrame({"text": [f"ticket {i}" for i in range(12)], "label": [1, 5, 10] * 4})
    t = own_task(train_file=str(_write(rows, tmp_path / "t.csv")), validation_file=str(_write(rows, tmp_path / "d.csv")),
                 metric="matthews", name="tickets")
    assert t.name == "tickets" and t.labels == ("1", "5", "10") and t.label_type == "int"  # numeric order
    assert t.metrics == ("matthews", "accuracy") and t.text_fields == ("text",)  # three classes: no f1
    assert load_split(t, "dev").labels.tolist() == [0, 1, 2] * 4
    reg = own_task(train_file=str(tmp_path / "t.csv"), validation_file=str(tmp_path / "d.csv"), metric="spearman")
    assert reg.is_regression and reg.metrics == ("spearman", "pearson")  # a rating scale as a regression target
    assert load_split(reg, "train").labels.dtype == np.float32
    rows["label"] = rows["label"].astype(float)  # 1.0, 5.0, 10.0: still classes; a fraction makes a regression
    _write(rows, tmp_path / "t.jsonl")
    assert own_task(train_file=str(tmp_path / "t.jsonl"), validation_file=str(tmp_path / "d.csv")).labels == ("1", "5", "10")
    rows.loc[0, "label"] = 2.5
    _write(rows, tmp_path / "t.jsonl")
    assert own_task(train_file=str(tmp_path / "t.jsonl"), validation_file=str(tmp_path / "d.csv")).is_regression


def test_a_datasets_name_keeps_its_class_label_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    feats = datasets.Features({"sentence": datasets.Value("string"),
                               "label": datasets.ClassLabel(names=["positive", "negative"])})
    data = {"sentence": ["good", "bad", "fine", "awful"], "label": [0, 1, 0, 1]}
    dd = datasets.DatasetDict({s: datasets.Dataset.from_dict(data, features=feats) for s in ("train", "validation")})
    monkeypatch.setattr(datasets, "load_dataset", lambda name, config=None: dd)
    t = own_task(dataset="someone/reviews:plain")
    assert t.name == "someone-reviews-plain" and t.source == "dataset" and t.labels == ("positive", "negative")
    assert load_split(t, "dev").labels.tolist() == [0, 1, 0, 1]


# -- through the pipeline -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_own_file_through_teacher_search_and_final(fmt: str, tiny_glue: Path, tiny_teacher: Path, preds: Path,
                                                   tmp_path: Path, run_cli) -> None:
    train, dev = _files(tiny_glue, tmp_path / "data", fmt)
    own = _own(train, dev)
    code, out, err = run_cli("teacher", "finetune", "--backbone", str(tiny_teacher), *own, "--epochs", "1",
                             "--out", str(tmp_path / "teacher"), "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["task"] == "reviews" and res["primary_metric"] == "accuracy" and res["train_examples"] == 80
    assert res["data"]["labels"] == ["negative", "positive"] and res["data"]["data_hash"]
    cfg = json.loads((tmp_path / "teacher" / "config.json").read_text())
    assert cfg["id2label"] == {"0": "negative", "1": "positive"} and cfg["label2id"] == {"negative": 0, "positive": 1}
    supernet = fmt == "parquet"  # the one-shot evaluator (supernet + re-ranking) on one format, proxy on the others
    evaluator = (["--evaluator", "supernet", "--supernet-examples", "80", "--supernet-epochs", "1", "--rerank-top", "2",
                  "--rerank-examples", "40", "--rerank-epochs", "1"] if supernet else
                 ["--evaluator", "proxy", "--proxy-examples", "60", "--proxy-epochs", "1"])
    search = ["search", "--device", DEV, "--backend", "torch", "--budget-ms", "50", *own, "--teacher",
              str(tmp_path / "teacher"), "--space", str(TINY_SPACE), "--predictors", str(preds),
              "--episodes", "1", "--candidates", "2", *evaluator, "--final", "--final-examples", "60", "--final-epochs",
              "1", "--out", str(tmp_path / "run"), "--allow-weak-teacher", "--json"]  # a tiny teacher learns little
    code, out, err = run_cli(*search)
    assert code == 0, err
    winner = json.loads(out)["winners"][0]
    assert set(winner["final_metrics"]) == {"accuracy", "f1", "matthews"} and 0 <= winner["final_metric"] <= 1
    student = Path(winner["student_dir"])
    assert json.loads((student / "config.json").read_text())["id2label"] == {"0": "negative", "1": "positive"}
    saved = json.loads((student / "metrics.json").read_text())
    assert saved["task"] == "reviews" and saved["data"]["data_hash"] == res["data"]["data_hash"]
    ev = json.loads((tmp_path / "run" / "run.json").read_text())["config"]["evaluator"]
    assert ev["task"] == "reviews" and ev["data"]["train_file"] == str(train.resolve())
    if supernet:
        recipe = json.loads((tmp_path / "run" / "supernet" / "supernet.json").read_text())["recipe"]
        assert recipe["data"]["data_hash"] == res["data"]["data_hash"]
        code, out, err = run_cli("supernet", "evaluate", "--supernet", str(tmp_path / "run" / "supernet"), "--arch",
                                 "1,32,2,64", "--json")  # the task comes back from the supernet's recipe
        assert code == 0 and set(json.loads(out)[0]["metrics"]) == {"accuracy", "f1", "matthews"}, err
    code, out, err = run_cli(*search)  # resumed with the same data: nothing to redo
    assert code == 0 and json.loads(out)["evaluated_now"] == 0, err
    if fmt == "csv":  # the data changed under the run: refused in one line, before any work
        dev.write_text(dev.read_text() + "999,one more review,positive\n")
        code, _, err = run_cli(*search)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "was made with other data" in err, err
        code, out, err = run_cli("report", str(tmp_path / "run"), "--json")
        assert code == 0, err


def test_regression_file_through_teacher_and_distill(tiny_glue: Path, tmp_path: Path, run_cli) -> None:
    """A JSON Lines file of float scores (STS-B, columns renamed): a regression task scored by Pearson."""
    folder = tmp_path / "data"
    folder.mkdir()
    paths = []
    for split, n in (("train", 80), ("dev", 40)):
        df = pd.read_csv(tiny_glue / "STS-B" / f"{split}.tsv", sep="\t", quoting=3).head(n)
        rows = pd.DataFrame({"first": df["sentence1"], "second": df["sentence2"], "similarity": df["score"]})
        paths.append(_write(rows, folder / f"pairs-{split}.jsonl"))
    own = ["--train-file", str(paths[0]), "--validation-file", str(paths[1]), "--text-columns", "first,second",
           "--label-column", "similarity"]
    backbone = save_tiny(tmp_path / "backbone", 1)
    code, out, err = run_cli("teacher", "finetune", "--backbone", str(backbone), *own, "--task", "pairs", "--epochs", "1",
                             "--out", str(tmp_path / "teacher"), "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["task"] == "pairs" and res["primary_metric"] == "pearson" and set(res["metrics"]) == {"pearson", "spearman"}
    assert res["data"]["labels"] == [] and res["data"]["label_type"] == "float"
    assert json.loads((tmp_path / "teacher" / "config.json").read_text())["problem_type"] == "regression"
    code, out, err = run_cli("distill", "--teacher", str(tmp_path / "teacher"), *own, "--task", "pairs", "--arch",
                             "1,32,2,64", "--epochs", "1", "--allow-weak-teacher", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["primary_metric"] == "pearson" and -1 <= d["primary"] <= 1 and d["mode"] == "full"


def test_a_teacher_of_other_labels_is_refused(tiny_glue: Path, tiny_teacher: Path, tmp_path: Path, run_cli) -> None:
    train, dev = _files(tiny_glue, tmp_path / "data", "csv", 30, 20)
    code, _, err = run_cli("teacher", "finetune", "--backbone", str(tiny_teacher), *_own(train, dev), "--epochs", "0.1",
                           "--out", str(tmp_path / "teacher"), "--json")
    assert code == 0, err
    for path in (train, dev):
        path.write_text(path.read_text().replace("negative", "bad").replace("positive", "good"))
    code, _, err = run_cli("distill", "--teacher", str(tmp_path / "teacher"), *_own(train, dev), "--arch", "1,32,2,64",
                           "--epochs", "0.1")
    assert code == 2 and "predicts the labels 0=negative, 1=positive, but task reviews has 0=bad, 1=good" in err, err


def test_changed_data_under_a_task_is_refused_when_read(tiny_glue: Path, tmp_path: Path) -> None:
    train, dev = _files(tiny_glue, tmp_path, "csv", 20, 10)
    task = own_task(train_file=str(train), validation_file=str(dev), text_columns=("review",), label_column="sentiment")
    train.write_text(train.read_text().replace("negative", "positive", 1))
    with pytest.raises(DataError, match="its data changed since the task was set up"):
        load_split(task, "train")


def test_task_args_name_the_same_task_again(tiny_glue: Path, tmp_path: Path) -> None:
    """The quickstart prints each step as a command: the task options it prints resolve to the same task."""
    from kdnas_bench.cli.task_options import resolve_task, task_args

    train, dev = _files(tiny_glue, tmp_path, "tsv", 20, 10)
    task = own_task(train_file=str(train), validation_file=str(dev), text_columns=("review",), label_column="sentiment",
                    metric="matthews")
    args = task_args(task, None)
    opts = {args[i].lstrip("-").replace("-", "_"): args[i + 1] for i in range(0, len(args), 2)}
    assert resolve_task(opts.pop("task"), None, **opts) == task
    assert task_args("sst2", "glue") == ["--task", "sst2", "--data-dir", "glue"]
