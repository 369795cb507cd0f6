"""Did the search pay off? The shapes a practitioner tries first — MiniLM-shaped, TinyBERT-shaped, the teacher
with layers dropped — scaled to the search's budget (:func:`scaled_to_budget`: the slowest member of the family
whose predicted latency fits) and distilled with the search's final recipe, so each winner's gap to them
(searched − baseline) is in ``result.json`` and the report; with several seeds, with Welch's t-test.

The families follow the teacher's shape (:func:`families`); for the 6-layer, 384-wide MiniLM teacher they are
the claims benchmark's shapes."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import supernet as supernet_pkg  # names read on first use (no torch at import)
from ..distill.teacher import load_teacher
from ..significance import welch
from ..space import Arch, arch_text
from .budgetcheck import Measurer, budget_share
from .domain import SearchError
from .result import EventFn, SearchResult, Winner

if TYPE_CHECKING:
    from ..distill.inherit import TeacherShape
    from .final import FinalJob

BASELINES = ("minilm", "tinybert", "layerdrop")  # the default of --baselines
LAYER_DROPPED = ("layerdrop", "layerdrop-bottom")


def _ffn(h: int, ratio: float) -> int:
    return round(h * ratio / 4) * 4


def _tinybert_heads(h: int, heads: int) -> int:
    """The teacher's head count where heads stay at least 16 wide, else 6, 4 or 2 heads (TinyBERT's narrow
    members), else the most heads at least 16 wide that divide ``h`` (an odd width), at least one."""
    if h // heads >= 16:
        return heads
    narrow = [a for a in (2, 4, 6) if h % a == 0]
    if narrow:
        return max(narrow)
    return max((a for a in range(1, heads + 1) if h % a == 0 and h // a >= 16), default=1)


def families(shape: TeacherShape) -> dict[str, tuple[str, list[Arch]]]:
    """Each family's description and members (fastest to slowest is not implied), for a teacher of ``shape``:
    students wider than the teacher are left out (they could not inherit its weights)."""
    L, H, A = shape.layers, shape.hidden, shape.heads
    hd = H // A
    fams = {
        "minilm": (f"MiniLM-shaped ({min(6, L)} layers, whole teacher heads, FFN 4h)",
                   [Arch(min(6, L), h, h // hd, 4 * h) for h in range(2 * hd, H + 1, hd)]),
        "minilm-l3": (f"MiniLM-L3-shaped ({min(3, L)} layers, whole teacher heads, FFN 4h)",
                      [Arch(min(3, L), h, h // hd, 4 * h) for h in range(2 * hd, H + 1, hd)]),
        "tinybert": (f"TinyBERT-shaped ({min(4, L)} layers, {A} heads, FFN 3.85h)",
                     [Arch(min(4, L), h, _tinybert_heads(h, A), _ffn(h, 1200 / 312)) for h in range(8 * A, H + 1, A)]),
        "tinybert-whole-heads": (f"TinyBERT-shaped with whole teacher heads ({min(4, L)} layers, FFN 3.85h)",
                                 [Arch(min(4, L), h, h // hd, _ffn(h, 1200 / 312)) for h in range(2 * hd, H + 1, hd)]),
        "layerdrop": ("the teacher with layers dropped (full width, evenly spread layers, teacher weights)",
                      [Arch(k, H, A, shape.ffn) for k in range(1, L + 1)]),
        "layerdrop-bottom": ("the teacher with its top layers dropped (full width, its first layers, teacher weights)",
                             [Arch(k, H, A, shape.ffn) for k in range(1, L + 1)]),
    }
    return {name: (text, [a for a in archs if shape.fits(a)]) for name, (text, archs) in fams.items()}


FAMILY_NAMES = ("minilm", "minilm-l3", "tinybert", "tinybert-whole-heads", "layerdrop", "layerdrop-bottom")


def scaled_to_budget(family: list[Arch], budget: float, predicted: Callable[[Arch], float]) -> Arch:
    """The slowest member of a family whose predicted latency fits the budget (the fastest when none does)."""
    fits = [a for a in family if predicted(a) <= budget]
    return max(fits, key=predicted) if fits else min(family, key=predicted)


def parse_baselines(text: str | None) -> tuple[str, ...]:
    """``--baselines`` as typed: names separated by commas, or ``none``; None: the default ones."""
    if text is None:
        return BASELINES
    names = tuple(dict.fromkeys(t.strip().lower() for t in text.split(",") if t.strip()))
    if names == ("none",):
        return ()
    bad = [n for n in names if n not in FAMILY_NAMES]
    if bad or not names:
        raise SearchError(f"--baselines: unknown {', '.join(bad) or repr(text)} (choose from "
                          f"{', '.join(FAMILY_NAMES)}, or none)")
    return names


@dataclass(frozen=True)
class BaselineStep:
    """The post-step after the final distillation: per budget, each named family scaled to the budget and
    distilled with the final's recipe (``seeds`` seeds; with more than one, the winner is distilled with the
    extra seeds too), measured with ``measure`` where this machine is the device."""

    job: FinalJob
    names: tuple[str, ...]
    seeds: int
    predicted: Callable[[Arch], float]
    measure: Measurer | None
    emit: EventFn

    def __call__(self, result: SearchResult) -> SearchResult:
        from ..distill.inherit import TeacherShape  # noqa: PLC0415  lazy: torch (via distill.inherit)

        self.emit("message", {"text": f"distilling the baselines ({', '.join(self.names)}) with the same recipe …"})
        teacher = load_teacher(str(self.job.teacher), task=self.job.task)
        fams = families(TeacherShape.of(teacher.model.config))
        run = Path(result.run_dir)
        runs: dict[tuple[str, Arch, int], float] = {}  # (init kind, arch, seed) -> metric: shared across budgets
        winners = [self._one(w, fams, teacher, run, runs) for w in result.winners]
        return replace(result, winners=winners)

    def _distil(self, arch: Arch, seed: int, init_model: Any, runs: dict[tuple[str, Arch, int], float],
                kind: str) -> float:
        from ..distill.trainer import distill  # noqa: PLC0415  lazy: torch (via distill.trainer)

        key = (kind, arch, seed)
        if key not in runs:
            j = self.job
            res = distill(j.teacher, j.task, arch, data_dir=j.data_dir, max_examples=j.examples, epochs=j.epochs,
                          losses=j.losses, seed=seed, progress=j.progress, init=j.init, accelerator=j.accelerator,
                          init_model=init_model() if init_model else None,
                          **{k: v for k, v in j.training.items() if k != "log_to"},  # the final's recipe, unlogged
                          allow_weak_teacher=True)  # the search checked its teacher before any work
            runs[key] = float(res.primary)
        return runs[key]

    def _one(self, w: Winner, fams: dict[str, tuple[str, list[Arch]]], teacher: Any, run: Path,
             runs: dict[tuple[str, Arch, int], float]) -> Winner:
        from ..distill.layerdrop import layer_dropped  # noqa: PLC0415  lazy: torch (via distill.layerdrop)

        if w.extra.get("final_metric") is None:  # the winner's final failed: nothing to compare
            return w
        seeds = [self.job.seed + i for i in range(self.seeds)]
        searched = [float(w.extra["final_metric"])]
        searched += [self._distil(w.arch, s, self._supernet_init(w.arch), runs, "searched") for s in seeds[1:]]
        rows = []
        for name in self.names:
            text, family = fams[name]
            if not family:
                rows.append({"name": name, "family": text, "error": "no member fits inside the teacher"})
                continue
            arch = scaled_to_budget(family, w.budget_ms, self.predicted)
            init: Callable[[], Any] | None
            if name in LAYER_DROPPED:
                keep = "bottom" if name == "layerdrop-bottom" else "spread"
                init, kind = partial(layer_dropped, teacher.model, arch.layers, keep=keep), name
            else:
                init, kind = self._supernet_init(arch), "supernet" if self.job.supernet else self.job.init
            metrics = [self._distil(arch, s, init, runs, kind) for s in seeds]
            rows.append(self._row(name, text, arch, w.budget_ms, metrics, searched))
        return replace(w, extra={**w.extra, "searched_metrics": searched, "baselines": rows,
                                 "baseline_seeds": self.seeds})

    def _supernet_init(self, arch: Arch) -> Callable[[], Any] | None:
        """The search's own start where the final used one: the arch's sub-network of the supernet."""
        if self.job.supernet is None:
            return None
        def extract() -> Any:
            try:
                return supernet_pkg.load(str(self.job.supernet))[0].extract(arch)
            except supernet_pkg.SupernetError:
                return None  # outside the supernet: the final's init rule (inherit)
        return extract

    def _row(self, name: str, text: str, arch: Arch, budget: float, metrics: list[float],
             searched: list[float]) -> dict[str, Any]:
        pred = self.predicted(arch)
        row: dict[str, Any] = {"name": name, "family": text, "arch": arch_text(arch), "predicted_latency_ms": pred,
                               "metrics": metrics, "metric": statistics.fmean(metrics),
                               "gap": statistics.fmean(searched) - statistics.fmean(metrics)}
        latency, source = pred, "predicted"
        if self.measure is not None:
            ms = self.measure(arch).get("latency_ms")
            row["measured_latency_ms"] = ms
            if ms is not None:
                latency, source = float(ms), "measured"
        row |= budget_share(latency, budget, source)
        if len(metrics) >= 2 and len(searched) >= 2:
            c = welch(searched, metrics)
            row |= {"p_value": c.p_value, "verdict": c.verdict, "test": c.test}
        else:
            row["verdict"] = "one seed: no significance (pass --baseline-seeds 2 or more)"
        return row
