"""Students to compare: well-known named architectures, ``L,H,A,FFN`` specs, distilled student folders and
the winners (and teacher) of a search run.

    >>> resolve_students("bert-base,minilm-l6,tinybert-4l")
    >>> resolve_students("4,256,4,1024;2,128,2,512")
    >>> resolve_students("runs/my-search")        # its winners (final metrics when distilled) + its teacher
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import KdnasError, SpaceError
from ..search.runfolder import RUN_FILE, RunFolder
from ..space import Arch

# Encoder shapes as published (layers, hidden, heads, FFN). TinyBERT-6L has DistilBERT's shape; both are listed
# because users look for either name.
NAMED: dict[str, tuple[Arch, str]] = {
    "bert-base": (Arch(12, 768, 12, 3072), "BERT-base (Devlin et al., 2019)"),
    "bert-large": (Arch(24, 1024, 16, 4096), "BERT-large (Devlin et al., 2019)"),
    "distilbert": (Arch(6, 768, 12, 3072), "DistilBERT (Sanh et al., 2019)"),
    "minilm-l12": (Arch(12, 384, 12, 1536), "MiniLM-L12-H384 (Wang et al., 2020)"),
    "minilm-l6": (Arch(6, 384, 12, 1536), "MiniLM-L6-H384 / all-MiniLM-L6-v2"),
    "tinybert-6l": (Arch(6, 768, 12, 3072), "TinyBERT-6L (Jiao et al., 2020)"),
    "tinybert-4l": (Arch(4, 312, 12, 1200), "TinyBERT-4L (Jiao et al., 2020)"),
    "bert-medium": (Arch(8, 512, 8, 2048), "BERT-medium (Turc et al., 2019)"),
    "bert-small": (Arch(4, 512, 8, 2048), "BERT-small (Turc et al., 2019)"),
    "bert-mini": (Arch(4, 256, 4, 1024), "BERT-mini (Turc et al., 2019)"),
    "bert-tiny": (Arch(2, 128, 2, 512), "BERT-tiny (Turc et al., 2019)"),
}
_ARCH_RE = re.compile(r"^\s*\d+\s*,\s*\d+\s*,\s*\d+\s*,\s*\d+\s*$")


@dataclass(frozen=True)
class Student:
    """One student to compare. ``metric`` is a task metric from our own runs (None when not known)."""

    name: str
    arch: Arch
    source: str  # "named", "spec", "student-dir", "search-winner", "teacher"
    description: str = ""
    metric: float | None = None
    metric_name: str | None = None
    task: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def arch_name(arch: Arch) -> str:
    return f"{arch.layers}L-{arch.hidden}H-{arch.heads}A-{arch.ffn}F"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise KdnasError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise KdnasError(f"{path} does not hold a JSON object")
    return data


def arch_of_model_dir(folder: Path) -> Arch:
    """The encoder shape of a saved HF BERT-style model (its config.json)."""
    cfg = _read_json(folder / "config.json")
    try:
        return Arch(int(cfg["num_hidden_layers"]), int(cfg["hidden_size"]), int(cfg["num_attention_heads"]),
                    int(cfg["intermediate_size"]))
    except (KeyError, TypeError, ValueError, SpaceError) as exc:
        raise KdnasError(f"{folder / 'config.json'} is not a BERT-style encoder config ({exc})") from None


def student_from_dir(folder: Path, *, name: str | None = None, source: str = "student-dir") -> Student:
    """A distilled student or fine-tuned teacher folder (config.json, optional metrics.json)."""
    arch = arch_of_model_dir(folder)
    metric = metric_name = task = None
    extra: dict[str, Any] = {}
    if (folder / "metrics.json").is_file():
        m = _read_json(folder / "metrics.json")
        metric_name = m.get("primary_metric")
        metric = (m.get("metrics") or {}).get(metric_name) if metric_name else None
        task = m.get("task")
        q = m.get("quantized")
        if isinstance(q, dict) and q.get("precision") == "int8":  # distill --quantize int8
            extra["int8_metric"] = q.get("metric")
    return Student(name or folder.name, arch, source, str(folder), metric, metric_name, task, extra)


def students_from_run(run_dir: Path) -> list[Student]:
    """A search run's winners (one per budget; final-mode metric when it was distilled, else the proxy one)
    and, when its folder is readable, the teacher it distilled from."""
    folder = RunFolder(run_dir)
    evaluator = folder.config().get("evaluator") or {}
    task = evaluator.get("task")
    out: list[Student] = []
    teacher = evaluator.get("teacher")
    if teacher is None and evaluator.get("task") == "agnostic":  # the packaged backbone taught it
        from ..distill.teacher import default_backbone_path

        teacher = str(default_backbone_path())
    if teacher and (Path(teacher) / "config.json").is_file():
        out.append(student_from_dir(Path(teacher), name="teacher", source="teacher"))
    by_arch: dict[Arch, list[dict[str, Any]]] = {}  # one student per distinct winner; its budgets in the name
    for w in folder.result()[0]:
        by_arch.setdefault(Arch.from_dict(w["arch"]), []).append(w)
    metric_name = folder.metric_name()
    for arch, ws in by_arch.items():
        w = ws[0]
        final = w.get("final_metric")
        metric = final if final is not None else w.get("proxy_metric")
        budgets = [float(x["budget_ms"]) for x in ws if x.get("budget_ms") is not None]
        name = f"winner@{','.join(f'{b:g}' for b in budgets)}ms" if budgets else f"winner-{arch_name(arch)}"
        out.append(Student(name, arch, "search-winner", arch_name(arch), metric,
                           metric_name, task,
                           {"metric_kind": "final" if final is not None else "proxy", "budgets_ms": budgets,
                            "int8_metric": w.get("deployed_metric")}))
    return out


def resolve_students(spec: str | None) -> list[Student]:
    """Parse ``--students``: names (comma-separated), ``L,H,A,FFN`` archs (semicolon-separated), folders (a
    search run or a saved model), or a mix separated by semicolons. Default: bert-base, distilbert, minilm-l12,
    minilm-l6, tinybert-6l, tinybert-4l."""
    if spec is None or not spec.strip():
        spec = "bert-base,distilbert,minilm-l12,minilm-l6,tinybert-6l,tinybert-4l"
    out: list[Student] = []
    for part in (p.strip() for p in spec.split(";")):
        if not part:
            continue
        if _ARCH_RE.match(part):
            try:
                arch = Arch.parse(part)
            except SpaceError as exc:
                raise KdnasError(f"invalid student arch {part!r}: {exc}") from None
            out.append(Student(arch_name(arch), arch, "spec", part))
            continue
        for item in (x.strip() for x in part.split(",")):
            if not item:
                continue
            path = Path(item)
            if item.lower() in NAMED:
                arch, desc = NAMED[item.lower()]
                out.append(Student(item.lower(), arch, "named", desc))
            elif path.is_dir() and (path / RUN_FILE).is_file():
                out.extend(students_from_run(path))
            elif path.is_dir() and (path / "config.json").is_file():
                out.append(student_from_dir(path))
            elif path.exists():
                raise KdnasError(f"{item} is neither a search run (run.json) nor a saved model (config.json)")
            else:
                raise KdnasError(f"unknown student {item!r}: use a name ({', '.join(NAMED)}), "
                                 "L,H,A,FFN, a search run folder or a saved model folder")
    names = [s.name for s in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise KdnasError(f"student named more than once: {', '.join(dup)}")
    if not out:
        raise KdnasError("no students to compare")
    return out
