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

from ..distill.teacher import default_backbone_path
from ..errors import KdnasError, SpaceError, did_you_mean
from ..models import arch_of_model_dir
from ..search.runfolder import RESULT_FILE, RUN_FILE, RunFolder
from ..space import Arch, arch_text
from .named import NAMED

_ARCH_NAME = re.compile(r"^(\d+)L-(\d+)H-(\d+)A-(\d+)F$", re.IGNORECASE)
DEFAULT_STUDENTS = "bert-base,distilbert,minilm-l12,minilm-l6,tinybert-6l,tinybert-4l"


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
    """A student named by its arch: written as every table writes an arch (:func:`~kdnas_bench.space.arch_text`)."""
    return arch_text(arch)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise KdnasError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise KdnasError(f"{path} does not hold a JSON object")
    return data


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
        trivial = trivial_score(m.get("baseline"))
        if trivial is not None:
            extra["trivial"] = trivial
    return Student(name or folder.name, arch, source, str(folder), metric, metric_name, task, extra)


def trivial_score(baseline: Any) -> float | None:
    """The trivial score of the primary metric from a recorded ``baseline``: a teacher's (``primary``, from
    ``teacher finetune``) or a student's or search's (``trivial``, the teacher check); None when absent."""
    if not isinstance(baseline, dict):
        return None
    value = baseline.get("trivial", baseline.get("primary"))
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _run_trivial(run_dir: Path) -> float | None:
    """``result.json``'s trivial score (a search with a task teacher records it)."""
    try:
        doc = json.loads((run_dir / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return trivial_score(doc.get("baseline")) if isinstance(doc, dict) else None


def students_from_run(run_dir: Path) -> list[Student]:
    """A search run's winners (one per budget; final-mode metric when it was distilled, else the proxy one)
    and, when its folder is readable, the teacher it distilled from."""
    folder = RunFolder(run_dir)
    evaluator = folder.config().get("evaluator") or {}
    task = evaluator.get("task")
    out: list[Student] = []
    teacher = evaluator.get("teacher")
    if teacher is None and evaluator.get("task") == "agnostic":  # the packaged backbone taught it

        teacher = str(default_backbone_path())
    if teacher and (Path(teacher) / "config.json").is_file():
        out.append(student_from_dir(Path(teacher), name="teacher", source="teacher"))
    by_arch: dict[Arch, list[dict[str, Any]]] = {}  # one student per distinct winner; its budgets in the name
    for w in folder.result()[0]:
        by_arch.setdefault(Arch.from_dict(w["arch"]), []).append(w)
    metric_name = folder.metric_name()
    trivial = _run_trivial(Path(run_dir))
    for arch, ws in by_arch.items():
        w = ws[0]
        final = w.get("final_metric")
        metric = final if final is not None else w.get("proxy_metric")
        budgets = [float(x["budget_ms"]) for x in ws if x.get("budget_ms") is not None]
        name = f"winner@{','.join(f'{b:g}' for b in budgets)}ms" if budgets else f"winner-{arch_name(arch)}"
        out.append(Student(name, arch, "search-winner", arch_name(arch), metric,
                           metric_name, task,
                           {"metric_kind": "final" if final is not None else "proxy", "budgets_ms": budgets,
                            "int8_metric": w.get("deployed_metric"),
                            **({"trivial": trivial} if trivial is not None else {})}))
    return out


def _spec_student(numbers: list[str], text: str) -> Student:
    try:
        arch = Arch(*(int(v) for v in numbers))
    except SpaceError as exc:
        raise KdnasError(f"invalid student arch {text!r}: {exc}") from None
    return Student(arch_name(arch), arch, "spec", text)


def _item_students(item: str) -> list[Student]:
    """One name, arch name (4L-256H-4A-1024F), search run folder or saved model folder."""
    path = Path(item)
    m = _ARCH_NAME.match(item)
    if m:
        return [_spec_student(list(m.groups()), item)]
    if item.lower() in NAMED:
        arch, desc = NAMED[item.lower()]
        return [Student(item.lower(), arch, "named", desc)]
    if path.is_dir() and (path / RUN_FILE).is_file():
        return students_from_run(path)
    if path.is_dir() and (path / "config.json").is_file():
        return [student_from_dir(path)]
    if path.exists():
        raise KdnasError(f"{item} is neither a search run (run.json) nor a saved model (config.json)")
    raise KdnasError(f"unknown student {item!r}{did_you_mean(item.lower(), list(NAMED))}: use a name "
                     f"({', '.join(NAMED)}), L,H,A,FFN, a search run folder or a saved model folder")


def resolve_students(spec: str | None) -> list[Student]:
    """Parse ``--students``: a comma-separated list of names (``tinybert-4l``), archs (four numbers
    ``L,H,A,FFN``, or ``4L-256H-4A-1024F``), search run folders (their winners and teacher) and saved model
    folders. The older form that separated archs with ``;`` reads the same. Default: bert-base, distilbert,
    minilm-l12, minilm-l6, tinybert-6l, tinybert-4l."""
    if spec is None or not spec.strip():
        spec = DEFAULT_STUDENTS
    tokens = [t.strip() for t in re.split(r"[,;]", spec) if t.strip()]
    out: list[Student] = []
    i = 0
    while i < len(tokens):
        if not tokens[i].isdigit():
            out.extend(_item_students(tokens[i]))
            i += 1
            continue
        j = i
        while j < len(tokens) and tokens[j].isdigit():
            j += 1
        numbers = tokens[i:j]
        if len(numbers) % 4:
            raise KdnasError(f"invalid student arch {','.join(numbers)!r}: an arch is four numbers L,H,A,FFN "
                             f"(got {len(numbers)} in a row)")
        out.extend(_spec_student(numbers[k:k + 4], ",".join(numbers[k:k + 4])) for k in range(0, len(numbers), 4))
        i = j
    names = [s.name for s in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise KdnasError(f"student named more than once: {', '.join(dup)}")
    if not out:
        raise KdnasError("no students to compare")
    return out
