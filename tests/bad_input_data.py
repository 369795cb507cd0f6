"""Bad-input cases: tasks of one's own (--train-file/--validation-file, --dataset, --text-columns, --label-column,
--metric) through every verb that takes a task. Every case fails before any work, in one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .bad_input_support import DISTILL, FINETUNE, SEARCH, Case, Setup, both, drop, opt, write

GOOD_OWN = ["id,review,sentiment", *[f"{i},a {'fine' if i % 2 else 'dull'} film number {i},"
                                      f"{'positive' if i % 2 else 'negative'}" for i in range(12)]]
OWN = ("--train-file", "{ws}/own/train.csv", "--validation-file", "{ws}/own/dev.csv", "--text-columns", "review",
       "--label-column", "sentiment")
FINETUNE_OWN = ("teacher", "finetune", *OWN, "--max-examples", "20", "--epochs", "0.01", "--out", "{ws}/newteacher")
DISTILL_OWN = (*drop(drop(DISTILL, "--task"), "--data-dir"), *OWN)
SEARCH_OWN = (*drop(SEARCH, "--task"), "--budget-ms", "10", *OWN)
SUPERNET_OWN = ("supernet", "train", "--teacher", "{ws}/noteacher", *OWN, "--space", "{ws}/tiny.toml", "--out", "{ws}/sn")
QUICKSTART_OWN = ("quickstart", "--out", "{ws}/qs", *OWN)


def csv(rel: str, lines: list[str]) -> Setup:
    return write(rel, ("\n".join(lines) + "\n").encode())


def _rows(*extra: str) -> list[str]:
    return [*GOOD_OWN, *extra]


PAIRS = ["first,second,label", *[f"a claim {i},{'the same' if i % 2 else 'another'} claim {i},{'yes' if i % 2 else 'no'}"
                                 for i in range(12)]]
PAIR_OWN = ("--train-file", "{ws}/own/pairs.csv", "--validation-file", "{ws}/own/pairs.csv")


def _parquet_list_labels(ws: Path) -> None:
    import pandas as pd

    pd.DataFrame({"review": [f"a film {i}" for i in range(6)], "sentiment": [[i % 2] for i in range(6)]}).to_parquet(
        ws / "own" / "train.parquet")


def _fifo(ws: Path) -> None:
    os.mkfifo(ws / "own" / "pipe.csv")


def teacher(rel: str, labels: tuple[str, ...], columns: tuple[str, ...] | None = None, *, tokenizer: bool = True,
            config: dict[str, object] | None = None) -> Setup:
    """A tiny teacher folder: class names ``labels``, a metrics.json recording its text ``columns`` (a task of one's
    own), without tokenizer files, or with ``config`` fields changed after saving."""

    def _do(ws: Path) -> None:
        from .helpers import TOKENIZER_FILES, save_tiny

        folder = save_tiny(ws / rel, len(labels))
        doc = json.loads((folder / "config.json").read_text())
        doc.update(id2label={str(i): n for i, n in enumerate(labels)}, label2id={n: i for i, n in enumerate(labels)},
                   **(config or {}))
        (folder / "config.json").write_text(json.dumps(doc))
        if columns is not None:
            data = {"name": "own", "text_columns": list(columns), "labels": list(labels)}
            (folder / "metrics.json").write_text(json.dumps({"task": "own", "data": data}))
        for name in () if tokenizer else TOKENIZER_FILES:
            (folder / name).unlink()

    return _do


def _small_vocab_teacher(ws: Path) -> None:
    """A checkpoint really built with 1,000 token ids, beside a tokenizer of 30,522."""
    from transformers import BertConfig, BertForSequenceClassification

    from .helpers import TOKENIZER_FILES, minilm_path

    cfg = BertConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=1, num_attention_heads=2, intermediate_size=128)
    folder = ws / "smallvocab"
    BertForSequenceClassification(cfg).save_pretrained(folder)
    for name in TOKENIZER_FILES:
        (folder / name).write_bytes((minilm_path() / name).read_bytes())


DATA_CASES: list[Case] = [
    # columns
    Case("own-missing-label-column", opt(FINETUNE_OWN, "--label-column", "stars"), "missing column(s) stars"),
    Case("own-missing-text-column", opt(DISTILL_OWN, "--text-columns", "body"), "missing column(s) body"),
    Case("own-missing-column-in-validation", SEARCH_OWN, "dev.csv: missing column(s) review",
         csv("own/dev.csv", ["id,text,sentiment", "1,a film,positive"])),
    Case("own-which-text-column", drop(FINETUNE_OWN, "--text-columns"), "which column holds the text? pass --text-columns"),
    Case("own-label-is-text-column", opt(FINETUNE_OWN, "--text-columns", "sentiment"),
         "column 'sentiment' cannot be both the label and a text column"),
    Case("own-three-text-columns", opt(FINETUNE_OWN, "--text-columns", "id,review,sentiment"),
         "--text-columns takes one or two columns"),
    # rows and splits
    Case("own-empty-validation-split", SUPERNET_OWN, "dev.csv: no data rows", csv("own/dev.csv", ["id,review,sentiment"])),
    Case("own-zero-byte-train", FINETUNE_OWN, "train.csv: empty file", write("own/train.csv", b"")),
    Case("own-missing-label-value", FINETUNE_OWN, "train.csv row 13 (line 14): no label in column 'sentiment'",
         csv("own/train.csv", _rows("12,a film,"))),
    Case("own-json-missing-text", opt(FINETUNE_OWN, "--train-file", "{ws}/own/train.jsonl"),
         "train.jsonl row 2 (line 2): no text in column 'review'",
         write("own/train.jsonl", b'{"review": "a film", "sentiment": "positive"}\n{"sentiment": "negative"}\n')),
    Case("own-empty-text-cell", FINETUNE_OWN, "train.csv row 13 (line 14): an empty text in column 'review'",
         csv("own/train.csv", _rows("12,,positive"))),
    Case("own-whitespace-text-cell", DISTILL_OWN, "dev.csv row 3 (line 5): only whitespace in column 'review'",
         csv("own/dev.csv", [*GOOD_OWN[:3], "", "3,  ,negative", *GOOD_OWN[4:]])),
    Case("own-json-empty-text", opt(FINETUNE_OWN, "--train-file", "{ws}/own/train.jsonl"),
         "train.jsonl row 2 (line 3): an empty text in column 'review'",
         write("own/train.jsonl", b'{"review": "a", "sentiment": "positive"}\n\n{"review": "", "sentiment": "negative"}\n')),
    # rows that do not parse: refused with their line, never merged
    Case("own-csv-stray-quote-merges-rows", FINETUNE_OWN, "train.csv:4: a quoted cell runs on to line 7 (a stray '\"'?)",
         csv("own/train.csv", [*GOOD_OWN[:3], '2,"a film, with a stray quote,positive', *GOOD_OWN[4:6], '5,the end",negative',
                               *GOOD_OWN[7:]])),
    Case("own-tsv-tab-in-text", opt(FINETUNE_OWN, "--train-file", "{ws}/own/train.tsv"),
         "train.tsv:4: 4 fields, the header has 3 (a tab inside a text?)",
         write("own/train.tsv", "".join(line.replace(",", "\t") + "\n" for line in _rows())
               .replace("a dull film number 2", "a dull\tfilm number 2"))),
    Case("own-duplicate-column", FINETUNE_OWN, "train.csv: two columns are named 'review' (columns 2 and 3): rename one",
         csv("own/train.csv", [line + ",x" if i else "id,review,review,sentiment" for i, line in enumerate(GOOD_OWN)])),
    Case("own-json-duplicate-key", opt(FINETUNE_OWN, "--train-file", "{ws}/own/train.jsonl"),
         "train.jsonl:1: the key 'review' appears twice in one object: rename one",
         write("own/train.jsonl", b'{"review": "a", "review": "b", "sentiment": "positive"}\n')),
    Case("own-fifo-train-file", opt(FINETUNE_OWN, "--train-file", "{ws}/own/pipe.csv"),
         "pipe.csv is a named pipe (FIFO), not a regular file", _fifo),
    # labels
    Case("own-parquet-list-labels", opt(FINETUNE_OWN, "--train-file", "{ws}/own/train.parquet"),
         "train.parquet row 1: the label in column 'sentiment' is a list ([0]); a label must be a single value",
         _parquet_list_labels),
    Case("own-unseen-validation-label", QUICKSTART_OWN, "label 'neutral' is never seen in training",
         csv("own/dev.csv", _rows("12,a film,neutral"))),
    Case("own-mixed-label-types", FINETUNE_OWN, "mixed label types in column 'sentiment'",
         csv("own/train.csv", _rows("12,a film,1"))),
    Case("own-json-mixed-label-types", opt(FINETUNE_OWN, "--train-file", "{ws}/own/train.jsonl"), "mixed label types",
         write("own/train.jsonl", b'{"review": "a", "sentiment": "positive"}\n{"review": "b", "sentiment": 0}\n')),
    Case("own-single-class", FINETUNE_OWN, "has a single label 'positive'",
         csv("own/train.csv", ["id,review,sentiment", "1,a,positive", "2,b,positive"])),
    Case("own-metric-pearson-on-text-labels", (*FINETUNE_OWN, "--metric", "pearson"), "--metric pearson needs numeric labels"),
    Case("own-metric-f1-three-classes", (*FINETUNE_OWN, "--metric", "f1"), "--metric f1 is for two classes",
         both(csv("own/train.csv", _rows("12,a film,neutral")), csv("own/dev.csv", _rows("12,a film,neutral")))),
    Case("own-fractional-class-labels", (*FINETUNE_OWN, "--metric", "accuracy"), "needs class labels",
         csv("own/train.csv", ["id,review,sentiment", "1,a,0.5", "2,b,1"])),
    # file kinds and encodings
    Case("own-not-utf8", FINETUNE_OWN, "train.csv:3: not UTF-8 text",
         write("own/train.csv", ("\n".join(GOOD_OWN) + "\n").encode().replace(b"film number 1,", b"f\xe9lm number 1,"))),
    Case("own-unknown-extension", opt(FINETUNE_OWN, "--train-file", "{ws}/own/train.xlsx"),
         "unknown data file type '.xlsx'", write("own/train.xlsx", b"PK\x03\x04")),
    Case("own-train-file-missing", opt(FINETUNE_OWN, "--train-file", "{ws}/own/nothere.csv"), "data file not found"),
    Case("own-bad-json-line", opt(FINETUNE_OWN, "--train-file", "{ws}/own/train.jsonl"), "train.jsonl:2: not a JSON line",
         write("own/train.jsonl", b'{"review": "a", "sentiment": "positive"}\n{"review": \n')),
    Case("own-json-not-object", opt(FINETUNE_OWN, "--train-file", "{ws}/own/train.jsonl"), "must be a JSON object",
         write("own/train.jsonl", b'["a film", "positive"]\n')),
    Case("own-bad-parquet", opt(FINETUNE_OWN, "--train-file", "{ws}/own/train.parquet"), "not a readable Parquet file",
         write("own/train.parquet", b"PAR1 but not really")),
    Case("own-csv-unbalanced-quote", FINETUNE_OWN,
         "train.csv:2: not valid CSV: a quoted cell opened on this line is never closed",
         write("own/train.csv", b'id,review,sentiment\n1,"a film,positive\n2,b,negative\n')),
    # teachers against the task: their recorded text columns, their label map, their tokenizer and vocabulary
    Case("own-teacher-text-columns-swapped", (*opt(drop(DISTILL_OWN, "--label-column"), "--teacher", "{ws}/pairteacher"),
                                              *PAIR_OWN, "--text-columns", "second,first"),
         "teacher {ws}/pairteacher was trained on the text columns first, second (its metrics.json); this task reads "
         "second, first: the same columns swapped", both(csv("own/pairs.csv", PAIRS),
                                                        teacher("pairteacher", ("no", "yes"), ("first", "second")))),
    Case("own-teacher-text-columns-other", (*SEARCH_OWN, "--teacher", "{ws}/textteacher"),
         "this task reads review: other columns. Pass --text-columns text, or --force",
         teacher("textteacher", ("negative", "positive"), ("text",))),
    Case("glue-task-pair-teacher", ("supernet", "train", "--teacher", "{ws}/pairteacher", "--task", "sst2", "--data-dir",
                                    "{ws}/glue", "--space", "{ws}/tiny.toml", "--out", "{ws}/sn"),
         "was trained on pairs of texts (first, second) (its metrics.json); task sst2 has one text (sentence)",
         teacher("pairteacher", ("LABEL_0", "LABEL_1"), ("first", "second"))),
    Case("glue-task-yes-no-teacher", opt(DISTILL, "--teacher", "{ws}/yesno"),
         "teacher {ws}/yesno predicts the labels 0=no, 1=yes, but task sst2 has 0=0, 1=1",
         teacher("yesno", ("no", "yes"), ("sentence",))),
    Case("teacher-no-tokenizer", opt(DISTILL, "--teacher", "{ws}/notok"),
         "teacher folder {ws}/notok has no tokenizer files", teacher("notok", ("0", "1"), tokenizer=False)),
    Case("finetune-backbone-no-tokenizer", (*FINETUNE, "--backbone", "{ws}/notok"),
         "backbone folder {ws}/notok has no tokenizer files", teacher("notok", ("0", "1"), tokenizer=False)),
    Case("teacher-vocab-size-edited", opt(DISTILL, "--teacher", "{ws}/edited"),
         "its weights do not fit its config.json: bert.embeddings.word_embeddings.weight is 30522x64 in the weights "
         "but 1000x64 by config.json (its vocab_size?)", teacher("edited", ("0", "1"), config={"vocab_size": 1000})),
    Case("teacher-vocab-smaller-than-tokenizer", opt(DISTILL, "--teacher", "{ws}/smallvocab"),
         "its tokenizer has 30,522 tokens but the model's vocab_size is 1,000", _small_vocab_teacher),
    # how the options combine
    Case("own-train-without-validation", drop(FINETUNE_OWN, "--validation-file"),
         "needs --train-file and --validation-file"),
    Case("own-with-data-dir", (*FINETUNE_OWN, "--data-dir", "{ws}/glue"), "--data-dir is for GLUE tasks"),
    Case("own-task-named-like-glue", (*FINETUNE_OWN, "--task", "sst2"), "--task sst2 names a GLUE task"),
    Case("own-columns-with-glue-task", (*DISTILL, "--text-columns", "sentence"), "--text-columns: for a task of your own"),
    Case("own-no-task-at-all", ("teacher", "finetune", "--out", "{ws}/newteacher"), "give the task"),
    Case("own-dataset-and-files", (*FINETUNE_OWN, "--dataset", "imdb"), "two ways to give the data"),
    Case("own-dataset-not-cached", ("teacher", "finetune", "--dataset", "kdnas-no-such/dataset", "--out", "{ws}/t"),
         "is not in the local datasets cache and the hub is offline"),
]
