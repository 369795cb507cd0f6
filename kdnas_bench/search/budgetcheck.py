"""Hardware in the loop where the predictor is unsure: under the hard reward, a winner whose predicted interval
straddles its budget is *measured* on this machine (interleaved with the teacher when the search has one, else
with the canary, so the machine's drift cancels) before it is picked; one measured over the budget is never
picked, and the next best candidate is tried. A measured latency passes when it is within the budget less a
``margin`` (default 3 %: two interleaved measurements of one student on a shared VM differ by 1–3 %, so a student
measured at 99 % of the budget is as likely over it as under it the next time). The same check gates the
re-ranking's shortlist (:meth:`BudgetCheck.admits`), so that proxy distillations decide between students that fit
rather than pick one the check then refuses. Measurements are appended to ``RUN/latency_checks.jsonl`` (a rerun
reuses them). Every winner records the latency it was judged by as a share of its budget (``budget_share``,
``budget_share_from``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..profiling.measure import measure_latency, this_machine_is
from ..space import Arch, Shape
from .domain import SearchError
from .result import EventFn, SearchResult, Winner
from .reward import BUDGET_MARGIN, RewardSpec
from .runfolder import EvalRecord, RunFolder, ranked
from .runlog import append_line, keyed_lines

CHECKS_FILE = "latency_checks.jsonl"

# arch -> the measured latency (ms, at the predictor's speed) and what else the measurement said; None: failed
Measurer = Callable[[Arch], dict[str, Any]]


def device_measurer(shape: Shape, backend: str, threads: int, reference_ms: float | None,
                    teacher: tuple[Arch, float] | None = None) -> Measurer:
    """Time an arch on this machine with the existing check timing, interleaved in bursts and judged at the
    predictor's reference speed: beside the teacher when ``teacher`` (its arch and predicted latency at the
    search's shape) is given — the speed factor is then the teacher's measured over predicted time, the ratio a
    budget of "the teacher's latency / N" is judged by — else beside the canary when the predictor has a
    reference canary time (``reference_ms``)."""
    def measure(arch: Arch) -> dict[str, Any]:
        if teacher is not None:
            info = measure_latency(arch, shape, backend, threads, reference_ms=teacher[1], canary_arch=teacher[0])
            info["measured_beside"] = f"teacher {teacher[0]}"
        else:
            info = measure_latency(arch, shape, backend, threads, reference_ms=reference_ms)
        ms = info.get("measured_at_reference_ms", info.get("measured_latency_ms"))
        return {**info, "latency_ms": ms}

    return measure


def make_measurer(device_id: str, shape: Shape, backend: str, threads: int, reference_ms: float | None,
                  teacher: tuple[Arch, float] | None = None) -> Measurer | None:
    """The device measurer when this machine is ``device_id`` (else None: nothing can be measured here)."""
    if not this_machine_is(device_id, backend):
        return None
    return device_measurer(shape, backend, threads, reference_ms, teacher)


def budget_share(latency_ms: float, budget_ms: float, source: str) -> dict[str, Any]:
    return {"budget_share": float(latency_ms / budget_ms), "budget_share_from": source}


def _read(path: Path) -> dict[Arch, dict[str, Any]]:
    return keyed_lines(path, lambda rec: Arch.from_dict(rec["arch"]))


def _order(w: Winner, records: dict[Arch, EvalRecord]) -> list[tuple[Arch, float, float]]:
    """(arch, metric, reward) of ``w``'s budget, best first: the re-ranking's rungs, last rung first, then the
    search's own ranking."""
    out: list[tuple[Arch, float, float]] = [(w.arch, w.proxy_metric, w.reward)]
    for rung in reversed(w.extra.get("rerank") or []):
        for c in rung["candidates"]:
            if c["reward"] is not None and math.isfinite(c["reward"]):
                out.append((Arch.parse(c["arch"]), float(c["metric"]), float(c["reward"])))
    scored = [(r, a) for a, rec in records.items() if (r := rec.reward(w.budget_ms)) is not None]
    out += [(a, records[a].metric, r) for r, a in ranked(scored, {a: rec.secondary for a, rec in records.items()})]
    first: dict[Arch, tuple[Arch, float, float]] = {}
    for t in out:  # each arch once, at its best-informed (earliest) place
        first.setdefault(t[0], t)
    return list(first.values())


@dataclass
class BudgetCheck:
    """Pick each budget's winner so that no measured latency exceeds it. ``measure`` None: this machine is not
    the device, and the winners stand on their predictions (said in ``latency_check``). ``raw``: judge the
    latency as timed here, not converted to the predictor's reference speed by the canary (this machine carries
    the predictor's device id but another CPU, on which the canary's ratio says nothing about a model's);
    measurements stored by an earlier run are judged the same way. ``margin``: a measured latency passes at
    ``(1 - margin) x`` the budget or less."""

    spec: RewardSpec
    measure: Measurer | None
    log: Path
    emit: EventFn
    raw: bool = False
    margin: float = BUDGET_MARGIN

    def __post_init__(self) -> None:
        if not 0 <= self.margin < 1:
            raise SearchError(f"--budget-margin must be at least 0 and below 1, got {self.margin:g}")  # library callers
        self.done = _read(self.log)

    def limit(self, budget_ms: float) -> float:
        """The most a measured latency may be under ``budget_ms``."""
        return budget_ms * (1 - self.margin)

    def admits(self, arch: Arch, budget_ms: float, rec: EvalRecord) -> bool:
        """May ``arch`` (its one-shot record ``rec``) enter the re-ranking of ``budget_ms``? Yes when its predicted
        interval is within the budget, when nothing can be measured here, or when it straddles the budget and
        its measured latency passes (the measurement is kept for the final pick)."""
        if self.measure is None or not self.spec.straddles(budget_ms, rec.latency_ms, rec.latency_ms_high):
            return True
        ms = self.measured(arch)
        return ms is None or ms <= self.limit(budget_ms)

    def measured(self, arch: Arch) -> float | None:
        if arch not in self.done:
            assert self.measure is not None
            self.emit("message", {"text": f"measuring {arch} on this machine: its predicted latency straddles a budget"})
            info = self.measure(arch)
            rec = {"arch": arch.to_dict(), "latency_ms": info.get("latency_ms"),
                   **{k: v for k, v in info.items() if k != "latency_ms"}}
            append_line(self.log, rec)
            self.done[arch] = rec
        rec = self.done[arch]
        ms = rec.get("measured_latency_ms", rec.get("latency_ms")) if self.raw else rec.get("latency_ms")
        return None if ms is None else float(ms)

    def pick(self, w: Winner, records: dict[Arch, EvalRecord]) -> Winner:
        checks: list[dict[str, Any]] = []
        for arch, metric, reward in _order(w, records):
            rec = records.get(arch)
            mid, high = (w.predicted_latency_ms, w.predicted_latency_ms_high) if rec is None else \
                (rec.latency_ms, rec.latency_ms_high)
            if not self.spec.straddles(w.budget_ms, mid, high) or self.measure is None:
                note = ("predicted interval within the budget" if high <= w.budget_ms
                        else "not this device: predicted" if self.spec.hard else "soft reward: predicted")
                return self._winner(w, arch, metric, reward, rec, checks, mid, "predicted", note, records)
            ms = self.measured(arch)
            limit = self.limit(w.budget_ms)
            checks.append({"arch": str(arch), "measured_ms": ms, "over": ms is not None and ms > limit})
            if ms is None:  # the measurement failed: the prediction stands
                return self._winner(w, arch, metric, reward, rec, checks, mid, "predicted", "measurement failed",
                                    records)
            if ms <= limit:
                note = "measured within the budget" + (f" less its {self.margin:.0%} margin" if self.margin else "")
                return self._winner(w, arch, metric, reward, rec, checks, ms, "measured", note, records)
        raise SearchError(f"every candidate that fits the {w.budget_ms:g} ms budget by prediction and was measured on "
                          f"this machine ran over it (less its {self.margin:.0%} margin; {len(checks)} measured): "
                          "raise the budget or lower --budget-margin")

    def _winner(self, w: Winner, arch: Arch, metric: float, reward: float, rec: EvalRecord | None,
                checks: list[dict[str, Any]], latency_ms: float, source: str, note: str,
                records: dict[Arch, EvalRecord] | None = None) -> Winner:
        extra = {**w.extra, "latency_check": note, **budget_share(latency_ms, w.budget_ms, source)}
        under = underfilled(arch, latency_ms / w.budget_ms, w.extra.get("rerank") or [], records or {},
                            {c["arch"] for c in checks if c["over"]},
                            by=w.extra.get("rerank_by", "metric")) if self.spec.hard else None  # soft: by design
        if under:
            extra["budget_note"] = under
        if source == "measured":
            extra["budget_margin"] = self.margin
        if self.raw and source == "measured":
            extra["latency_judged"] = "as timed here (another CPU than the predictor's)"
        if checks:
            extra["latency_checks"] = checks
        if arch == w.arch or rec is None:
            return replace(w, extra=extra)
        extra["passed_over"] = [c["arch"] for c in checks if c["over"]]
        return Winner(w.budget_ms, arch, rec.latency_ms, rec.latency_ms_high, metric, reward, extra)


FULL = 0.9  # a winner below this share of its budget says why


def underfilled(arch: Arch, share: float, trail: list[dict[str, Any]], records: dict[Arch, EvalRecord],
                over: set[str], by: str = "metric") -> str | None:
    """Why a winner leaves more than a tenth of its budget unused (None: it does not): the larger students that
    fit and that the re-ranking scored lower — or, with the rungs ordered ``by`` fidelity, that were less faithful
    to the teacher (their minus KD loss) — or that none of them ranked higher."""
    if share >= FULL:
        return None
    mine = records[arch].latency_ms if arch in records else None
    larger: dict[str, float] = {}
    for rung in trail:
        for c in rung["candidates"]:
            a = Arch.parse(c["arch"])
            fits = c["reward"] is not None and math.isfinite(c["reward"]) and c["arch"] not in over
            if fits and a != arch and a in records and mine is not None and records[a].latency_ms > mine:
                score = c.get("secondary") if by == "fidelity" else c["metric"]
                if score is not None:
                    larger[c["arch"]] = float(score)  # the last rung it reached
    head = f"uses {share:.0%} of the budget"
    if larger:
        named = ", ".join(f"{a} ({m:.4f})" for a, m in larger.items())
        if by == "fidelity":
            return (f"{head}: larger students that fit were less faithful to the teacher in the re-ranking "
                    f"(minus KD loss): {named}")
        return f"{head}: larger students that fit scored lower in the re-ranking: {named}"
    if by == "fidelity":
        return f"{head}: no larger student that fits was more faithful to the teacher"
    return f"{head}: no larger student that fits was scored higher"


def check_winners(result: SearchResult, records: Iterable[EvalRecord], check: BudgetCheck) -> SearchResult:
    by_arch = {r.arch: r for r in records}
    return replace(result, winners=[check.pick(w, by_arch) for w in result.winners])


@dataclass(frozen=True)
class BudgetStep:
    """The post-step: :func:`check_winners` over the evaluations in ``run``."""

    run: Path
    spec: RewardSpec
    measure: Measurer | None
    emit: EventFn
    raw: bool = False  # judge measured latency as timed here (BudgetCheck.raw)
    margin: float = BUDGET_MARGIN

    def check(self) -> BudgetCheck:
        """The check over ``run``'s stored measurements (the re-ranking's gate, and the final pick)."""
        return BudgetCheck(self.spec, self.measure, self.run / CHECKS_FILE, self.emit, self.raw, self.margin)

    def __call__(self, result: SearchResult) -> SearchResult:
        records, _ = RunFolder(self.run).evaluations()
        return check_winners(result, records, self.check())
