"""Redraw the deployment-matrix picture from the committed compare result, without timing anything:

    python benchmarks/draw_deployment_matrix.py

reads benchmarks/results/deployment_matrix.json (written by the `kdnas-bench compare ... --budget-ms 12 --measure
--json` of docs/results/deployment.md) and writes benchmarks/results/deployment-matrix.png (which
docs/assets/deployment-matrix.png links to). Students are labelled by their arch (L,H,A,FFN) and the teacher as "teacher"
(the largest compared model, or --teacher NAME)."""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import fields
from pathlib import Path

from kdnas_bench.report.deployment import MatrixCell, matrix_png
from kdnas_bench.space import Arch, Shape, arch_text

ROOT = Path(__file__).resolve().parents[1]


def load_cells(doc: dict, budget_ms: float) -> list[MatrixCell]:
    known = {f.name for f in fields(MatrixCell)}
    return [MatrixCell(**{**{k: v for k, v in c.items() if k in known}, "budget_ms": c.get("budget_ms", budget_ms)})
            for c in doc["matrix"]]


def labels_of(rows: list[dict], teacher: str | None) -> dict[str, str]:
    """Student name -> its arch as every table writes it; the teacher -> "teacher"."""
    archs = {r["student"]: Arch.from_dict(r["arch"]) for r in rows}
    params = {r["student"]: r.get("params") or 0 for r in rows}
    teacher = teacher or max(params, key=lambda s: params[s])
    return {name: "teacher" if name == teacher else arch_text(a) for name, a in archs.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/deployment_matrix.json"),
                    help="compare --json output with rows and matrix")
    ap.add_argument("--budget-ms", type=float, default=12.0, help="the budget the matrix was made with")
    ap.add_argument("--teacher", help="the student name that is the teacher (default: the largest model)")
    ap.add_argument("--out", nargs="+", default=[str(ROOT / "benchmarks/results"), str(ROOT / "docs/assets")],
                    help="folders to write deployment-matrix.png into (docs/assets/ holds a link to the first)")
    args = ap.parse_args()
    doc = json.loads(Path(args.json).read_text(encoding="utf-8"))
    first = doc["rows"][0]
    png = matrix_png(load_cells(doc, args.budget_ms), Path(args.out[0]), budget_ms=args.budget_ms, budget_mb=None,
                     shape=Shape(first["batch"], first["seq"]), labels=labels_of(doc["rows"], args.teacher))
    for folder in args.out[1:]:
        Path(folder).mkdir(parents=True, exist_ok=True)
        target = Path(folder) / png.name
        if not (target.exists() and target.samefile(png)):  # docs/assets/ links to benchmarks/results/
            shutil.copyfile(png, target)
    print("\n".join(str(Path(folder) / png.name) for folder in args.out))


if __name__ == "__main__":
    main()
