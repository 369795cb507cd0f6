"""Make a task "of your own" from GLUE SST-2: CSV files with other column names and text labels, as a practitioner's
export of labelled reviews would look (id, review, sentiment = negative/positive). The worked example of
docs/howto/own-task.md starts from these files.

Run:  python benchmarks/data/make_own_task.py --glue ../shared/data/glue --out runs/own-task/data
      (writes reviews-train.csv, 67,349 rows, and reviews-validation.csv, 872 rows; --train-rows N keeps N)
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pandas as pd

LABELS = {0: "negative", 1: "positive"}


def convert(tsv: Path, out: Path, rows: int | None) -> int:
    df = pd.read_csv(tsv, sep="\t", quoting=csv.QUOTE_NONE, dtype={"sentence": str, "label": int})
    if rows is not None:
        df = df.head(rows)
    own = pd.DataFrame({"id": [f"r{i:06d}" for i in range(len(df))], "review": df["sentence"],
                        "sentiment": df["label"].map(LABELS)})
    out.parent.mkdir(parents=True, exist_ok=True)
    own.to_csv(out, index=False)
    return len(own)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--glue", default="../shared/data/glue", help="GLUE folder holding SST-2/train.tsv and dev.tsv")
    ap.add_argument("--out", default="runs/own-task/data")
    ap.add_argument("--train-rows", type=int, help="keep the first N training rows (default: all)")
    args = ap.parse_args()
    out = Path(args.out)
    n_train = convert(Path(args.glue) / "SST-2" / "train.tsv", out / "reviews-train.csv", args.train_rows)
    n_dev = convert(Path(args.glue) / "SST-2" / "dev.tsv", out / "reviews-validation.csv", None)
    print(f"{out / 'reviews-train.csv'}: {n_train} rows; {out / 'reviews-validation.csv'}: {n_dev} rows "
          "(columns id, review, sentiment; labels negative/positive)")


if __name__ == "__main__":
    main()
