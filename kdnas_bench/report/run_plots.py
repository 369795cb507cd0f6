"""The pictures of a search run's report: the reward curve, every candidate's score against its predicted
latency with the budgets, and the re-ranking rungs after a supernet search."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..search.reward import budget_key
from ..space import Arch
from . import plots
from .axes import integer_axis, place_labels, plain_log_axis
from .run_report import RunStory, evaluator_of


def score_label(config: dict[str, Any], metric_name: str) -> str:
    """What the candidates' scores are, in the evaluator's own words (:meth:`Evaluator.score_label`); proxy
    distillation ones when no registered evaluator wrote the run."""
    cls = evaluator_of(config)
    return cls.score_label(metric_name) if cls is not None else f"proxy {metric_name} (proxy distillation)"


def run_pngs(story: RunStory, out: Path) -> list[Path]:
    """The reward curve (best reward so far per budget, every candidate's reward), the candidates' scores against
    predicted latency with the budgets, and, after a supernet search, the re-ranking rungs."""
    from matplotlib.colors import BoundaryNorm  # noqa: PLC0415  lazy: matplotlib
    from matplotlib.ticker import FuncFormatter  # noqa: PLC0415  lazy: matplotlib

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
                            xlabel="episode", ylabel="reward", integer_x=True)]
    plt = plots._plt()
    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    lat = [e.latency_ms for e in story.evaluations]
    met = [e.metric for e in story.evaluations]
    n_ep = max(e.episode for e in story.evaluations) + 1
    cmap = plt.get_cmap("viridis", n_ep)
    sc = ax.scatter(lat, met, c=[e.episode for e in story.evaluations], cmap=cmap,
                    norm=BoundaryNorm([i - 0.5 for i in range(n_ep + 1)], n_ep), s=18, label="candidates")
    bar = fig.colorbar(sc, ax=ax, label="episode", ticks=range(0, n_ep, max(1, -(-n_ep // 12))))
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{round(v)}"))
    for b in story.budgets:
        ax.axvline(b, ls="--", color="gray", lw=0.8)
        ax.annotate(f"budget {b:g} ms", (b, min(met)), rotation=90, fontsize=7, va="bottom", ha="right")
    oneshot = getattr(evaluator_of(story.config), "oneshot", False)
    for w in story.winners:  # on the candidates' own score (a re-ranked winner's one-shot score)
        y = w.get("oneshot_metric", w["proxy_metric"]) if oneshot else w["proxy_metric"]
        ax.scatter([w["predicted_latency_ms"]], [y], marker="*", s=160, color="tab:red",
                   label=f"winner @ {float(w['budget_ms']):g} ms")
    metric_name = story.evaluations[0].metric_name or "metric"
    ax.set_xscale("log")
    plain_log_axis(ax, "x")
    ax.set_xlabel(f"predicted latency (ms) on {story.config.get('device_id')} / {story.config.get('backend')}")
    ax.set_ylabel(score_label(story.config, metric_name))
    ax.set_title("evaluated candidates" + (" (one-shot scores; winners re-ranked by proxy)" if oneshot else ""),
                 fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(plots.save(fig, out / "candidates.png", {"kind": "candidates", "points": len(lat),
                                                           "winners": len(story.winners), "budgets": story.budgets,
                                                           "score": "one-shot" if oneshot else "proxy"}))
    trails = [w for w in story.winners if w.get("rerank")]
    if trails:
        paths.append(_rerank_png(story, trails, out, metric_name, place_labels, integer_axis))
    return paths


def _rerank_png(story: RunStory, winners: list[dict[str, Any]], out: Path, metric_name: str, place_labels: Any,
                integer_axis: Any) -> Path:
    """Per budget: each re-ranked candidate's one-shot score, then its proxy metric at each rung of successive
    halving (more examples per rung), the survivor in red."""
    plt = plots._plt()
    oneshot = {str(e.arch): e.metric for e in story.evaluations}
    ncols = min(2, len(winners))
    nrows = -(-len(winners) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.0 * ncols, 4.2 * nrows), squeeze=False)
    info = []
    for k, ax in enumerate(axes.flat):
        if k >= len(winners):
            ax.set_visible(False)
            continue
        w = winners[k]
        rungs = w["rerank"]
        final = str(Arch.from_dict(w["arch"]))
        archs = list(dict.fromkeys(c["arch"] for c in rungs[0]["candidates"]))
        ends = []
        for arch in archs:
            xs, ys = [0], [oneshot.get(arch, float("nan"))]
            for r in rungs:
                c = next((c for c in r["candidates"] if c["arch"] == arch), None)
                if c is not None:
                    xs.append(r["rung"] + 1)
                    ys.append(c["metric"])
            won = arch == final
            ax.plot(xs, ys, marker="o", ms=4, lw=2.2 if won else 1, color="tab:red" if won else "tab:gray",
                    alpha=1 if won else 0.7, label="survivor" if won else None)
            ends.append(((xs[-1], ys[-1]), arch))
        ax.set_xticks(range(len(rungs) + 1), ["one-shot\n(supernet)",
                      *(f"rung {r['rung']}\n{r['examples']} ex x {r['epochs']:g} ep" for r in rungs)], fontsize=7)
        ax.set_ylabel(f"{metric_name}: one-shot, then proxy per rung")
        ax.plot([], [], marker="o", ms=4, lw=1, color="tab:gray", label="dropped at a rung")
        ax.set_title(f"re-ranking for the {float(w['budget_ms']):g} ms budget: {len(archs)} candidates, "
                     f"{len(rungs)} rung{'s' if len(rungs) > 1 else ''}", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
        info.append({"budget_ms": float(w["budget_ms"]), "rungs": len(rungs), "candidates": len(archs),
                     "survivor": final})
    fig.tight_layout()
    for ax, w in zip(axes.flat, winners, strict=False):
        rungs = w["rerank"]
        last = [(r["rung"] + 1, c["metric"], c["arch"]) for r in rungs for c in r["candidates"]
                if not any(c["arch"] == d["arch"] for r2 in rungs if r2["rung"] > r["rung"] for d in r2["candidates"])]
        place_labels(ax, [(x, y) for x, y, _ in last], [a for _, _, a in last])
    return plots.save(fig, out / "rerank.png", {"kind": "rerank", "budgets": info})
