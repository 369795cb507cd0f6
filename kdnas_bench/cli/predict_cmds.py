"""Verbs about latency predictors: ``fit``, ``predict``, ``predictors``.

Thin: parse, call :mod:`kdnas_bench.predictors`, render. The predict path imports no torch, so
``kdnas-bench predict`` on 100,000 configs returns in a few seconds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from ..errors import KdnasError
from ..predictors.transfer_methods import AUTO, TRANSFER_METHODS
from ..profiling.backends import BACKENDS
from ..space import arch_text
from ..validate import check_writable
from .common import console, err_console, positive, print_json
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
SPEED_CHOICES = ("reference", "now")  # kdnas_bench.predictors.lookup.SPEEDS, without importing pandas at start-up


def _memory_lines(memory: dict[str, Any]) -> None:
    from ..profiling.memory import method_label

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


def calibrate(predictor: Any, speed: str, out: Any) -> Any:
    """The predictor at ``speed`` (``now``: the canary timed here, the factor printed on ``out``)."""
    if speed != "now":
        return predictor
    with out.status("timing the canary for the machine's speed now (~3 s)…"):
        predictor = predictor.at_speed_now()
    cal = predictor.calibration
    out.print(cal.describe(), markup=False, highlight=False)
    if cal.note:
        out.print(f"[yellow]note:[/] {escape(cal.note)}", highlight=False)
    return predictor


def speed_fields(canary_ms: float | None, median_ms: float, device_id: str, backend: str, threads: int,
                 predictors_dir: str | None) -> dict[str, Any]:
    """``canary_ms`` and, when this device has a canary-normalised predictor, ``speed_factor`` (canary over its
    reference), ``speed_reference_ms`` and ``at_reference_ms`` (the median at the reference speed)."""
    if canary_ms is None:
        return {}
    from ..predictors.calibrate import reference_of
    from ..predictors.registry import load_predictor

    try:
        pred = load_predictor(device_id, backend, threads, root=Path(predictors_dir) if predictors_dir else None)
        ref = reference_of(pred.meta, "its predictor")
    except KdnasError as exc:
        return {"canary_ms": canary_ms, "speed_factor": None, "speed_note": f"no speed factor: {exc}"}
    factor = canary_ms / ref
    from ..predictors.identity import speed_warning, warn_once

    warn_once(pred.key, "speed", speed_warning(pred.key, pred.meta, factor))
    return {"canary_ms": canary_ms, "speed_factor": factor, "speed_reference_ms": ref,
            "at_reference_ms": median_ms / factor}


def print_speed(out: dict[str, Any]) -> None:
    """The speed factor line of `kdnas-bench measure`."""
    if out.get("speed_factor") is not None:
        console.print(f"speed factor ×{out['speed_factor']:.3f} (canary {out['canary_ms']:.3f} ms vs "
                      f"{out['speed_reference_ms']:.3f} ms, the reference of this device's predictor): at the "
                      f"reference speed this is {out['at_reference_ms']:.3f} ms", highlight=False, markup=False)
    elif out.get("canary_ms") is not None:
        console.print(f"canary {out['canary_ms']:.3f} ms in the same seconds ({out['speed_note']})", highlight=False,
                      markup=False)


def _load_configs(path: str) -> list[Any]:
    from ..filechecks import read_configs_file

    return read_configs_file(Path(path))


def register(cli: click.Group) -> None:
    @cli.command("fit")
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
        from ..paths import default_predictors
        from ..predictors.io import PredictorKey
        from ..predictors.registry import fit_and_save

        positive("--threads", threads)
        positive("--samples", samples)
        positive("--from-threads", from_threads)
        positive("--max-load", max_load)
        positive("--reference-ms", reference_ms)
        if reference_ms is not None and drift == "none":
            raise KdnasError("--reference-ms goes with --drift canary")
        if all_rows and max_load is not None:
            raise KdnasError("--all-rows and --max-load exclude each other")
        load_limit: float | str | None = None if all_rows else (max_load if max_load is not None else "auto")
        from_key = None
        if from_device is not None:
            from_key = PredictorKey(from_device, from_backend or backend, from_threads or threads)
            target = out or default_predictors(writable=True)
            same_root = Path(source_root or target).resolve() == Path(target).resolve()
            if from_key == PredictorKey(device_id, backend, threads) and same_root:
                # recalibrating a predictor to fresh rows of its own device is fine, but not in place
                raise KdnasError("--from-device/--from-backend/--from-threads name the dataset being fitted "
                                 "(to recalibrate it on fresh rows, write to another --out)")
        elif from_backend or from_threads:
            raise KdnasError("--from-backend and --from-threads need --from-device")
        check_writable("--out", out or default_predictors(writable=True))
        if memory_only:
            from ..predictors.registry import fit_memory_only

            folder, mem = fit_memory_only(device_id, backend, threads, store=Path(store) if store else None,
                                          out=Path(out) if out else None, seed=seed)
            if as_json:
                print_json({**mem, "path": str(folder)})
                return
            _memory_lines(mem)
            console.print(f"saved {folder / 'memory.json'}", markup=False)
            return
        status = err_console if as_json else console
        with status.status("fitting (held-out split, 5-fold CV, final fit)…"):
            folder, meta = fit_and_save(
                device_id, backend, threads, store=Path(store) if store else None, out=Path(out) if out else None,
                from_key=from_key, samples=samples, source_root=Path(source_root) if source_root else None, seed=seed,
                max_load=load_limit, method=transfer_method, drift=drift, reference_ms=reference_ms,
            )
        if as_json:
            print_json({**meta, "path": str(folder)})
            return
        kind = "from scratch" if meta["transfer"] is None else (
            f"transfer from {from_key} ({meta['transfer']['method']}, K={meta['transfer']['samples']})")
        console.print(_metrics_table(f"{device_id} · {backend} · {threads} thread(s) · {meta['rows']} rows · {kind}",
                                     meta["metrics"], meta["interval"]))
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
        console.print(f"saved {folder}", markup=False)

    @cli.command("predict")
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
        from ..predictors.registry import load_predictor

        positive("--threads", threads)
        positive("--seq", seq)
        positive("--batch", batch)
        if bool(arch) == (configs_path is not None):
            raise KdnasError("give either --arch L,H,A,FFN (with --seq and --batch), or --configs FILE.json")
        if arch:
            configs: list[Any] = [{**a.to_dict(), "seq": seq, "batch": batch} for a in arch]
        else:
            given = click.core.ParameterSource.COMMANDLINE
            if given in (ctx.get_parameter_source("seq"), ctx.get_parameter_source("batch")):
                raise KdnasError("--seq and --batch go with --arch; put them in the configs file instead")
            configs = _load_configs(str(configs_path))
        predictor = load_predictor(device_id, backend, threads, root=Path(root) if root else None)
        predictor = calibrate(predictor, speed, err_console if as_json else console)
        frame = predictor.frame(configs)
        n_out = int(frame["out_of_range"].sum())
        if n_out:
            ranges = predictor.model.ranges_
            shown = ", ".join(f"{k} {int(ranges[k][0])}-{int(ranges[k][1])}"
                              for k in ("layers", "hidden", "heads", "ffn", "seq", "batch", "tokens"))
            err_console.print(f"[yellow]warning:[/] {n_out} of {len(frame)} config(s) outside the training ranges "
                              f"({shown}); their predictions are extrapolations", highlight=False)
        if as_json:
            if len(frame) > 1000 and math.isfinite(predictor.model.q_):  # pandas writes 100,000 rows in 0.2 s
                click.echo(frame.to_json(orient="records", double_precision=6))
            else:
                print_json(frame.to_dict("records"))
            return
        records = frame.head(MAX_TABLE_ROWS).to_dict("records")
        k = predictor.key
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

    @cli.command("predictors")
    @predictors_option(dest="root")
    @store_option("Profile store with the devices' noise floors (default: the checkout's profiles/).")
    @json_option()
    def predictors_cmd(root: str | None, store: str | None, as_json: bool) -> None:
        """List the fitted predictors with their held-out accuracy, interval coverage and the device's
        noise floor (re-measured rows within ±5 % / ±10 %, from `kdnas-bench remeasure`): a predictor
        cannot be checked more finely than its device repeats itself.

        \b
        Example:
          kdnas-bench predictors --json
        """
        from ..predictors.registry import list_predictors

        entries = list_predictors(Path(root) if root else None, Path(store) if store else None)
        if as_json:
            print_json(entries)
            return
        cols = [Col("device_id", KEY), Col("backend", KEY), Col("threads", KEY, "right"), Col("rows", 3, "right"),
                Col("type", 4), Col("±5 %", 6, "right"), Col("±10 %", 1, "right"), Col("±15 %", 8, "right"),
                Col("MAPE", 2, "right"), Col("τ", 9, "right"), Col("interval cover", 5, "right"),
                Col("floor ±5 / ±10 %", 7, "right"), Col("memory ±10 %", 10, "right")]
        rows = []
        for e in entries:
            m = e["metrics"] or {}
            rows.append([e["device_id"], e["backend"], str(e["threads"]), str(e["rows"]),
                         str(e.get("type") or f"error: {e.get('error')}"), _pct(m.get("within_5pct")),
                         _pct(m.get("within_10pct")), _pct(m.get("within_15pct")), _pct(m.get("mape")),
                         f"{m['kendall_tau']:.3f}" if m.get("kendall_tau") is not None else "-",
                         _pct(m.get("interval_coverage")), _floor_cell(e.get("floor"), e.get("drift")),
                         _pct(e.get("memory_within_10pct"))
                         + (f" (m{e['memory_method']})" if e.get("memory_method") else "")])
        console.print(fit_table("fitted latency predictors (held-out metrics)", cols, rows, console.width))
        console.print("floor: stored rows measured again later (`kdnas-bench remeasure`), within ±5 / ±10 % — "
                      "drift-normalised for predictors fitted on canary-normalised rows, raw otherwise; memory: "
                      "(mN) the measuring method of its rows (1: VmRSS/VmHWM incl. library pages, 2: anonymous only)")
        if not entries:
            console.print("no fitted predictors: run `kdnas-bench fit --device ID --backend B`")
