"""Bad-input cases: tasks of one's own (--train-file/--validation-file, --dataset, --text-columns, --label-column,
--metric) through every verb that takes a task. Every case fails before any work, in one line."""

from __future__ import annotations

from .bad_input_support import DISTILL, SEARCH, Case, Setup, both, drop, opt, write

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
    Case("own-missing-label-value", FINETUNE_OWN, "train.csv row 13: no label in column 'sentiment'",
         csv("own/train.csv", _rows("12,a film,"))),
    Case("own-json-missing-text", opt(FINETUNE_OWN, "--train-file", "{ws}/own/train.jsonl"),
         "train.jsonl row 2: no text in column 'review'",
         write("own/train.jsonl", b'{"review": "a film", "sentiment": "positive"}\n{"sentiment": "negative"}\n')),
    # labels
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
    Case("own-csv-unbalanced-quote", FINETUNE_OWN, "train.csv: not valid CSV",
         write("own/train.csv", b'id,review,sentiment\n1,"a film,positive\n2,b,negative\n')),
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
