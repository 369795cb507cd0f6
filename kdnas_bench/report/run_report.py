"""The story of a search run (``kdnas-bench report RUN_DIR``): what was searched and how, the episodes and
the reward curve, every evaluated candidate against its predicted latency, the chosen arch per budget and
whether each budget held, predicted (upper bound for hard budgets) and measured (after ``--final``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import KdnasError
from ..search.reward import budget_key
from ..search.runfolder import EvalRecord, RunFolder
from ..search.runlog import LOG_FILE
from ..space import Arch
from . import plots
from .render import Document, Section, Table, fmt_ms
from .students import arch_name


@dataclass
class RunStory:
    run_dir: Path
    config: dict[str, Any]
    evaluations: list[EvalRecord]
    winners: list[dict[str, Any]]
    history: list[dict[str, Any]]
    finished: bool
    skipped: int = 0  # log lines that could not be read (torn by a crash): counted, never silently

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
        mode = (self.config.get("reward") or {}).get("mode", "hard")
        out = []
        for w in self.winners:
            b = float(w["budget_ms"])
            bound = w["predicted_latency_ms_high"] if mode == "hard" else w["predicted_latency_ms"]
            measured = w.get("measured_latency_ms")
            out.append({"budget_ms": b, "arch": w["arch"], "predicted_ms": w["predicted_latency_ms"],
                        "predicted_high_ms": w["predicted_latency_ms_high"], "predicted_held": bool(bound <= b),
                        "measured_ms": measured, "measured_held": None if measured is None else bool(measured <= b),
                        "proxy_metric": w.get("proxy_metric"), "final_metric": w.get("final_metric"),
                        "reward": w.get("reward"), "student_dir": w.get("student_dir")})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"run_dir": str(self.run_dir), "finished": self.finished, "config": self.config,
                "evaluations": len(self.evaluations), "skipped_records": self.skipped, "episodes": self.episodes(),
                "budgets": self.budget_checks()}


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
    return RunStory(folder.path, config, evals, folder.winners(evals), history, folder.finished, skipped=skipped)


def run_pngs(story: RunStory, out: Path) -> list[Path]:
    """The reward curve (best reward so far per budget, every candidate's reward) and the candidates'
    proxy metric against predicted latency with the budgets."""
    eps = story.episodes()
    x = [e["episode"] for e in eps]
    series = {f"best reward, {b:g} ms": [e["best_reward_so_far"][budget_key(b)] or float("nan") for e in eps]
              for b in story.budgets}
    points = {}
    for b in story.budgets:
        k = budget_key(b)
        evs = [(e.episode, e.rewards[k]) for e in story.evaluations if e.rewards.get(k) is not None]
        points[f"candidates, {b:g} ms"] = ([float(ep) for ep, _ in evs], [float(r) for _, r in evs if r is not None])
    paths = [plots.line_png(out / "reward-curve.png", x, series, points=points, title=f"reward by episode: {story.run_dir.name}",
                            xlabel="episode", ylabel="reward")]
    plt = plots._plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    lat = [e.latency_ms for e in story.evaluations]
    met = [e.metric for e in story.evaluations]
    sc = ax.scatter(lat, met, c=[e.episode for e in story.evaluations], cmap="viridis", s=18, label="candidates")
    fig.colorbar(sc, ax=ax, label="episode")
    for b in story.budgets:
        ax.axvline(b, ls="--", color="gray", lw=0.8)
        ax.annotate(f"budget {b:g} ms", (b, min(met)), rotation=90, fontsize=7, va="bottom", ha="right")
    for w in story.winners:
        ax.scatter([w["predicted_latency_ms"]], [w["proxy_metric"]], marker="*", s=160, color="tab:red",
                   label=f"winner @ {float(w['budget_ms']):g} ms")
    metric_name = story.evaluations[0].metric_name or "metric"
    ax.set_xscale("log")
    ax.set_xlabel(f"predicted latency (ms) on {story.config.get('device_id')} / {story.config.get('backend')}")
    ax.set_ylabel(f"proxy {metric_name}")
    ax.set_title("evaluated candidates", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(plots.save(fig, out / "candidates.png", {"kind": "candidates", "points": len(lat),
                                                           "winners": len(story.winners), "budgets": story.budgets}))
    return paths


def _yes(v: bool | None) -> str:
    return "-" if v is None else ("yes" if v else "NO")


def run_document(story: RunStory, images: list[Path]) -> Document:
    c = story.config
    ev = c.get("evaluator") or {}
    r = c.get("reward") or {}
    shape = c.get("shape") or {}
    setup = [
        f"Run {story.run_dir} ({'finished' if story.finished else 'UNFINISHED: winners so far'}): strategy {c.get('strategy')}, "
        f"{c.get('episodes')} episodes x {c.get('candidates')} candidates, seed {c.get('seed')}, space {c.get('space')}.",
        f"Latency: predictor for {c.get('device_id')} / {c.get('backend')} / {c.get('threads')} thread(s), batch "
        f"{shape.get('batch')} x seq {shape.get('seq')}. Reward: metric x (latency / budget)^{r.get('w')}, "
        f"{r.get('mode')} budgets {', '.join(f'{float(b):g}' for b in r.get('budgets_ms') or [])} ms.",
        "Evaluator: " + ", ".join(_field(k, v) for k, v in ev.items()) + f". {len(story.evaluations)} candidates evaluated.",
    ]
    if story.skipped:
        setup.append(f"Skipped {story.skipped} record(s) of {story.run_dir / LOG_FILE} that could not be "
                     "read (a line torn by a crash); the search redoes those evaluations when resumed.")
    ep_rows = [[str(e["episode"]), str(e["candidates"]),
                ", ".join("-" if v is None else f"{v:.4f}" for v in e["best_reward_so_far"].values()),
                f"{e['best_metric']:.4f}", f"{e['proxy_seconds_mean']:.1f}"] for e in story.episodes()]
    b_rows = []
    for b in story.budget_checks():
        a = Arch.from_dict(b["arch"])
        final = "-" if b["final_metric"] is None else f"{b['final_metric']:.4f}"
        b_rows.append([f"{b['budget_ms']:g}", arch_name(a), f"{fmt_ms(b['predicted_ms'])} (<= {fmt_ms(b['predicted_high_ms'])})",
                       _yes(b["predicted_held"]), fmt_ms(b["measured_ms"]), _yes(b["measured_held"]),
                       "-" if b["proxy_metric"] is None else f"{b['proxy_metric']:.4f}", final])
    return Document(f"kdnas-bench report: {story.run_dir.name}", [
        Section("Setup", setup),
        Section("Episodes", [], [Table(["episode", "candidates", "best reward so far (per budget)", "best proxy metric",
                                        "proxy s / candidate"], ep_rows)]),
        Section("Chosen students per budget", [], [Table(
            ["budget ms", "arch", "predicted ms (upper)", "held (predicted)", "measured ms", "held (measured)",
             "proxy metric", "final metric"], b_rows)]),
        Section("Plots", [], [], images),
    ])
