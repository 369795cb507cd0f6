"""How a search's results read: the winners table, the baselines comparison, one plain line per candidate (a log,
CI) and the cells they share (metrics against the trivial score, the budget verdict, the budget share)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from ..space import arch_text
from .tables import KEY, Col, table_or_stacked


def metric_cell(value: float | None, trivial: float | None) -> str:
    """A student's score, marked when it is below the task's trivial score (the constant answer)."""
    if value is None or value != value:
        return "-" if value is None else "nan"
    return f"{value:.4f}" + (" < trivial" if trivial is not None and value < trivial else "")


def verdict_cell(extra: dict[str, Any], held: dict[bool | None, str]) -> str:
    """The budget check of a measured winner: yes / NO only for a trusted timing, else why it judges nothing."""
    text = extra.get("budget_verdict_text")
    if text is None or extra.get("measured_latency_ms") is None:
        return held[extra.get("budget_held")]
    spread = f" (cv {extra['measured_cv']:.2f}, p90 {extra['measured_p90_ms']:.2f} ms)" if "measured_cv" in extra else ""
    if extra.get("budget_verdict") == "not judged":
        return str(text)
    return {"held": "yes", "over": "NO"}[str(extra["budget_verdict"])] + str(text)[len(extra["budget_verdict"]):] + spread


def baseline_line(baseline: dict[str, Any] | None) -> str | None:
    """The teacher's dev score beside the task's trivial one (from a search result's ``baseline``)."""
    if not baseline:
        return None
    base = baseline.get("baseline") or {}
    answer = (base.get("answers") or {}).get(baseline["metric"], "a constant")
    teacher = baseline.get("teacher_score")
    said = "not recorded" if teacher is None else f"{teacher:.4f}"
    weak = " (WEAK: does not beat it by 2 points)" if baseline.get("weak") else ""
    return (f"{baseline['metric']}: teacher {said}{weak} · trivial {baseline['trivial']:.4f} ({answer}); "
            "'< trivial' marks a student below the constant answer")


def winners_table(outcome: Any, width: int = 10_000) -> Table:
    """The winners of a :class:`~kdnas_bench.search.api.SearchOutcome`, one row per budget, with the teacher's and
    the trivial score in the caption and students below the trivial score marked; stacked (one ``column  value``
    line per cell) when the row does not fit in ``width``, never cut."""
    result = outcome.result
    base = getattr(result, "baseline", None)
    trivial = None if not base else float(base["trivial"])
    memory = any("predicted_peak_mb" in w.extra for w in result.winners)  # search --budget-mb
    cols = ["budget ms", "arch", "pred ms", "pred high ms", "proxy metric", "reward", "latency / budget"]
    if memory:
        cols += ["pred peak MiB"]
    if outcome.final:
        cols += ["final metric", "measured ms", "budget held"]
        if memory:
            cols += ["measured MiB", "memory held"]
    rows = [_winner_row(w, trivial, memory, outcome.final) for w in result.winners]
    return table_or_stacked(f"winners · {result.evaluations} evaluations · {outcome.run_dir}",
                            [Col(c, KEY, "left" if c == "arch" else "right") for c in cols], rows, width,
                            baseline_line(base))


def _winner_row(w: Any, trivial: float | None, memory: bool, final: bool) -> list[str]:
    held = {True: "yes", False: "NO", None: "not this device"}
    row = [f"{w.budget_ms:g}", arch_text(w.arch), f"{w.predicted_latency_ms:.2f}", f"{w.predicted_latency_ms_high:.2f}",
           metric_cell(w.proxy_metric, trivial), f"{w.reward:.4f}", _share(w.extra.get("budget_share"), w.extra)]
    if memory:
        row += [f"{w.extra.get('predicted_peak_mb', float('nan')):.1f}"]
    if final:
        m = w.extra.get("measured_latency_ms")
        metric = metric_cell(w.extra.get("final_metric", float("nan")), trivial)
        if "deployed_metric" in w.extra:  # an int8 backend: the deployed (quantized) model's metric
            metric += f" (int8 {w.extra['deployed_metric']:.4f})"
        row += [metric, "-" if m is None else f"{m:.2f}", verdict_cell(w.extra, held)]
        if memory:
            pk = w.extra.get("measured_peak_mb")
            row += ["-" if pk is None else f"{pk:.1f}", held[w.extra.get("memory_held")]]
    return row


def candidate_line(data: dict[str, Any], state: dict[str, Any]) -> str:
    """One plain line for an evaluated candidate (a log, CI): which one, its arch, predicted latency, score and
    rewards, or why it failed."""
    n = state["evaluations"]
    head = f"candidate {n} · episode {state['episode'] + 1}/{state['episodes']} · {arch_text(data['arch'])}"
    if data.get("error"):
        return f"{head} failed: {' '.join(str(data['error']).split())}"
    rewards = ", ".join(f"R@{b} ms {'infeasible' if v is None else f'{v:.4f}'}" for b, v in data["rewards"].items())
    return (f"{head} · pred {data['latency_ms']:.2f} ms (high {data['latency_ms_high']:.2f}) · metric "
            f"{data['metric']:.4f} · {rewards} · {data['seconds']:.1f} s")


def baselines_table(outcome: Any, width: int = 10_000) -> Table:
    """Per budget, the searched student against each hand-crafted baseline scaled to the same budget (stacked when
    the rows do not fit in ``width``, never cut)."""
    rows: list[list[str]] = []
    for w in outcome.result.winners:
        found = w.extra.get("baselines") or []
        if not found:
            continue
        searched = w.extra.get("searched_metrics") or [w.extra.get("final_metric")]
        share = w.extra.get("budget_share")
        rows.append([f"{w.budget_ms:g}", "searched", arch_text(w.arch), _mean(searched), _share(share, w.extra), "", ""])
        for r in found:
            if "error" in r:
                rows.append(["", r["name"], "-", "-", "-", "-", r["error"]])
                continue
            p = f" (p {r['p_value']:.3f})" if "p_value" in r else ""
            rows.append(["", r["name"], str(r["arch"]), _mean(r["metrics"]), _share(r["budget_share"], r),
                         f"{r['gap']:+.4f}", f"{r['verdict']}{p}"])
    cols = [Col(c, KEY, "left" if c in ("student", "arch") else "right")
            for c in ("budget ms", "student", "arch", "final metric", "latency / budget", "gap", "verdict")]
    return table_or_stacked("did the search pay off? searched vs the shapes a person would pick, same budget, same "
                            "recipe", cols, rows, width)


def _mean(values: list[Any]) -> str:
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return "-"
    return f"{sum(vals) / len(vals):.4f}" + (f" ({len(vals)} seeds)" if len(vals) > 1 else "")


def _share(share: float | None, where: dict[str, Any]) -> str:
    return "-" if share is None else f"{100 * share:.0f} % ({str(where.get('budget_share_from', '')).split()[0]})"
