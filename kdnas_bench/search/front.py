"""The accuracy–latency front of one search: the best student at every latency, for its teacher, task and device.

Every candidate a search evaluated (one-shot scores with ``--evaluator supernet``) has a predicted latency on
the search's device. The *front* is the non-dominated subset: sorted by latency, each point scores strictly
higher than every faster one. A handful of points spread along it (:func:`spread`) can be re-scored by a
costlier evaluator (proxy distillation from their supernet weights; :func:`front_step`'s ``rescore``), and a
latency budget then picks from the front (:func:`pick`: the best point whose predicted latency — its upper
bound in hard mode — fits). Because the scores do not depend on the device, one search gives a front per
device with a predictor (:func:`fronts_for_devices`), drawn one plot per device (:func:`plot_fronts`).

:func:`front_step` has the shape of a search post-step, ``(result, ...) -> result``: it writes
``RUN/front.json`` and returns the result with each budget's winner picked from the front.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ..defaults import DEFAULTS
from ..distill.taskspec import TaskRef
from ..errors import KdnasError
from ..paths import default_predictors
from ..space import Arch, Shape
from .evaluators.proxy import ProxyDistillEvaluator
from .runfolder import RESULT_FILE, RunFolder

FRONT_FILE = "front.json"


@dataclass(frozen=True)
class FrontPoint:
    """A candidate on (or offered to) the front: predicted latency (mid, upper bound), its search score, and
    the re-scored metric where it was re-ranked."""

    arch: Arch
    latency_ms: float
    latency_ms_high: float
    metric: float
    rerank_metric: float | None = None

    @property
    def score(self) -> float:
        """The best-informed metric: the re-ranked one where there is one, else the search's score."""
        return self.metric if self.rerank_metric is None else self.rerank_metric

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "arch": str(self.arch)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FrontPoint:
        return cls(Arch.parse(d["arch"]), float(d["latency_ms"]), float(d["latency_ms_high"]), float(d["metric"]),
                   None if d.get("rerank_metric") is None else float(d["rerank_metric"]))


def _points(records: Iterable[Any]) -> list[FrontPoint]:
    """FrontPoints from evaluation records (``EvalRecord`` or anything with arch, latency_ms, latency_ms_high,
    metric), NaN scores dropped."""
    out = []
    for r in records:
        if isinstance(r, FrontPoint):
            out.append(r)
        elif not math.isnan(float(r.metric)):
            out.append(FrontPoint(r.arch, float(r.latency_ms), float(r.latency_ms_high), float(r.metric)))
    return out


def pareto_front(records: Iterable[Any], *, by_high: bool = False) -> list[FrontPoint]:
    """The non-dominated points, fastest first: each scores strictly more than every faster (or equally fast)
    point. Ties in latency and score go to the smaller arch. ``by_high``: order by the latency upper bound."""
    pts = _points(records)

    def lat(p: FrontPoint) -> float:
        return p.latency_ms_high if by_high else p.latency_ms

    front: list[FrontPoint] = []
    for p in sorted(pts, key=lambda p: (lat(p), -p.score, p.arch)):
        if not front or p.score > front[-1].score:
            if front and lat(front[-1]) == lat(p):  # same latency, better score: replaces it
                front.pop()
            front.append(p)
    return front


def dominated(p: FrontPoint, q: FrontPoint, *, by_high: bool = False) -> bool:
    """True when ``q`` is at least as fast and as good as ``p`` and strictly better in one."""
    lp, lq = (p.latency_ms_high, q.latency_ms_high) if by_high else (p.latency_ms, q.latency_ms)
    return lq <= lp and q.score >= p.score and (lq < lp or q.score > p.score)


def spread(front: Sequence[FrontPoint], k: int) -> list[FrontPoint]:
    """Up to ``k`` points evenly spread along the front's latency range (both ends included), no repeats."""
    if k <= 0 or not front:
        return []
    if k >= len(front):
        return list(front)
    lo, hi = front[0].latency_ms, front[-1].latency_ms
    chosen: list[FrontPoint] = []
    for i in range(k):
        target = lo + (hi - lo) * i / (k - 1) if k > 1 else hi
        left = [p for p in front if p not in chosen]
        chosen.append(min(left, key=lambda p: (abs(p.latency_ms - target), p.latency_ms)))
    return sorted(chosen, key=lambda p: p.latency_ms)


def pick(front: Sequence[FrontPoint], budget_ms: float, *, by_high: bool = True,
         rescored_only: bool = False) -> FrontPoint | None:
    """The best point of the front within ``budget_ms`` (its upper bound with ``by_high``, as a hard budget
    holds it), by :attr:`FrontPoint.score`; ties to the faster one. None when no point fits. ``rescored_only``:
    only the re-scored points compete where one fits (a search score and a re-scored one are on different
    scales: one-shot scores run higher than proxy distillation's, so an un-re-scored point would win unfairly)."""
    fits = [p for p in front if (p.latency_ms_high if by_high else p.latency_ms) <= budget_ms]
    if not fits:
        return None
    if rescored_only:
        fits = [p for p in fits if p.rerank_metric is not None] or fits
    return max(fits, key=lambda p: (p.score, -p.latency_ms))


def rescored(front: Sequence[FrontPoint], rescore: Callable[[Arch], float], k: int) -> list[FrontPoint]:
    """The front with ``k`` points spread along it re-scored by ``rescore`` (the rest keep their search score).
    Points that lose to a faster re-scored point stay listed: the re-ranked figures are the evidence."""
    chosen = {p.arch for p in spread(front, k)}
    return [replace(p, rerank_metric=float(rescore(p.arch))) if p.arch in chosen else p for p in front]


def front_step(result: Any, records: Iterable[Any], *, budgets_ms: Sequence[float], rescore: Callable[[Arch], float]
               | None = None, points: int = 5, by_high: bool = True, run_dir: str | Path | None = None) -> Any:
    """A search post-step: the front of ``records`` (optionally ``points`` of it re-scored), written to
    ``RUN/front.json``; the result's winners replaced by each budget's pick from the front (``extra`` keeps the
    search's score and the re-ranked one). ``result`` is a :class:`~kdnas_bench.search.study.SearchResult`."""
    front = pareto_front(records)
    if not front:
        raise KdnasError("the search has no scored candidate: no front to pick from")
    rescoring = rescore is not None and points > 0
    if rescoring:
        front = rescored(front, rescore, points)  # type: ignore[arg-type]
    winners = _front_winners(front, budgets_ms, by_high=by_high, rescored_only=rescoring)
    folder = Path(run_dir or result.run_dir)
    write_front(folder / FRONT_FILE, front, budgets_ms=budgets_ms, picks=[w.arch for w in winners])
    return replace(result, winners=winners)


def _front_winners(front: Sequence[FrontPoint], budgets_ms: Sequence[float], *, by_high: bool,
                   rescored_only: bool) -> list[Any]:
    from .study import Winner  # noqa: PLC0415  lazy: pandas (via search.study)

    winners = []
    for b in budgets_ms:
        p = pick(front, b, by_high=by_high, rescored_only=rescored_only)
        if p is None:
            raise KdnasError(f"no point of the front fits {b:g} ms (fastest: {front[0].latency_ms_high:.2f} ms upper "
                             f"bound)")
        winners.append(Winner(float(b), p.arch, p.latency_ms, p.latency_ms_high, p.score, p.score,
                              {"from_front": True, "search_metric": p.metric, "rerank_metric": p.rerank_metric}))
    return winners


def repick(run: str | Path, *, by_high: bool = True) -> list[Any]:
    """Pick each budget's winner again from a finished run's ``front.json`` (its re-scored points kept) with
    today's rule, and write the picks back to ``front.json`` and the winners to ``result.json``: for a run made
    before a change to :func:`pick`. Returns the winners."""
    run = Path(run)
    front = read_front(run / FRONT_FILE)
    doc = json.loads((run / FRONT_FILE).read_text())
    budgets = [float(b) for b in doc.get("budgets_ms") or []]
    if not front or not budgets:
        raise KdnasError(f"{run / FRONT_FILE}: no front or no budgets to pick for")
    winners = _front_winners(front, budgets, by_high=by_high,
                             rescored_only=any(p.rerank_metric is not None for p in front))
    write_front(run / FRONT_FILE, front, **{**{k: v for k, v in doc.items() if k != "front"},
                                            "picks": [w.arch for w in winners]})
    if (run / RESULT_FILE).is_file():
        res = json.loads((run / RESULT_FILE).read_text())
        res["winners"] = [w.to_dict() for w in winners]
        (run / RESULT_FILE).write_text(json.dumps(res, indent=2, default=str) + "\n")
    return winners


def write_front(path: Path, front: Sequence[FrontPoint], **info: Any) -> None:
    doc = {"front": [p.to_dict() for p in front],
           **{k: ([str(a) for a in v] if k == "picks" else list(v) if isinstance(v, tuple) else v) for k, v in info.items()}}
    path.write_text(json.dumps(doc, indent=2) + "\n")


def read_front(path: Path) -> list[FrontPoint]:
    try:
        doc = json.loads(Path(path).read_text())
        return [FrontPoint.from_dict(d) for d in doc["front"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KdnasError(f"{path}: not a front file ({type(exc).__name__}: {exc})") from None


def fronts_for_devices(records: Iterable[Any], predictors: dict[str, Any], shape: Shape) -> dict[str, list[FrontPoint]]:
    """One front per device: the same scores, each device's predicted latency (``predictors``: device id ->
    a loaded latency predictor)."""
    pts = _points(records)
    out = {}
    for device, pred in predictors.items():
        p = pred.predict_interval([(x.arch, shape) for x in pts])
        moved = [replace(x, latency_ms=float(m), latency_ms_high=float(h)) for x, m, h in zip(pts, p.mid, p.high,
                                                                                              strict=True)]
        out[device] = pareto_front(moved)
    return out


def plotted_pick(front: Sequence[FrontPoint], budget_ms: float, picked: Arch | None = None) -> FrontPoint | None:
    """The point a front plot marks as the budget's pick: ``picked`` (the search's own winner) where it lies on
    the front, else what :func:`pick` takes, among the re-scored points where the front has any (as the search
    picks)."""
    if picked is not None:
        mine = next((p for p in front if p.arch == picked), None)
        if mine is not None:
            return mine
    return pick(front, budget_ms, rescored_only=any(p.rerank_metric is not None for p in front))


def plot_fronts(fronts: dict[str, list[FrontPoint]], out_dir: Path, *, metric_name: str = "metric",
                everything: dict[str, list[FrontPoint]] | None = None, budgets_ms: dict[str, float] | None = None,
                title: str = "", backends: dict[str, str] | None = None,
                picks: dict[str, Arch] | None = None) -> list[Path]:
    """One PNG per device: every scored candidate (grey), the front (line), re-ranked points (ringed) and the
    budget's pick (``picks``: device -> the search's winner; else :func:`plotted_pick`). Returns the files written
    (``front-<device>.png``)."""
    import matplotlib  # noqa: PLC0415  lazy: matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415  lazy: matplotlib

    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for device, front in fronts.items():
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
        if everything and everything.get(device):
            ax.scatter([p.latency_ms for p in everything[device]], [p.metric for p in everything[device]], s=10,
                       color="0.75", label="evaluated candidates")
        ax.plot([p.latency_ms for p in front], [p.metric for p in front], "o-", color="C0", ms=4,
                label="front (search scores)")
        rr = [p for p in front if p.rerank_metric is not None]
        if rr:
            ax.scatter([p.latency_ms for p in rr], [p.score for p in rr], s=50, facecolors="none",
                       edgecolors="C3", label="re-ranked")
        budget = (budgets_ms or {}).get(device)
        if budget is not None:
            ax.axvline(budget, color="C2", ls="--", lw=1, label=f"budget {budget:g} ms")
            best = plotted_pick(front, budget, (picks or {}).get(device))
            if best is not None:
                ax.annotate(str(best.arch), (best.latency_ms, best.score), textcoords="offset points", xytext=(5, -12),
                            fontsize=8)
        how = (backends or {}).get(device)
        ax.set_xlabel(f"predicted latency on {device}{f' ({how})' if how else ''}, ms")
        ax.set_ylabel(metric_name)
        ax.set_title(title or f"accuracy–latency front, {device}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        path = out_dir / f"front-{device}.png"
        fig.savefig(path)
        plt.close(fig)
        files.append(path)
    return files


@dataclass
class FrontStep:
    """``kdnas-bench search --front K`` as a post-step of the search's plan (before the budget check and the one
    final step): the front of the run's evaluations; ``points`` of it re-scored by proxy distillation
    (``--rerank-examples`` x ``--rerank-epochs``, from supernet weights with the supernet evaluator); each
    budget's winner picked from it. Writes ``RUN/front.json`` and ``RUN/front-<device>.png`` for every device
    with a predictor of the search's backend and threads (the same scores, that device's predicted latency)."""

    req: Any  # the SearchRequest
    run: Path
    teacher: str | None
    task: TaskRef
    losses: str
    supernet: str | None
    accelerator: str
    points: int

    def __call__(self, result: Any) -> Any:
        req = self.req
        records, _ = RunFolder(self.run).evaluations()
        rescore = None
        if self.points > 0 and self.teacher is not None and not req.agnostic:
            ev = ProxyDistillEvaluator(teacher=self.teacher, task=self.task, data_dir=req.data_dir,
                                       proxy_examples=req.supernet.rerank_examples, epochs=req.supernet.rerank_epochs,
                                       losses=self.losses, seed=req.seed, init=req.init, supernet=self.supernet,
                                       accelerator=self.accelerator, lr=req.supernet.rerank_lr or DEFAULTS.distill_lr)
            rescore = lambda arch: ev.evaluate(arch).metric  # noqa: E731
        by_high = req.reward.form == "soft" and req.mode == "hard"  # the hard reward judges the prediction
        result = front_step(result, records, budgets_ms=req.budgets_ms, rescore=rescore, points=self.points,
                            by_high=by_high, run_dir=self.run)
        draw_fronts(self.run, records, key=req.key, shape=req.shape, budget_ms=max(req.budgets_ms),
                    predictors=req.predictors, task=str(self.task),
                    picked=max(result.winners, key=lambda w: w.budget_ms).arch)
        return result


def draw_fronts(run: Path, records: Sequence[Any], *, key: Any, shape: Shape, budget_ms: float,
                predictors: str | Path | None = None, task: str = "", picked: Arch | None = None) -> list[Path]:
    """``RUN/front-<device>.png`` for the search's device (its front: ``RUN/front.json``, re-scored points
    included) and every other device with a predictor of the search's backend and threads (else its accelerator
    variant, one thread): the same scores, that device's predicted latency. ``key``: the search's predictor key;
    ``picked``: the search's winner at ``budget_ms`` (marked on its device's plot)."""
    from ..predictors.lookup import fitted_keys, load_predictor  # noqa: PLC0415  lazy: pandas (via predictors.lookup)

    root = Path(predictors or default_predictors())
    keys: dict[str, Any] = {}  # per device: the search's backend and threads, else its accelerator variant
    for k in fitted_keys(root):
        exact = (k.backend, k.threads) == (key.backend, key.threads)
        if exact or (k.device_id not in keys and k.backend.startswith(f"{key.backend}-") and k.threads == 1
                     and not k.backend.endswith(("bf16", "int8"))):
            keys[k.device_id] = k
    keys[key.device_id] = key
    preds = {d: load_predictor(k.device_id, k.backend, k.threads, root=root) for d, k in keys.items()}
    fronts = fronts_for_devices(records, preds, shape)
    fronts[key.device_id] = read_front(run / FRONT_FILE)  # the search's own, with the re-scored points
    pts = _points(records)
    every = {}
    for device, pred in preds.items():
        p = pred.predict_interval([(x.arch, shape) for x in pts])
        every[device] = [replace(x, latency_ms=float(m), latency_ms_high=float(h))
                         for x, m, h in zip(pts, p.mid, p.high, strict=True)]
    metric = (getattr(records[0], "metric_name", None) if records else None) or "metric"
    return plot_fronts(fronts, run, metric_name=metric, everything=every, budgets_ms={key.device_id: budget_ms},
                       title=f"{task}: accuracy–latency front" if task else "",
                       backends={d: f"{k.backend}, {k.threads} thread(s)" for d, k in keys.items()},
                       picks={key.device_id: picked} if picked is not None else None)
