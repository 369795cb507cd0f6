"""Verbs about latency predictors: ``fit``, ``predict``, ``predictors``.

Thin: parse options into a typed request (:mod:`kdnas_bench.predictors.requests`), call
:mod:`kdnas_bench.predictors.jobs`, render. The predict path imports no torch, so ``kdnas-bench predict`` on
100,000 configs returns in a few seconds.
"""

from __future__ import annotations

import math
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..predictors.requests import SPEEDS, FitRequest, PredictorsRequest, PredictRequest
from ..predictors.transfer_methods import AUTO, TRANSFER_METHODS
from ..profiling.backends import BACKENDS
from ..profiling.memory import method_label
from ..space import arch_text
from .common import console, err_console, print_json
from .options import (
    THREADS,
    RegistryChoice,
    arch_option,
    backend_option,
    batch_option,
    device_option,
    json_option,
    predictors_option,
    seed_option,
    seq_option,
    store_option,
    threads_option,
)
from .tables import KEY, Col, fit_table

MAX_TABLE_ROWS = 25
SPEED_CHOICES = SPEEDS  # kdnas_bench.predictors.lookup.SPEEDS, without importing pandas at start-up


def _memory_lines(memory: dict[str, Any]) -> None:
    for target, m in memory.items():
        h = m["heldout"]
        console.print(f"memory model ({target}, analytic, {m['rows']} rows, {m['archs']} archs): held-out archs "
                      f"within ±5 / ±10 %: {h['within_5pct']:.1%} / {h['within_10pct']:.1%}, MAPE {h['mape']:.1%}",
                      markup=False)
    if memory:
        m = next(iter(memory.values()))
        left = m.get("rows_other_methods") or {}
        console.print(f"memory measured with {method_label(m.get('method', 1))}"
                      + (f"; rows of other methods left out: {left}" if left else ""), markup=False)


def _pct(v: Any) -> str:
    return f"{v:.1%}" if isinstance(v, int | float) and math.isfinite(v) else "-"


def _metrics_table(title: str, metrics: dict[str, Any], interval: dict[str, Any]) -> Table:
    table = Table(title=title)
    for col in ("split", "rows", "±5 %", "±10 %", "±15 %", "MAPE", "RMSPE", "RMSE ms", "Kendall τ", "interval cover"):
        table.add_column(col, justify="right")
    names = {"cv": "k-fold CV", "heldout": "held-out", "loaded_rows": "loaded rows*"}
    for split, name in names.items():
        m = metrics.get(split)
        if not m:
            continue
        table.add_row(name, str(m["rows"]), _pct(m["within_5pct"]), _pct(m["within_10pct"]), _pct(m["within_15pct"]),
                      _pct(m["mape"]), _pct(m["rmspe"]), f"{m['rmse_ms']:.2f}", f"{m['kendall_tau']:.3f}",
                      _pct(m.get("interval_coverage")))
    table.caption = (f"interval: mid ×/÷ {interval['factor']:.3f} (nominal {interval['nominal']:.0%}, "
                     f"{interval['method']})")
    return table


def _floor_cell(floor: dict[str, Any] | None, drift: str | None) -> str:
    if not floor:
        return "-"
    a = floor.get("normalised") if drift == "canary" and floor.get("normalised") else floor.get("raw")
    return f"{_pct(a.get('within_5pct'))} / {_pct(a.get('within_10pct'))}" if a else "-"


def speed_option(f: Any) -> Any:
    """``--speed reference|now``: predictions at the profile's reference speed, or this machine's now."""
    return click.option("--speed", type=click.Choice(SPEED_CHOICES), default="reference", show_default=True,
                        help="Latencies at the profile's reference speed, or at this machine's speed now (times the "
                        "canary for ~3 s; only on the predictor's device).")(f)


def measure_speed_options(f: Any) -> Any:
    """``measure --speed-factor/--no-speed-factor --predictors DIR``: the speed factor beside the median."""
    f = predictors_option("Predictor folder for the speed factor's reference (default: the checkout's predictors/).")(f)
    return click.option("--speed-factor/--no-speed-factor", "speed", default=True, show_default=True,
                        help="Time the canary in bursts with it: speed factor = canary / the reference of this "
                        "device's predictor (in --predictors).")(f)


def print_calibration(cal: Any, out: Console) -> None:
    """The speed-now lines: the factor and its uncertainty, and a note when the factor is approximate."""
    out.print(cal.describe(), markup=False, highlight=False)
    if cal.note:
        out.print(f"[yellow]note:[/] {escape(cal.note)}", highlight=False)


def calibrate(predictor: Any, speed: str, out: Any) -> Any:
    """The predictor at ``speed`` (``now``: the canary timed here, the factor printed on ``out``)."""
    if speed != "now":
        return predictor
    with out.status("timing the canary for the machine's speed now (~3 s)…"):
        predictor = predictor.at_speed_now()
    print_calibration(predictor.calibration, out)
    return predictor


def speed_fields(canary_ms: float | None, median_ms: float, device_id: str, backend: str, threads: int,
                 predictors_dir: str | None) -> dict[str, Any]:
    """``canary_ms`` and, when this device has a canary-normalised predictor, ``speed_factor`` (canary over its
    reference), ``speed_reference_ms`` and ``at_reference_ms``
    (:func:`kdnas_bench.predictors.profile_jobs.speed_fields`)."""
    from ..predictors.profile_jobs import speed_fields as fields  # noqa: PLC0415  lazy: pandas, LightGBM

    return fields(canary_ms, median_ms, device_id, backend, threads, predictors_dir)


def print_speed(out: dict[str, Any]) -> None:
    """The speed factor line of `kdnas-bench measure`."""
    if out.get("speed_factor") is not None:
        console.print(f"speed factor ×{out['speed_factor']:.3f} (canary {out['canary_ms']:.3f} ms vs "
                      f"{out['speed_reference_ms']:.3f} ms, the reference of this device's predictor): at the "
                      f"reference speed this is {out['at_reference_ms']:.3f} ms", highlight=False, markup=False)
    elif out.get("canary_ms") is not None:
        console.print(f"canary {out['canary_ms']:.3f} ms in the same seconds ({out['speed_note']})", highlight=False,
                      markup=False)


@click.command("fit")
@device_option("Device id of the profile dataset (see `kdnas-bench devices`).")
@backend_option("Backend of the profile dataset, from the registry.")
@threads_option("Threads of the profile dataset.")
@store_option()
@click.option("--out", type=click.Path(), help="Predictor folder to write into (default: the checkout's predictors/).")
@click.option("--from-device", help="Few-shot transfer: start from this device's predictor.")
@click.option("--from-backend", type=RegistryChoice(BACKENDS), help="Backend of the source predictor (default: --backend).")
@click.option("--from-threads", type=THREADS, help="Threads of the source predictor (default: --threads).")
@click.option("--samples", type=int, help="Rows of the target to fit on (transfer: K; otherwise a random subset).")
@click.option("--predictors", "source_root", type=click.Path(), help="Where the source predictor is (default: --out).")
@click.option("--transfer-method", type=RegistryChoice(TRANSFER_METHODS, extra=(AUTO,)),
              default="rebase", show_default=True, help="How the source is recalibrated (with --from-device).")
@click.option("--max-load", type=float, help="Fit on rows measured at this load average or less "
              "[default: threads + 0.75, the profiler alone; GPU backends: host cores - 1].")
@click.option("--all-rows", is_flag=True, help="Fit on every row, also those measured on a loaded machine.")
@click.option("--drift", type=click.Choice(["canary", "none"]), default="canary", show_default=True,
              help="Learn latency relative to the canary timed with each row (at the dataset's reference speed), "
              "or the raw medians.")
@click.option("--reference-ms", type=float, help="Reference canary time the predictions are at [default: the "
              "rows' median canary]; pass a quiet profile's (its meta.json drift.reference_canary_ms) to fit "
              "rows measured on a busy machine at the device's quiet speed.")
@seed_option("Seed of the held-out split, CV folds and LightGBM.")
@json_option("Print the metadata written as JSON.")
@click.option("--memory-only", is_flag=True, help="Fit only the memory model (memory.json) of an existing "
              "predictor from the rows that carry memory, leaving its latency model as it is.")
def fit_cmd(device_id: str, backend: str, threads: int, store: str | None, out: str | None,
            from_device: str | None, from_backend: str | None, from_threads: int | None, samples: int | None,
            source_root: str | None, transfer_method: str, max_load: float | None, all_rows: bool, drift: str,
            reference_ms: float | None, seed: int, as_json: bool, memory_only: bool) -> None:
    """Fit the latency predictor of one profile dataset, evaluate it and save it.

    Held-out split (20 %) and 5-fold CV metrics, and the measured coverage of the 90 % interval,
    are printed and stored in meta.json next to the LightGBM model. Rows measured while other
    processes loaded the machine (load average above --max-load) are left out of fitting and
    reported apart ("loaded rows").

    \b
    Examples:
      kdnas-bench fit --device intel-xeon-processor-2c-cfff2f --backend torch --threads 1
      kdnas-bench fit --device intel-xeon-processor-2c-cfff2f --backend onnxruntime \\
          --from-device intel-xeon-processor-2c-cfff2f --from-backend torch --samples 30
    """
    from ..predictors.jobs import run_fit  # noqa: PLC0415  lazy: pandas, LightGBM

    req = FitRequest(device_id=device_id, backend=backend, threads=threads, store=store, out=out,
                     from_device=from_device, from_backend=from_backend, from_threads=from_threads, samples=samples,
                     source_root=source_root, transfer_method=transfer_method, max_load=max_load, all_rows=all_rows,
                     drift=drift, reference_ms=reference_ms, seed=seed, memory_only=memory_only)
    result = run_fit(req, _Spinner(err_console if as_json else console,
                                   "fitting (held-out split, 5-fold CV, final fit)…").on_event)
    if as_json:
        print_json(result.to_json())
    elif result.memory_only:
        _memory_lines(result.meta)
        console.print(f"saved {result.folder / 'memory.json'}", markup=False)
    else:
        _fit_lines(req, result)


class _Spinner:
    """A status line on ``out`` from a ``fitting``/``calibrating`` event until its end event."""

    def __init__(self, out: Console, text: str) -> None:
        self.out, self.text = out, text
        self.status: Any = None

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind in ("fitting", "calibrating"):
            self.status = self.out.status(self.text)
            self.status.start()
        elif kind in ("fitted", "calibrating_done") and self.status is not None:
            self.status.stop()
            self.status = None


def _fit_lines(req: FitRequest, result: Any) -> None:
    """``fit``'s metrics table, its row selection and drift lines, the memory model and where it was saved."""
    meta = result.meta
    kind = "from scratch" if meta["transfer"] is None else (
        f"transfer from {result.source} ({meta['transfer']['method']}, K={meta['transfer']['samples']})")
    console.print(_metrics_table(f"{req.device_id} · {req.backend} · {req.threads} thread(s) · {meta['rows']} rows · "
                                 f"{kind}", meta["metrics"], meta["interval"]))
    sel = meta["data"]["selection"]
    if sel["max_load"] is not None:
        console.print(f"rows: {sel['rows_quiet']} of {sel['rows_total']} measured at load average ≤ "
                      f"{sel['max_load']:.2f}; *{sel['rows_loaded']} loaded rows were left out of fitting "
                      "(predicted by the held-out model)")
    elif sel["rule"].startswith("all rows: only"):
        console.print(f"[yellow]rows: {sel['rule']}; fitted on every row, so the figures include the slowdown "
                      "and noise of a loaded machine[/]")
    d = meta.get("drift") or {}
    if d.get("mode") == "canary":
        console.print(f"drift: {d['rows_normalised']} rows normalised to the reference canary speed "
                      f"({d['reference_canary_ms']:.3f} ms); predictions are at that speed")
    _memory_lines(meta.get("memory") or {})
    if meta.get("memory_note"):
        console.print(f"[yellow]{escape(meta['memory_note'])}[/]")
    console.print(f"saved {result.folder}", markup=False)


@click.command("predict")
@device_option()
@backend_option("Backend of the predictor, from the registry.")
@threads_option("Threads of the predictor.")
@arch_option("Student(s): L,H,A,FFN (e.g. 4,312,12,1200), 4L-312H-12A-1200F, a name (tinybert-4l) or a saved "
             "model folder; repeat for several.", multiple=True)
@seq_option("Sequence length (with --arch).")
@batch_option("Batch size (with --arch).")
@click.option("--configs", "configs_path", type=click.Path(),
              help="JSON list of objects with layers, hidden, heads, ffn, seq, batch.")
@predictors_option(dest="root")
@speed_option
@json_option("Print a JSON list, in input order.")
@click.pass_context
def predict_cmd(ctx: click.Context, device_id: str, backend: str, threads: int, arch: tuple[Any, ...], seq: int,
                batch: int, configs_path: str | None, root: str | None, speed: str, as_json: bool) -> None:
    """Predict latency (median, with a 90 % interval) of configs on a device, without measuring.

    Latencies are at the speed of the device's profile; with --speed now (on that device), the canary is
    timed for ~3 s and they are scaled to this machine's speed now (factor and uncertainty printed, and
    in --json as speed_factor / speed_factor_rel_sd; the interval widens with the uncertainty).

    \b
    Examples:
      kdnas-bench predict --device intel-xeon-processor-2c-cfff2f --backend torch \\
          --arch 4,312,12,1200 --seq 128 --batch 1
      kdnas-bench predict --device intel-xeon-processor-2c-cfff2f --backend torch --configs configs.json --json
    """
    from ..predictors.jobs import run_predict  # noqa: PLC0415  lazy: pandas, LightGBM

    def given(name: str, value: int) -> int | None:  # --seq/--batch: taken with --arch, refused with --configs
        return value if arch or ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE else None

    req = PredictRequest(device_id=device_id, backend=backend, threads=threads, archs=tuple(arch),
                         seq=given("seq", seq), batch=given("batch", batch), configs=configs_path, predictors=root,
                         speed=speed)
    out = err_console if as_json else console
    result = run_predict(req, _PredictEvents(out).on_event)
    frame = result.frame
    if as_json:
        if len(frame) > 1000 and math.isfinite(result.predictor.model.q_):  # pandas writes 100,000 rows in 0.2 s
            click.echo(frame.to_json(orient="records", double_precision=6))
        else:
            print_json(frame.to_dict("records"))
        return
    _predict_table(result)


class _PredictEvents:
    """``predict``'s events on ``out``: the canary spinner and the factor, and the out-of-range warning (stderr)."""

    def __init__(self, out: Console) -> None:
        self.out = out
        self.spinner = _Spinner(out, "timing the canary for the machine's speed now (~3 s)…")

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        self.spinner.on_event(kind, data)
        if kind == "calibrated":
            print_calibration(data["calibration"], self.out)
        elif kind == "out_of_range":
            shown = ", ".join(f"{k} {lo}-{hi}" for k, (lo, hi) in data["ranges"].items())
            err_console.print(f"[yellow]warning:[/] {data['count']} of {data['total']} config(s) outside the training "
                              f"ranges ({shown}); their predictions are extrapolations", highlight=False)


def _predict_table(result: Any) -> None:
    frame = result.frame
    records = frame.head(MAX_TABLE_ROWS).to_dict("records")
    k = result.predictor.key
    console.print(f"predicted latency on {k.device_id} · {k.backend} · {k.threads} thread(s)", markup=False,
                  highlight=False, soft_wrap=True)
    cols = [Col("arch", KEY), Col("seq", KEY, "right"), Col("batch", KEY, "right"), Col("ms", KEY, "right"),
            Col("90 % interval", 1, "right"), Col("in range", 2)]
    rows = [[arch_text(r), str(r["seq"]), str(r["batch"]),
             f"{r['latency_ms']:.2f}", f"{r['latency_ms_low']:.2f} – {r['latency_ms_high']:.2f}",
             "no" if r["out_of_range"] else "yes"] for r in records]
    console.print(fit_table(None, cols, rows, console.width))
    if len(frame) > MAX_TABLE_ROWS:
        console.print(f"… {len(frame) - MAX_TABLE_ROWS:,} more; use --json for all")


@click.command("predictors")
@predictors_option(dest="root")
@store_option("Profile store with the devices' noise floors (default: the checkout's profiles/).")
@json_option()
def predictors_cmd(root: str | None, store: str | None, as_json: bool) -> None:
    """List the fitted predictors with their held-out accuracy, interval coverage, the device's
    noise floor (re-measured rows within ±5 % / ±10 %, from `kdnas-bench remeasure`): a predictor
    cannot be checked more finely than its device repeats itself; and whether it answers
    `predict --speed now` (only a predictor fitted on canary-normalised rows does, on its own device).

    \b
    Example:
      kdnas-bench predictors --json
    """
    from ..predictors.jobs import list_predictor_entries  # noqa: PLC0415  lazy: pandas, LightGBM

    entries = list_predictor_entries(PredictorsRequest(predictors=root, store=store))
    if as_json:
        print_json(entries)
        return
    console.print(fit_table("fitted latency predictors (held-out metrics)", PREDICTOR_COLS,
                            [_predictor_row(e) for e in entries], console.width))
    console.print("floor: stored rows measured again later (`kdnas-bench remeasure`), within ±5 / ±10 % — "
                  "drift-normalised for predictors fitted on canary-normalised rows, raw otherwise; memory: "
                  "(mN) the measuring method of its rows (1: VmRSS/VmHWM incl. library pages, 2: anonymous only)")
    if any(not e["speed_now"]["available"] for e in entries):
        console.print(SPEED_NOW_NOTE)
    if not entries:
        console.print("no fitted predictors: run `kdnas-bench fit --device ID --backend B`")


PREDICTOR_COLS = [Col("device_id", KEY), Col("backend", KEY), Col("threads", KEY, "right"), Col("rows", 3, "right"),
                  Col("type", 4), Col("±5 %", 6, "right"), Col("±10 %", 1, "right"), Col("±15 %", 8, "right"),
                  Col("MAPE", 2, "right"), Col("τ", 9, "right"), Col("interval cover", 5, "right"),
                  Col("floor ±5 / ±10 %", 7, "right"), Col("memory ±10 %", 10, "right"), Col("speed\nnow", 1)]
SPEED_NOW_NOTE = ("speed now: whether `predict --speed now` can scale its predictions to the machine's speed now "
                  "(on its own device); no: fitted on raw medians (no canary reference) — on that machine run "
                  "`kdnas-bench profile --backend B --threads T` (the canary is on by default), then `kdnas-bench fit "
                  "--device ID --backend B --threads T` (`kdnas-bench predictors --json` gives each one's commands)")


def _predictor_row(e: dict[str, Any]) -> list[str]:
    m = e["metrics"] or {}
    return [e["device_id"], e["backend"], str(e["threads"]), str(e["rows"]),
            str(e.get("type") or f"error: {e.get('error')}"), _pct(m.get("within_5pct")),
            _pct(m.get("within_10pct")), _pct(m.get("within_15pct")), _pct(m.get("mape")),
            f"{m['kendall_tau']:.3f}" if m.get("kendall_tau") is not None else "-",
            _pct(m.get("interval_coverage")), _floor_cell(e.get("floor"), e.get("drift")),
            _pct(e.get("memory_within_10pct")) + (f" (m{e['memory_method']})" if e.get("memory_method") else ""),
            "yes" if e["speed_now"]["available"] else "no"]


def register(cli: click.Group) -> None:
    for command in (fit_cmd, predict_cmd, predictors_cmd):
        cli.add_command(command)
