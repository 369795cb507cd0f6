"""``table``: precomputed accuracies, so strategies can be compared cheaply and fairly (``--table``)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import KdnasError
from ...space import ARCH_DIMS, Arch, SearchSpace
from ..domain import SearchError
from ..request import SearchRequest
from ..result import Evaluation
from .base import Evaluator, EvaluatorContext


@dataclass(frozen=True)
class TableOptions:
    """``table``'s one option: the file of precomputed accuracies."""

    path: str


class TableEvaluator(Evaluator):
    """Reads precomputed accuracies (Parquet, CSV or JSON with columns layers, hidden, heads, ffn,
    metric[, metric_name, seconds]); its rows are the search's candidates."""

    name = "table"
    distils = False
    inputs = "table"
    Options = TableOptions

    def __init__(self, path: str | Path) -> None:
        self.source = str(path)  # as given: run.json records it
        self.path = Path(path)
        if not self.path.is_file():
            raise SearchError(f"table not found: {self.path}")
        import pandas as pd  # noqa: PLC0415  lazy: pandas

        try:
            if self.path.suffix == ".parquet":
                df = pd.read_parquet(self.path)
            elif self.path.suffix == ".csv":
                df = pd.read_csv(self.path)
            else:
                doc = json.loads(self.path.read_text(encoding="utf-8"))
                df = pd.DataFrame(doc["rows"] if isinstance(doc, dict) else doc)
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise SearchError(f"cannot read table {self.path}: {exc}") from None
        missing = [c for c in (*ARCH_DIMS, "metric") if c not in df.columns]
        if missing:
            raise SearchError(f"table {self.path} lacks columns {', '.join(missing)}")
        self.metric_name = str(df["metric_name"].iloc[0]) if "metric_name" in df.columns and len(df) else "metric"
        self._rows = {}
        for i, r in enumerate(df.to_dict("records")):
            try:
                dims = [r[d] for d in ARCH_DIMS]
                if not all(isinstance(v, int | float) and not isinstance(v, bool) and float(v).is_integer()
                           for v in dims):
                    raise ValueError(f"layers, hidden, heads, ffn must be integers, got {dims}")
                metric = r["metric"]
                if isinstance(metric, bool) or not isinstance(metric, int | float) or not math.isfinite(metric):
                    raise ValueError(f"metric must be a finite number, got {metric!r}")
                self._rows[Arch(*(int(v) for v in dims))] = r
            except (ValueError, KdnasError) as exc:
                raise SearchError(f"table {self.path} row {i + 1}: {exc}") from None
        if not self._rows:
            raise SearchError(f"table {self.path} has no rows")

    @classmethod
    def check(cls, req: SearchRequest) -> None:
        if not req.table:
            raise SearchError("--evaluator table needs --table (a file of precomputed accuracies)")

    @classmethod
    def takes_over(cls, req: SearchRequest) -> bool:
        return bool(req.table)

    @classmethod
    def options_from_fields(cls, req: SearchRequest) -> TableOptions:
        return TableOptions(str(req.table))

    @classmethod
    def from_request(cls, req: SearchRequest, ctx: EvaluatorContext) -> TableEvaluator:
        return cls(cls.options_of(req).path)

    def candidates(self, space: SearchSpace) -> list[Arch]:
        return self.archs()

    def space_label(self, space: SearchSpace) -> str:
        return self.source

    def archs(self) -> list[Arch]:
        return sorted(self._rows)

    def evaluate(self, arch: Arch) -> Evaluation:
        row = self._rows.get(arch)
        if row is None:
            raise SearchError(f"arch {arch} is not in table {self.path}")
        return Evaluation(float(row["metric"]), self.metric_name, {self.metric_name: float(row["metric"])},
                          float(row.get("seconds", 0.0) or 0.0))

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name, "path": str(self.path), "rows": len(self._rows)}

    @classmethod
    def explain(cls, entry: dict[str, Any]) -> str:
        return f"Scores: read from the table {entry.get('path')} ({entry.get('rows')} rows), no training."

    @classmethod
    def score_label(cls, metric_name: str) -> str:
        return f"{metric_name} (from a table)"
