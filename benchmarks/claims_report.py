"""The claims table from ``bench_claims.py``'s work area: ``benchmarks/results/claims.json`` (schema 2) and a
Markdown table on stdout. Used by ``python benchmarks/bench_claims.py report``.

Per task: the teacher (dev metric, the recipe that made it, the majority-class baseline, measured latency),
every student's seeds (mean ± std), its measured latency against the budget (the teacher's measured latency
/ 3, on the same run of interleaved timing), and the searched student compared with every other one —
Welch's t over seeds (the verdict: is the gap larger than seed noise?) and, where both kept their dev
predictions, a paired bootstrap over dev examples. Claim (b) is judged against the best hand-crafted student
that meets the same measured budget. A task without a plan under the work area keeps the entry it had in
the file before (marked ``source``), re-judged with the same rules.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from kdnas_bench.models import count_params
from kdnas_bench.report.significance import paired_bootstrap, task_metric, welch
from kdnas_bench.space import Arch

NOT_HAND = ("searched", "fast-match")  # every other student of a plan is hand-crafted (``--extra`` ones aside)
CLAIM_TASKS = ("sst2", "mrpc", "stsb", "rte")  # the tasks of goals (a) and (b)
# GLUE's score of a task that reports several metrics: their mean (MRPC: F1 and accuracy, as the GLUE leaderboard
# averages them). Every other task is judged by its primary metric.
JUDGED: dict[str, tuple[str, ...]] = {"mrpc": ("f1", "accuracy")}


def judged_name(task: str, primary: str) -> str:
    """The name of the figure a task is judged by, e.g. ``mean of f1 and accuracy`` for MRPC."""
    keys = JUDGED.get(task)
    return f"mean of {' and '.join(keys)}" if keys else primary


def judged_score(task: str, metrics: dict[str, float] | None, primary: float) -> float:
    """The figure a task is judged by from one result's metrics (``primary`` where the task has no GLUE mean)."""
    keys = JUDGED.get(task)
    if not keys:
        return primary
    if not metrics or any(k not in metrics for k in keys):
        raise ValueError(f"{task} is judged by the {judged_name(task, '')}: a result lacks {', '.join(keys)}")
    return statistics.mean(float(metrics[k]) for k in keys)


def _judged_metric(task: str) -> Any:
    """``metric(pred, gold)`` of the judged figure, for the paired bootstrap over dev examples."""
    keys = JUDGED.get(task)
    if not keys:
        return task_metric(task)
    from kdnas_bench.distill.metrics import METRICS

    fns = [METRICS[k] for k in keys]
    return lambda pred, gold: statistics.mean(float(fn(pred, gold)) for fn in fns)


def recipe_tag(final: dict[str, Any]) -> str:
    """A short tag of the final-distillation recipe: finals of another recipe are never mixed in."""
    tag = (f"n{final['examples']}-e{final['epochs']}-lr{final.get('lr', 5e-4)}-{final['losses']}"
           f"-{final.get('batching', 'random')}")
    return tag if final.get("init", "supernet sub-network") == "supernet sub-network" else f"{tag}-{final['init']}"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def _trivial(task: str, data_dir: Path) -> Any:
    """The task's best constant answer on dev (:func:`kdnas_bench.distill.baseline.trivial_baseline`); None without
    the data."""
    from kdnas_bench.distill.baseline import trivial_baseline

    try:
        return trivial_baseline(task, data_dir)
    except Exception:
        return None


def trivial_metrics(task: str, data_dir: Path) -> dict[str, float] | None:
    """Every metric of the task's best constant answer on dev; None without the data."""
    base = _trivial(task, data_dir)
    return None if base is None else dict(base.metrics)


def majority_baseline(task: str, data_dir: Path) -> float | None:
    """The task's trivial score on dev in the figure it is judged by: the best constant answer (the majority class;
    0 for regression; MRPC: the mean of F1 and accuracy of always answering "paraphrase")."""
    base = _trivial(task, data_dir)
    return None if base is None else judged_score(task, base.metrics, base.primary)


def _dev_gold(task: str, data_dir: Path) -> Any:
    import numpy as np

    from kdnas_bench.distill.data import load_split

    try:
        return np.asarray(load_split(task, "dev", data_dir).labels)
    except Exception:
        return None


def _student(st: dict[str, Any], finals: list[dict[str, Any]], ms: float | None, budget: float | None,
             teacher_metric: float, task: str = "") -> dict[str, Any] | None:
    vals = [judged_score(task, r.get("metrics"), r["metric"]) for r in finals]
    if not vals:
        return None
    mean = statistics.mean(vals)
    each = {k: statistics.mean(float(r["metrics"][k]) for r in finals) for k in (finals[0].get("metrics") or {})
            if all(k in (r.get("metrics") or {}) for r in finals)}
    return {**st, "values": vals, "seeds": len(vals), "metric_mean": mean, **({"metrics_mean": each} if each else {}),
            "metric_std": statistics.stdev(vals) if len(vals) > 1 else 0.0, "measured_ms": ms,
            "share_of_teacher": mean / teacher_metric if teacher_metric else None,
            "within_budget": None if ms is None or budget is None else ms <= budget,
            "predictions": [r["dev_predictions"] for r in finals if r.get("dev_predictions") is not None]}


def compare(task: str, a: dict[str, Any], b: dict[str, Any], gold: Any) -> dict[str, Any]:
    """Searched (a) against another student (b): the difference, Welch over seeds, the paired bootstrap."""
    out: dict[str, Any] = {"diff": a["metric_mean"] - b["metric_mean"], "welch": None, "bootstrap": None}
    if a["seeds"] >= 2 and b["seeds"] >= 2:
        out["welch"] = welch(a["values"], b["values"]).to_dict()
    pa, pb = a.get("predictions") or [], b.get("predictions") or []
    if pa and pb and gold is not None and all(len(p) == len(gold) for p in pa + pb):
        out["bootstrap"] = paired_bootstrap(pa, pb, gold, _judged_metric(task), resamples=1000).to_dict()
    out["verdict"] = (out["welch"] or {}).get("verdict", "one seed: not tested")
    return out


def timed_ms(lat: dict[str, Any], name: str, arch: str) -> float | None:
    """A row's latency from a table's interleaved timing: the name's, if that name was timed as this arch (a
    ``latency.json`` written before archs were recorded: the name's), else another name timed as the same arch in
    the same run (e.g. a searched row re-pointed to an arch timed there as an extra row), else None."""
    archs = lat.get("archs")
    if archs is None:
        return lat["ms"].get(name)
    if archs.get(name) == arch:
        return lat["ms"].get(name)
    return next((lat["ms"][n] for n, a in archs.items() if a == arch and n in lat["ms"]), None)


def _task_entry(root: Path, task: str, extra: dict[str, str], data_dir: Path,
                extra_rows: dict[str, str] | None = None) -> dict[str, Any] | None:
    work = root / task
    if not (work / "plan.json").is_file():
        return None
    plan = json.loads((work / "plan.json").read_text())
    lat = json.loads((work / "latency.json").read_text()) if (work / "latency.json").is_file() else {"ms": {}}
    teacher_dir = Path(plan.get("teacher") or plan["supernet_recipe"]["teacher"])
    if not (teacher_dir / "metrics.json").is_file():  # trained on another machine: its figures copied beside
        teacher_dir = root / "teachers" / task
    if not (teacher_dir / "metrics.json").is_file():
        print(f"{task}: the teacher's metrics.json is neither at {plan.get('teacher')} nor under {root}/teachers/{task}")
        return None
    tm = json.loads((teacher_dir / "metrics.json").read_text())
    recipe = json.loads((teacher_dir / "recipe.json").read_text()) if (teacher_dir / "recipe.json").is_file() else None
    tag = recipe_tag(plan["final"])
    finals = [r for r in _jsonl(work / "finals.jsonl") if r.get("recipe") == tag]
    teacher_ms = lat["ms"].get("teacher")
    budget = None if teacher_ms is None else teacher_ms / 3
    teacher_metric = judged_score(task, tm["metrics"], tm["metrics"][tm["primary_metric"]])
    entry: dict[str, Any] = {
        "task": task, "source": "this run", "metric_name": judged_name(task, tm["primary_metric"]),
        "teacher_metric": teacher_metric,
        "teacher": {"metric": teacher_metric, "metrics": tm["metrics"], "train_examples": tm.get("train_examples"),
                    "epochs": tm.get("epochs"), "config": tm.get("config"), "backbone": tm.get("backbone"),
                    "recipe": recipe and {k: recipe[k] for k in ("chosen", "selection", "candidates") if k in recipe},
                    "majority_baseline": majority_baseline(task, data_dir),
                    "majority_baseline_metrics": trivial_metrics(task, data_dir), "measured_ms": teacher_ms},
        "budget_ms": budget, "search_budget_ms": (plan.get("search") or {}).get("budget_ms", plan["budget_ms"]),
        "teacher_ms": teacher_ms,
        "latency": {k: lat.get(k) for k in ("device_id", "method")},
        "students": {}, "plan": plan}
    if plan.get("search"):
        entry["search"] = searched_run(root, plan)
    # an extra row named TASK:NAME belongs to that task only (others are looked for in every task)
    more = {}
    for n, a in extra.items():
        scope, colon, short = n.partition(":")
        if colon and scope != task:
            continue
        name = short if colon else n
        alias = (extra_rows or {}).get(n, n)
        more[name] = {"arch": a, "params": count_params(Arch.parse(a)), "extra": True,
                      "alias": name if alias == n else alias}
    for name, st in {**plan["students"], **more}.items():
        rows = [r for r in finals if r["arch"] == st["arch"] and r.get("name", name) in (name, st.get("alias", name))]
        s = _student(st, rows, timed_ms(lat, name, st["arch"]), budget, teacher_metric, task)
        if s is not None:
            entry["students"][name] = s
    return entry


def searched_run(root: Path, plan: dict[str, Any]) -> dict[str, Any]:
    """The search run a plan's searched student comes from (``bench_claims.py train --search-run``): its command,
    its folder, and whether that folder's ``result.json`` (committed beside the task, ``root/<run folder>``) names
    the same winner. A mismatch is an error: the row would claim an arch the search did not pick."""
    search = plan["search"]
    out = {"command": plan.get("searched_from"), "run_folder": search.get("run_folder"),
           "budget_ms": search.get("budget_ms"), "winner": search.get("winner")}
    result = root / str(search.get("run_folder")) / "result.json"
    if result.is_file():
        (w,) = json.loads(result.read_text())["winners"]
        arch = str(Arch.from_dict(w["arch"]))
        if arch != plan["students"]["searched"]["arch"]:
            raise SystemExit(f"{result} picked {arch}, but the plan's searched student is "
                             f"{plan['students']['searched']['arch']}")
        out["result"] = str(result)
    return out


def _carried(prev: dict[str, Any]) -> dict[str, Any]:
    """An entry of the earlier file, renormalised (schema 1 had no ``source`` and no ``values``-free seeds)."""
    entry = dict(prev)
    entry.setdefault("source", "an earlier run (not re-run here): " + (
        f"{prev['plan']['final']['train_total']} training examples x {prev['plan']['final']['epochs']:g} epoch(s), "
        f"init {prev['plan']['final'].get('init', 'supernet sub-network')}"))
    if "search_budget_ms" not in entry:  # schema 1: budget_ms was the search's (predicted) one
        entry["search_budget_ms"] = prev.get("budget_ms")
        entry["budget_ms"] = prev["teacher_ms"] / 3 if prev.get("teacher_ms") else None
    entry.setdefault("teacher", {"metric": prev["teacher_metric"], "measured_ms": prev.get("teacher_ms")})
    for st in entry["students"].values():
        st.setdefault("predictions", [])
        if st.get("measured_ms") is not None and entry["budget_ms"]:
            st["within_budget"] = st["measured_ms"] <= entry["budget_ms"]
    return entry


def merged(prev: dict[str, Any], new: dict[str, Any] | None, lat_path: Path) -> dict[str, Any]:
    """An earlier entry with this run's students added (e.g. a baseline the earlier run lacked) and, where this
    run timed them, every student's latency and the budget taken from this run's interleaved timing (the
    earlier students' names passed to ``measure --extra``), so the budget comparison holds on one timing run.
    Shares of the teacher stay relative to the teacher each student was distilled from."""
    entry = _carried(prev)
    entry["students"] = {k: dict(v) for k, v in entry["students"].items()}
    if new is not None:
        added = {k: dict(v, added=True) for k, v in new["students"].items()}
        entry["students"].update(added)
        old_t, new_t = entry["teacher"], new["teacher"]
        entry["added"] = {"students": sorted(added), "plan": new["plan"], "teacher": new_t,
                          "same_teacher_metric": abs((old_t.get("metric") or 0) - new_t["metric"]) < 1e-9}
        entry["source"] += "; " + ", ".join(sorted(added)) + " added by this run"
    if lat_path.is_file():
        lat = json.loads(lat_path.read_text())
        teacher_ms = lat["ms"].get("teacher")
        if teacher_ms is not None:
            entry["earlier_latency"] = {"teacher_ms": entry.get("teacher_ms"), "budget_ms": entry.get("budget_ms"),
                                        "latency": entry.get("latency"),
                                        "students_ms": {k: v.get("measured_ms") for k, v in entry["students"].items()}}
            entry["teacher_ms"] = teacher_ms
            entry["budget_ms"] = teacher_ms / 3
            entry["teacher"] = dict(entry["teacher"], measured_ms=teacher_ms)
            entry["latency"] = {k: lat.get(k) for k in ("device_id", "method")}
            for name, st in entry["students"].items():
                st["measured_ms"] = timed_ms(lat, name, st["arch"])
                st["within_budget"] = None if st["measured_ms"] is None else st["measured_ms"] <= entry["budget_ms"]
    return entry


def _unmerged(entry: dict[str, Any]) -> dict[str, Any]:
    """The earlier run's own entry back from a merged one (a report run twice merges once)."""
    if "added" not in entry:
        return entry
    base = {k: v for k, v in entry.items() if k not in ("added", "earlier_latency")}
    base["students"] = {k: dict(v) for k, v in entry["students"].items() if not v.get("added")}
    base["source"] = entry["source"].split("; ")[0]
    if "earlier_latency" in entry:
        was = entry["earlier_latency"]
        base.update(teacher_ms=was["teacher_ms"], budget_ms=was["budget_ms"], latency=was.get("latency"))
        base["teacher"] = dict(entry["teacher"], measured_ms=was["teacher_ms"])
        for name, st in base["students"].items():
            st["measured_ms"] = was["students_ms"].get(name)
    return base


def judge(task: str, entry: dict[str, Any], gold: Any) -> None:
    """Comparisons of the searched student with every other one, and claim (b) against the best hand-crafted
    student within the measured budget (by prediction when latency was not measured, said so). A student below the
    constant answer is no result: never the rival, and a searched one makes the task's claim not counted; the
    comparison that ignores the constant is kept beside it (``uncounted``) so the report can say what it changes."""
    studs = entry["students"]
    if "searched" not in studs:
        return
    a = studs["searched"]
    entry["comparisons"] = {n: compare(task, a, s, gold) for n, s in studs.items() if n != "searched"}
    hand = {n: s for n, s in studs.items() if n not in NOT_HAND and not s.get("extra")}
    measured = all(s.get("measured_ms") is not None for s in hand.values()) and a.get("measured_ms") is not None
    budget = entry.get("budget_ms") if measured else entry["plan"].get("budget_ms")

    def lat(s: dict[str, Any]) -> float:
        return s["measured_ms"] if measured else s.get("predicted_ms", float("inf"))

    within = {n: s for n, s in hand.items() if budget is not None and lat(s) <= budget}
    below = sorted(n for n, s in hand.items() if below_trivial(entry, s))
    fits = {n: s for n, s in within.items() if n not in below}  # a constant's equal is no rival
    basis = {"budget_basis": "measured" if measured else "predicted (latency not measured yet)", "budget_ms": budget,
             "searched_within_budget": lat(a) <= budget if budget else None,
             "searched_share_of_budget": lat(a) / budget if budget else None,
             **({"below_constant_answer": below} if below else {})}
    trivial = entry["teacher"].get("majority_baseline")
    if fits:
        best = max(fits, key=lambda n: fits[n]["metric_mean"])
        entry["claim_b"] = {"best_hand": best, "best_hand_arch": fits[best]["arch"], **basis,
                            **entry["comparisons"][best]}
    elif within and trivial is not None and below_trivial(entry, a) is False and a["seeds"] >= 2:
        # every hand-crafted student that fits answers worse than a constant: what a person is left with is the
        # constant answer's score, so the searched student is judged against that (the higher of the two bars)
        const = {"metric_mean": trivial, "values": [trivial] * a["seeds"], "seeds": a["seeds"]}
        entry["claim_b"] = {"best_hand": "constant answer", "best_hand_arch": None, **basis,
                            **compare(task, {**a, "predictions": []}, const, gold),
                            "rival": "the constant answer: every hand-crafted student within the budget is below it"}
    else:
        entry["claim_b"] = {"best_hand": None, **basis, "why": "no hand-crafted student within the budget"
                            + (" above the constant answer" if within else "")}
    if below_trivial(entry, a):  # the searched student answers no better than a constant: not a result
        entry["claim_b"].update(counted=False, why="the searched student is below the constant answer")
    if within and (not fits or below_trivial(entry, a)):
        any_best = max(within, key=lambda n: within[n]["metric_mean"])
        entry["claim_b"]["uncounted"] = {"best_hand": any_best, "diff": entry["comparisons"][any_best]["diff"],
                                         "verdict": entry["comparisons"][any_best]["verdict"]}


def _summary(tasks: dict[str, dict[str, Any]], apart: list[str]) -> dict[str, Any]:
    use = [t for t in CLAIM_TASKS if t in tasks and t not in apart and "searched" in tasks[t]["students"]]
    # a searched student below the constant answer is marked and never counted as a result
    below = [t for t in use if below_trivial(tasks[t], tasks[t]["students"]["searched"])]
    use = [t for t in use if t not in below]
    shares = {t: tasks[t]["students"]["searched"]["share_of_teacher"] for t in use}
    b = {t: tasks[t].get("claim_b", {}) for t in use}
    diffs = {t: v["diff"] for t, v in b.items() if "diff" in v}
    # the same average with the tasks not counted put back (what excluding them changes, said beside it)
    every = {**diffs, **{t: tasks[t]["claim_b"]["uncounted"]["diff"] for t in below
                         if "uncounted" in tasks[t].get("claim_b", {})}}
    # a searched student measured over its budget breaks the claim's premise (the same budget): said, and not met
    over = [t for t, v in b.items() if v.get("searched_within_budget") is False]
    ahead = [t for t, v in b.items() if v.get("verdict") == "ahead"]
    average = statistics.mean(diffs.values()) if diffs else None
    return {
        "tasks_in_averages": use, "reported_apart": [t for t in apart if t in tasks],
        "not_counted_below_constant_answer": below,
        "judged_by": {t: tasks[t].get("metric_name") for t in use},
        "a": {"share_of_teacher": shares, "average": statistics.mean(shares.values()) if shares else None,
              "goal": ">= 0.97 on SST-2 and on the average"},
        "b": {"diff_vs_best_hand": diffs, "average_diff": average,
              "average_diff_with_not_counted": statistics.mean(every.values()) if every else None,
              "verdicts": {t: v.get("verdict") for t, v in b.items()},
              "distinguishable_ahead": ahead, "searched_over_budget": over,
              "met": bool(average is not None and average >= 0.01 and len(ahead) >= 2 and not over),
              "goal": ">= +0.01 on the average and 'ahead' on at least two tasks, every searched student within "
                      "its measured budget"}}


def _fmt(x: float | None, scale: float = 100.0, nd: int = 2) -> str:
    return "–" if x is None else f"{scale * x:.{nd}f}"


def below_trivial(entry: dict[str, Any], student: dict[str, Any]) -> bool | None:
    """Whether a student's mean dev metric is below the task's trivial score (the constant answer); None: unknown."""
    trivial = entry["teacher"].get("majority_baseline")
    if trivial is None or student.get("metric_mean") is None:
        return None
    return bool(student["metric_mean"] < trivial)


def _shown_too(task: str, metrics: dict[str, float] | None) -> str:
    """`` (f1 84.11)``: the primary metric beside a task's GLUE mean (MRPC), empty for other tasks."""
    keys = JUDGED.get(task)
    if not keys or not metrics or keys[0] not in metrics:
        return ""
    return f" ({keys[0]} {_fmt(metrics[keys[0]])})"


def table(tasks: dict[str, dict[str, Any]]) -> str:
    """The claims table in each task's judged figure (MRPC: the mean of F1 and accuracy, F1 beside it); a student
    whose mean is below the trivial score (the best constant answer; the mean for regression) is marked "below the
    constant answer" and is never counted as a result."""
    lines = ["| task | student | arch | dev metric, mean ± std (seeds) | of teacher | measured ms | params | "
             "searched minus this one: points, searched is … (Welch over seeds; paired bootstrap over dev) |",
             "|---|---|---|---|---|---|---|---|"]
    for task, e in tasks.items():
        t = e["teacher"]
        judged = f" ({e['metric_name']})" if task in JUDGED else ""
        lines.append(f"| {task} | teacher | 6,384,12,1536 | {_fmt(t['metric'])}{judged}{_shown_too(task, t.get('metrics'))} "
                     f"| 100 % | {_fmt(t.get('measured_ms'), 1)} | 22.7 M | constant answer "
                     f"{_fmt(t.get('majority_baseline'))}{_shown_too(task, t.get('majority_baseline_metrics'))} |")
        for name, s in e["students"].items():
            mark = " **below the constant answer**" if below_trivial(e, s) else ""
            c = (e.get("comparisons") or {}).get(name)
            vs = "–" if c is None else f"{_fmt(c['diff'])}: {c['verdict']}" + (
                f"; over dev examples: {c['bootstrap']['verdict']}" if c.get("bootstrap") else "")
            over = "" if s.get("within_budget") is not False else " (over the budget)"
            lines.append(f"| {task} | {name} | {s['arch']} | {_fmt(s['metric_mean'])} ± {_fmt(s['metric_std'])} "
                         f"({s['seeds']}){_shown_too(task, s.get('metrics_mean'))}{mark} "
                         f"| {_fmt(s['share_of_teacher'], 100, 1)} % | {_fmt(s.get('measured_ms'), 1)}{over} "
                         f"| {s['params'] / 1e6:.1f} M | {vs} |")
    return "\n".join(lines)


RANK_GOAL = 0.8  # Kendall tau of a cheap score against full-set finals, on at least RANK_MIN_STUDENTS students
RANK_MIN_STUDENTS = 12


def table_from(path: Path) -> str:
    """The claims table of a written ``claims.json``, offline (no work area, no data, nothing re-run)."""
    doc = json.loads(path.read_text())
    return table(doc.get("tasks", doc) if doc.get("schema") == 2 else doc)


def rank_fidelity_entry(path: str) -> dict[str, Any]:
    """The claims record of one bench_rank_fidelity.py output: tau per cheap score, and whether the goal is met."""
    doc = json.loads(Path(path).read_text())
    methods = doc["methods"]
    taus = {m: v["kendall_tau"] for m, v in methods.items() if v.get("kendall_tau") is not None}
    best = max(taus, key=lambda m: taus[m]) if taus else None
    return {"file": path, "task": doc["task"], "students": doc["students"], "metric": doc["metric"],
            "supernet": {k: doc["supernet"].get(k) for k in ("examples", "epochs", "steps", "train_seconds",
                                                             "train_cpu_seconds", "losses")},
            "reference": doc["reference"], "methods": methods,
            "goal": f"kendall_tau >= {RANK_GOAL} on >= {RANK_MIN_STUDENTS} students",
            "best": best, "met": bool(best is not None and taus[best] >= RANK_GOAL
                                      and len(doc["students"]) >= RANK_MIN_STUDENTS)}


def _rank_list(new: list[dict[str, Any]] | None, prev: Any) -> list[dict[str, Any]]:
    """This report's rank-fidelity records, one per task; tasks not given again keep their earlier record (an
    earlier report kept a single record, not a list)."""
    earlier = [prev] if isinstance(prev, dict) else list(prev or [])
    given = {r["task"] for r in new or []}
    return [*(r for r in earlier if r.get("task") not in given), *(new or [])]


def build_report(root: Path, tasks: list[str], out: Path, *, extra: dict[str, str], apart: list[str], command: str,
                 data_dir: Path = Path("../shared/data/glue"), front: dict[str, Any] | None = None,
                 add_to_earlier: list[str] | None = None, extra_rows: dict[str, str] | None = None,
                 rank_fidelity: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    prev = json.loads(out.read_text()) if out.is_file() else {}
    prev_tasks = prev.get("tasks", prev) if prev.get("schema") == 2 else prev
    result: dict[str, dict[str, Any]] = {}
    for task in tasks:
        entry = _task_entry(root, task, extra, data_dir, extra_rows)
        if task in (add_to_earlier or []) and task in prev_tasks:
            base = _unmerged(prev_tasks[task])
            entry = merged(base, entry, root / task / "latency.json")
        if entry is None and task in prev_tasks:
            entry = _carried(prev_tasks[task])
        if entry is None:
            print(f"{task}: no plan under {root} and none in {out}")
            continue
        entry["reported_apart"] = task in apart
        if entry["teacher"].get("majority_baseline") is None:
            entry["teacher"]["majority_baseline"] = majority_baseline(task, data_dir)
        judge(task, entry, _dev_gold(task, data_dir))
        for s in entry["students"].values():
            s.pop("predictions", None)  # they stay in finals.jsonl; the summary keeps the tests' outcomes
            s["below_trivial"] = below_trivial(entry, s)
        result[task] = entry
    doc = {"schema": 2, "device_id": next((e["latency"]["device_id"] for e in result.values()
                                           if (e.get("latency") or {}).get("device_id")), None),
           "tasks": result, "claims": _summary(result, apart),
           "front": front if front is not None else prev.get("front") if prev.get("schema") == 2 else None,
           "rank_fidelity": _rank_list(rank_fidelity, prev.get("rank_fidelity")),
           "commands": sorted({*prev.get("commands", []), command}) if prev.get("schema") == 2 else [command]}
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(table(result))
    print(json.dumps(doc["claims"], indent=2))
    return doc
