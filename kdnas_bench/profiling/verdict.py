"""Whether a one-off latency measurement can judge a budget: trusted, or flagged.

A shared VM's timings swing (GUIDE §2 rule 9): one burst measured 1.71 ms with a CV of 0.70 and a p90 of
5.80 ms against a 1.10 ms prediction. The final check of a search therefore measures in *rounds* (each one
interleaved with the canary when the predictor has a reference canary time) until a round is quiet, or
:data:`MAX_ROUNDS` rounds or :data:`MAX_SECONDS` have passed:

* quiet: IQR / median at most :data:`QUIET_IQR` (the profiler's own re-measure threshold) and CV at most
  :data:`QUIET_CV` (a heavy tail of slow calls);
* the verdict (:func:`judge`) of a noisy measurement is ``not judged: noisy machine (cv 0.70, IQR/median 0.42,
  4 rounds)``, never a held or over; a quiet one is ``held`` or ``over``, and when it lands above the predicted
  upper bound it says so: ``held, but outside the predicted interval (measured 1.71 ms, predicted upper
  1.17 ms)``: the predictor (or the machine's speed now) is off, and the margin the budget had is not the one
  the search counted on.

The spread (cv, IQR/median, p90, rounds, each round's median) stays with the result. Free of torch: the
measuring itself is a callable handed in (:func:`measure_until_quiet`), which is what the tests stub.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

QUIET_IQR = 0.10  # IQR / median of a round at most this ...
QUIET_CV = 0.25  # ... and CV at most this: the round is quiet enough to judge a budget
MAX_ROUNDS = 4  # rounds of measuring before giving up on a quiet one
MAX_SECONDS = 60.0  # and the time cap over all rounds
VERDICTS = ("held", "over", "not judged")


def quiet(m: dict[str, Any]) -> bool:
    """Whether a measurement's spread lets it judge a budget."""
    return bool(m.get("measured_iqr_ratio", 0.0) <= QUIET_IQR and m.get("measured_cv", 0.0) <= QUIET_CV)


def _spread_key(m: dict[str, Any]) -> float:
    return max(m.get("measured_iqr_ratio", 0.0) / QUIET_IQR, m.get("measured_cv", 0.0) / QUIET_CV)


def measure_until_quiet(once: Callable[[], dict[str, Any]], *, max_rounds: int = MAX_ROUNDS,
                        max_seconds: float = MAX_SECONDS, clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Call ``once`` (one measurement: ``measured_latency_ms``, ``measured_cv``, ``measured_iqr_ratio``, ...) until
    a round is quiet, ``max_rounds`` rounds or ``max_seconds`` have passed; return the quietest round with
    ``measured_rounds``, ``measured_round_ms`` (each round's median) and ``measured_quiet``. A failed round (no
    latency) ends it at once."""
    start = clock()
    rounds: list[dict[str, Any]] = []
    while True:
        m = once()
        if m.get("measured_latency_ms") is None:
            return m
        rounds.append(m)
        if quiet(m) or len(rounds) >= max_rounds or clock() - start >= max_seconds:
            break
    best = min(rounds, key=_spread_key)
    return {**best, "measured_rounds": len(rounds), "measured_round_ms": [r["measured_latency_ms"] for r in rounds],
            "measured_quiet": quiet(best)}


@dataclass(frozen=True)
class Verdict:
    """``kind``: held, over or not judged; ``text``: what a table shows."""

    kind: str
    text: str

    def to_extra(self) -> dict[str, Any]:
        return {"budget_verdict": self.kind, "budget_verdict_text": self.text}


def judge(m: dict[str, Any], budget_ms: float, predicted_high_ms: float | None = None) -> Verdict | None:
    """The verdict of a measurement ``m`` (:func:`measure_until_quiet`'s fields) on ``budget_ms``; None when
    nothing was measured. The interval check uses the latency at the predictor's reference speed when the
    canary gave one (``measured_at_reference_ms``), since the predictor predicts at that speed."""
    measured = m.get("measured_latency_ms")
    if measured is None:
        return None
    if not m.get("measured_quiet", quiet(m)):
        rounds = m.get("measured_rounds", 1)
        return Verdict("not judged", f"not judged: noisy machine (cv {m.get('measured_cv', 0.0):.2f}, IQR/median "
                                     f"{m.get('measured_iqr_ratio', 0.0):.2f}, {rounds} round{'s' if rounds != 1 else ''})")
    kind = "held" if measured <= budget_ms else "over"
    at_reference = m.get("measured_at_reference_ms") or measured
    if predicted_high_ms is not None and at_reference > predicted_high_ms:
        return Verdict(kind, f"{kind}, but outside the predicted interval (measured {at_reference:.2f} ms, predicted "
                             f"upper {predicted_high_ms:.2f} ms)")
    return Verdict(kind, kind)
