"""The story of a search run (``kdnas-bench report RUN_DIR``): what was searched and how, the episodes and
the reward curve, every evaluated candidate against its predicted latency, the chosen arch per budget and
whether each budget held, predicted (upper bound for hard budgets) and measured (after ``--final``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import KdnasError
from ..search.evaluators import EVALUATORS, Evaluator
from ..search.reward import budget_key
from ..search.runfolder import RESULT_FILE, EvalRecord, RunFolder
from ..search.runlog import LOG_FILE
from ..space import Arch, arch_text
from .render import Document, Section, Table, fmt_ms


@dataclass
class RunStory:
    run_dir: Path
    config: dict[str, Any]
    evaluations: list[EvalRecord]
    winners: list[dict[str, Any]]
    history: list[dict[str, Any]]
    finished: bool
    skipped: int = 0  # log lines that could not be read (torn by a crash): counted, never silently
    baseline: dict[str, Any] | None = None  # result.json's teacher score beside the task's trivial score

    @property
    def trivial(self) -> float | None:
        """The task's trivial score of the primary metric (a constant answer), when the run recorded it."""
        return None if not self.baseline else float(self.baseline["trivial"])

    @property
    def budgets(self) -> list[float]:
        return [float(b) for b in (self.config.get("reward") or {}).get("budgets_ms") or []]

    def episodes(self) -> list[dict[str, Any]]:
        """Per episode: candidates evaluated, best reward per budget so far, best metric in the episode."""
        out = []
        best: dict[str, float | None] = {budget_key(b): None for b in self.budgets}
        for ep in sorted({e.episode for e in self.evaluations}):
            evs = [e for e in self.evaluations if e.episode == ep]
            for b in self.budgets:
                k = budget_key(b)
                vals = [r for r in (e.reward(b) for e in evs) if r is not None]
                cur = best[k]
                if vals and (cur is None or max(vals) > cur):
                    best[k] = max(vals)
            out.append({"episode": ep, "candidates": len(evs), "best_reward_so_far": dict(best),
                        "best_metric": max(e.metric for e in evs),
                        "proxy_seconds_mean": sum(e.seconds for e in evs) / len(evs)})
        return out

    def budget_checks(self) -> list[dict[str, Any]]:
        reward = self.config.get("reward") or {}
        by_high = reward.get("form", "soft") == "soft" and reward.get("mode", "hard") == "hard"
        out = []
        for w in self.winners:
            b = float(w["budget_ms"])
            bound = w["predicted_latency_ms_high"] if by_high else w["predicted_latency_ms"]
            measured = w.get("measured_latency_ms")
            out.append({"budget_ms": b, "arch": w["arch"], "predicted_ms": w["predicted_latency_ms"],
                        "predicted_high_ms": w["predicted_latency_ms_high"], "predicted_held": bool(bound <= b),
                        "measured_ms": measured, "measured_held": _measured_held(w, measured, b),
                        "proxy_metric": w.get("proxy_metric"), "final_metric": w.get("final_metric"),
                        "reward": w.get("reward"), "student_dir": w.get("student_dir"),
                        "verdict": w.get("budget_verdict"), "verdict_text": w.get("budget_verdict_text"),
                        "measured_cv": w.get("measured_cv"), "measured_p90_ms": w.get("measured_p90_ms"),
                        "measured_rounds": w.get("measured_rounds"), "below_trivial": self._below(w),
                        "budget_share": w.get("budget_share"), "budget_share_from": w.get("budget_share_from"),
                        "budget_note": w.get("budget_note"), "baselines": w.get("baselines") or []})
        return out

    def _below(self, w: dict[str, Any]) -> bool | None:
        """Whether the winner's final (else proxy) metric is below the trivial score; None: no baseline."""
        score = w.get("final_metric", w.get("proxy_metric"))
        if self.trivial is None or score is None:
            return None
        return bool(score < self.trivial)

    def to_dict(self) -> dict[str, Any]:
        return {"run_dir": str(self.run_dir), "finished": self.finished, "config": self.config,
                "evaluations": len(self.evaluations), "skipped_records": self.skipped, "episodes": self.episodes(),
                "budgets": self.budget_checks(), "baseline": self.baseline}


def _field(key: str, value: Any) -> str:
    """An evaluator field for the setup line; a task of one's own (``data``) as its source, columns and labels."""
    if key != "data" or not isinstance(value, dict):
        return f"{key} {value}"
    src = value.get("dataset") or " + ".join(Path(str(value.get(k))).name for k in ("train_file", "validation_file"))
    labels = value.get("labels") or []
    kind = f"labels {', '.join(map(str, labels))}" if labels else "regression"
    return (f"data {src} (content hash {value.get('data_hash')}; text {', '.join(value.get('text_columns') or [])}; "
            f"label column {value.get('label_column')}: {kind})")


def load_run(run_dir: str | Path) -> RunStory:
    """The story of a run folder (finished, or unfinished with its winners so far)."""
    folder = RunFolder(Path(run_dir))
    config = folder.config()
    evals, skipped = folder.evaluations()  # report only reads: a torn last line is counted, not moved
    if not evals:
        raise KdnasError(f"{folder.path} has no evaluations yet"
                         + (f" ({skipped} unreadable line(s) skipped)" if skipped else ""))
    history = folder.result()[1] if folder.finished else []
    return RunStory(folder.path, config, evals, folder.winners(evals), history, folder.finished, skipped=skipped,
                    baseline=_baseline(folder.path))


def _measured_held(w: dict[str, Any], measured: float | None, budget: float) -> bool | None:
    """The measured budget check: the run's verdict when it has one (None when not judged), else the bare
    comparison (runs from before verdicts)."""
    if measured is None:
        return None
    if "budget_verdict" in w:
        return {"held": True, "over": False}.get(str(w["budget_verdict"]))
    return bool(measured <= budget)


def _baseline(run: Path) -> dict[str, Any] | None:
    """``result.json``'s ``baseline`` (the teacher's score and the trivial one), when the run recorded it."""
    try:
        doc = json.loads((run / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    base = doc.get("baseline") if isinstance(doc, dict) else None
    ok = isinstance(base, dict) and isinstance(base.get("trivial"), int | float) and isinstance(base.get("metric"), str)
    return base if ok else None


def evaluator_of(config: dict[str, Any]) -> type[Evaluator] | None:
    """The registered evaluator that wrote ``run.json``'s ``evaluator`` entry (by its ``kind``; an old spelling
    too), None when no registered evaluator has that name (a plugin not installed here)."""
    kind = (config.get("evaluator") or {}).get("kind")
    return EVALUATORS.get(kind) if isinstance(kind, str) else None


def describe_evaluator(ev: dict[str, Any]) -> str:
    """The evaluator of ``run.json`` in words: its own explanation (:meth:`Evaluator.explain`), or its entry as it
    is when no registered evaluator has its ``kind``."""
    cls = evaluator_of({"evaluator": ev})
    return (cls or Evaluator).explain(ev)


def _yes(v: bool | None) -> str:
    return "-" if v is None else ("yes" if v else "NO")


def measured_verdict(check: dict[str, Any]) -> str:
    """The measured budget check: yes / NO for a trusted timing, else the verdict that says why it judges nothing
    (a noisy machine) or that the measurement left the predicted interval."""
    verdict, text = check.get("verdict"), check.get("verdict_text")
    if verdict is None or text is None:
        return _yes(check["measured_held"])
    if verdict == "not judged":
        return str(text)
    return {"held": "yes", "over": "NO"}.get(str(verdict), str(verdict)) + str(text)[len(str(verdict)):]


def metric_text(value: float | None, trivial: float | None) -> str:
    """A student's score, marked when below the trivial score (the constant answer)."""
    if value is None:
        return "-"
    return f"{value:.4f}" + (" (below trivial)" if trivial is not None and value < trivial else "")


def baseline_sentence(baseline: dict[str, Any] | None) -> str | None:
    """The teacher's dev score beside the task's trivial score, in words."""
    if not baseline:
        return None
    base = baseline.get("baseline") or {}
    answer = (base.get("answers") or {}).get(baseline["metric"], "a constant answer")
    teacher = baseline.get("teacher_score")
    said = "not recorded (not judged)" if teacher is None else f"{teacher:.4f}"
    weak = (" The teacher does NOT beat it by 2 points: it learned next to nothing (allowed by --allow-weak-teacher)."
            if baseline.get("weak") else "")
    note = f" ({base['note']})" if base.get("note") else ""
    return (f"Trivial baseline: dev {baseline['metric']} {baseline['trivial']:.4f} by {answer}{note}; teacher "
            f"{said}.{weak} Students below the trivial score are marked \"below trivial\".")


def run_document(story: RunStory, images: list[Path]) -> Document:
    c = story.config
    ev = c.get("evaluator") or {}
    r = c.get("reward") or {}
    shape = c.get("shape") or {}
    if r.get("form") == "hard":
        rule = ("Reward: the metric within the budget (hard constraint: latency below it earns nothing; a candidate "
                "predicted over it scores nothing, one whose predicted interval straddles it is measured on the device "
                "before it is picked)")
    else:
        hard = "hard budgets (a candidate whose predicted upper bound exceeds one scores nothing)"
        rule = (f"Reward: metric x (latency / budget)^{r.get('w')}; "
                f"{hard if r.get('mode') == 'hard' else str(r.get('mode')) + ' budgets'}")
    setup = [
        f"Run {story.run_dir} ({'finished' if story.finished else 'UNFINISHED: winners so far'}): strategy {c.get('strategy')}, "
        f"{c.get('episodes')} episodes x {c.get('candidates')} candidates, seed {c.get('seed')}, space {c.get('space')}.",
        f"Latency: predicted by the predictor of {c.get('device_id')} / {c.get('backend')} / {c.get('threads')} "
        f"thread(s), at batch {shape.get('batch')} x seq {shape.get('seq')}. {rule}: "
        f"{', '.join(f'{float(b):g}' for b in r.get('budgets_ms') or [])} ms.",
        describe_evaluator(ev) + f" {len(story.evaluations)} candidates evaluated.",
    ]
    trivial_line = baseline_sentence(story.baseline)
    if trivial_line:
        setup.append(trivial_line)
    if story.skipped:
        setup.append(f"Skipped {story.skipped} record(s) of {story.run_dir / LOG_FILE} that could not be "
                     "read (a line torn by a crash); the search redoes those evaluations when resumed.")
    ep_rows = [[str(e["episode"]), str(e["candidates"]),
                ", ".join("-" if v is None else f"{v:.4f}" for v in e["best_reward_so_far"].values()),
                f"{e['best_metric']:.4f}", f"{e['proxy_seconds_mean']:.1f}"] for e in story.episodes()]
    b_rows = []
    for b in story.budget_checks():
        a = Arch.from_dict(b["arch"])
        b_rows.append([f"{b['budget_ms']:g}", arch_text(a), f"{fmt_ms(b['predicted_ms'])} (<= {fmt_ms(b['predicted_high_ms'])})",
                       _yes(b["predicted_held"]), fmt_ms(b["measured_ms"]), measured_verdict(b),
                       metric_text(b["proxy_metric"], story.trivial), metric_text(b["final_metric"], story.trivial),
                       _share(b)])
    return Document(f"kdnas-bench report: {story.run_dir.name}", [
        Section("Setup", setup),
        Section("Episodes", [], [Table(["episode", "candidates", "best reward so far (per budget)", "best score",
                                        "s / candidate"], ep_rows)]),
        Section("Chosen students per budget", [f"{b['budget_ms']:g} ms: {b['budget_note']}."
                                               for b in story.budget_checks() if b.get("budget_note")], [Table(
            ["budget ms", "arch", "predicted ms (upper)", "held (predicted)", "measured ms", "held (measured)",
             "proxy metric", "final metric", "latency / budget"], b_rows)]),
        *_baseline_sections(story),
        *_rerank_sections(story),
        Section("Plots", [], [], images),
    ])


def _share(row: dict[str, Any]) -> str:
    share = row.get("budget_share")
    return "-" if share is None else f"{100 * share:.0f} % ({row.get('budget_share_from')})"


def _baseline_sections(story: RunStory) -> list[Section]:
    """Did the search pay off: the winner against the hand-crafted shapes scaled to the same budget."""
    rows = []
    for w in story.winners:
        for r in w.get("baselines") or []:
            if "error" in r:
                rows.append([f"{float(w['budget_ms']):g}", r["name"], "-", "-", "-", "-", r["error"]])
                continue
            p = f" (Welch p {r['p_value']:.3f})" if "p_value" in r else ""
            rows.append([f"{float(w['budget_ms']):g}", r["name"], r["arch"], f"{r['metric']:.4f}", _share(r),
                         f"{r['gap']:+.4f}", f"{r['verdict']}{p}"])
    if not rows:
        return []
    return [Section("Did the search pay off?", [
        "The shapes a practitioner tries first, each scaled to the budget (the slowest of its family whose predicted "
        "latency fits) and distilled with the winner's final recipe; gap = searched - baseline final metric (mean "
        "over seeds)."], [Table(["budget ms", "baseline", "arch", "final metric", "latency / budget", "gap", "verdict"],
                                rows)])]


def _rerank_sections(story: RunStory) -> list[Section]:
    rows = []
    for w in story.winners:
        trail = w.get("rerank") or []
        for r in trail:
            for i, c in enumerate(r["candidates"]):
                reward = c.get("reward")
                arch = arch_text(c["arch"]) if isinstance(c["arch"], dict) else str(c["arch"])
                rows.append([f"{float(w['budget_ms']):g}", str(r["rung"]), f"{r['examples']} x {r['epochs']:g}",
                             arch, f"{c['metric']:.4f}", "-" if reward is None else f"{reward:.4f}",
                             str(i + 1)])
    if not rows:
        return []
    return [Section("Re-ranking by proxy distillation", [
        "The one-shot scores rank the candidates; the best of each budget then go through rungs of proxy distillation "
        "with more examples per rung, the better half by reward going on, until the next rung would hold one: the best of "
        "the last rung wins. Ties of the metric go to the closer fit to the teacher on dev."],
        [Table(["budget ms", "rung", "examples x epochs", "arch", "proxy metric", "reward", "rank"], rows)])]


