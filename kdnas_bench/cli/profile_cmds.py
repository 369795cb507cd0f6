"""Verbs about measuring this device: ``space show``, ``profile``, ``measure``, ``devices``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ..errors import KdnasError
from ..paths import default_space, default_store
from ..profiling.backends import BACKENDS
from ..profiling.timing import INTERLEAVE_MODES
from ..progress import LineProgress
from ..space import SAMPLERS, SearchSpace, Shape
from ..validate import check_writable
from .common import console, err_console, positive, print_json
from .options import (
    NumberList,
    arch_option,
    backend_option,
    batch_option,
    deprecated_alias,
    json_option,
    seed_option,
    seq_option,
    space_option,
    store_option,
    threads_option,
)
from .predict_cmds import measure_speed_options, print_speed, speed_fields
from .profile_view import curve_table, dataset_summary, memory_summary
from .tables import KEY, Col, fit_table

CANARY_MODES = [*INTERLEAVE_MODES, "none"]


def load_space(path: str | None) -> SearchSpace:
    return SearchSpace.load(path or default_space())


def timing_options(f: Any) -> Any:
    f = click.option("--max-seconds", type=float, default=2.0, show_default=True, help="Cap on timed seconds per config.")(f)
    f = click.option("--min-seconds", type=float, default=0.3, show_default=True, help="Minimum timed seconds per config.")(f)
    f = click.option("--min-calls", type=int, default=10, show_default=True, help="Minimum timed calls per config.")(f)
    f = click.option("--warmup", type=int, default=5, show_default=True, help="Untimed warm-up calls.")(f)
    return f


def make_timing(warmup: int, min_calls: int, min_seconds: float, max_seconds: float) -> Any:
    from ..profiling.timing import TimingConfig

    try:
        return TimingConfig(warmup=warmup, min_calls=min_calls, min_seconds=min_seconds, max_seconds=max_seconds,
                            max_calls=max(1000, min_calls))
    except ValueError as exc:
        raise KdnasError(f"invalid timing options: {exc}") from None


def _backend(name: str, threads: int, onnx_cache: str | None = None, space: SearchSpace | None = None) -> Any:
    """A backend; with ``space``, its models get the space's ``[model]`` vocabulary size and label count."""
    from ..profiling.backends import make_backend

    opts: dict[str, Any] = {}
    if onnx_cache and BACKENDS[name].onnx:
        opts["cache_dir"] = Path(onnx_cache)
    if space is not None:
        opts |= {"vocab_size": space.vocab_size, "num_labels": space.num_labels}
    return make_backend(name, threads, **opts)


def memory_probe(name: str, threads: int, onnx_cache: str | None, wanted: bool | None,
                 space: SearchSpace | None = None) -> Any:
    """A :class:`MemoryProbe` for ``--memory`` (default: on for CPU backends where Linux's VmHWM can be reset)."""
    from ..profiling.memory import MemoryProbe, unsupported

    if wanted is False:
        return None
    reason = unsupported() if BACKENDS[name].device == "cpu" else f"--memory measures host memory; {name} runs on a GPU"
    if reason:
        if wanted:
            raise KdnasError(f"--memory: {reason}")
        return None
    opts: dict[str, Any] = {"cache_dir": onnx_cache} if onnx_cache and BACKENDS[name].onnx else {}
    if space is not None:  # the same model the profiler times (the space's vocabulary and labels)
        opts |= {"vocab_size": space.vocab_size, "num_labels": space.num_labels}
    return MemoryProbe(name, threads, opts)


def register(cli: click.Group) -> None:
    @cli.group("space")
    def space_group() -> None:
        """Inspect search spaces."""

    @space_group.command("show")
    @space_option()
    @json_option()
    def space_show(space_path: str | None, as_json: bool) -> None:
        """Print a search space and its size.

        \b
        Example:
          kdnas-bench space show --space search/spaces/bert.toml
        """
        space = load_space(space_path)
        info = space.to_dict()
        if as_json:
            print_json(info)
            return
        table = Table(title=Text(f"search space '{space.name}' ({space.source})"))
        table.add_column("dimension")
        table.add_column("values")
        for key in ("layers", "hidden", "heads", "ffn", "seq", "batch"):
            vals = info[key]
            shown = ", ".join(map(str, vals)) if len(vals) <= 12 else f"{vals[0]} … {vals[-1]} ({len(vals)} values)"
            table.add_row(key, shown)
        table.add_row("min head dim", str(space.min_head_dim))
        if space.head_dim:
            table.add_row("head dim", f"{space.head_dim} (only archs of this head size)")
        table.add_row("max tokens", f"{space.max_tokens} per forward (batch × seq)")
        console.print(table)
        console.print(
            f"{space.size:,} valid archs × {len(space.shapes)} shapes = {space.size * len(space.shapes):,} configs"
        )

    @cli.command("profile")
    @space_option()
    @backend_option("Backend to profile, from the registry.")
    @threads_option()
    @click.option("--samples", type=int, help="Run until the store holds N ok rows [default: 100 without "
                  "--minutes/--target; with them, a cap].")
    @click.option("--minutes", type=float, help="Adaptive profiling: rounds of refit + grouped CV + the configs the "
                  "predictor is least sure of, for at most N minutes (this run).")
    @click.option("--target", type=float, help="Adaptive profiling: stop when the grouped-CV share within "
                  "±10 percent reaches this, e.g. 0.95.")
    @click.option("--canary", type=click.Choice(CANARY_MODES), default="burst", show_default=True,
                  help="Time the canary (2L/256 at 1x32) with each config: in ~0.1 s back-to-back bursts, call by "
                  "call (the older protocol, biased for small configs), in short chunks, or not at all.")
    @click.option("--seqs", "seq_list", type=NumberList(int), help="Sequence lengths to profile, e.g. 32,128 "
                  "(default: the space's).")
    @click.option("--batches", "batch_list", type=NumberList(int), help="Batch sizes to profile, e.g. 1,8 "
                  "(default: the space's).")
    @deprecated_alias("--seq", "--seqs", "seq_list", NumberList(int))
    @deprecated_alias("--batch", "--batches", "batch_list", NumberList(int))
    @store_option()
    @seed_option("Seed of the config sampler.")
    @click.option("--sampler", type=click.Choice(SAMPLERS), default="sobol", show_default=True,
                  help="How configs are drawn from the space.")
    @click.option("--shapes-per-arch", type=int, default=4, show_default=True, help="Shapes measured per built arch.")
    @click.option("--onnx-cache", type=click.Path(), help="Folder for exported ONNX models.")
    @click.option("--memory/--no-memory", default=None, help="Also measure each row's peak resident memory and "
                  "weight bytes, in a fresh child process after its timing [default: on for CPU backends on Linux].")
    @timing_options
    @json_option("Print the summary as JSON.")
    def profile(space_path: str | None, backend: str, threads: int, samples: int | None, minutes: float | None,
                target: float | None, canary: str, seq_list: tuple[int, ...] | None,
                batch_list: tuple[int, ...] | None, store: str | None,
                seed: int, sampler: str, shapes_per_arch: int, onnx_cache: str | None, memory: bool | None, warmup: int,
                min_calls: int, min_seconds: float, max_seconds: float, as_json: bool) -> None:
        """Measure the latency of sampled students on this device into the profile store.

        Each config is timed interleaved with a small fixed canary, whose time in the same seconds
        tells the machine's current speed (shared VMs drift by ±20 %); predictors learn the latency
        relative to it. With --minutes or --target, profiling is adaptive: rounds of refit, CV
        grouped by arch, and the configs the predictor is least sure of; the rows-vs-accuracy curve
        is stored with the profile. Resumable: rerun the same command after an interruption.

        \b
        Examples:
          kdnas-bench profile --backend torch --threads 1 --minutes 10
          kdnas-bench profile --backend onnxruntime --threads 1 --samples 800
        """
        from ..predictors.crossval import cross_validate
        from ..profiling.adaptive import AdaptiveConfig, run_adaptive
        from ..profiling.canary import drift_summary
        from ..profiling.device import environment
        from ..profiling.runner import CampaignConfig, CampaignResult, Canary, Measurement, run_campaign
        from ..profiling.store import ProfileStore

        positive("--threads", threads)
        positive("--samples", samples)
        positive("--minutes", minutes)
        positive("--target", target)
        adaptive = minutes is not None or target is not None
        space = load_space(space_path).restrict_shapes(list(seq_list) if seq_list else None,
                                                           list(batch_list) if batch_list else None)
        timing = make_timing(warmup, min_calls, min_seconds, max_seconds)
        acfg = ccfg = None
        if adaptive:
            acfg = AdaptiveConfig(minutes=minutes, target=target, samples=samples, sampler=sampler, seed=seed,
                                  shapes_per_arch=shapes_per_arch, timing=timing)
        else:
            ccfg = CampaignConfig(samples=samples or 100, sampler=sampler, seed=seed, shapes_per_arch=shapes_per_arch,
                                  timing=timing)
        bk = _backend(backend, threads, onnx_cache, space)
        env = environment(bk.name, threads)
        store_path = check_writable("--store", Path(store) if store else default_store(writable=True))
        dataset = ProfileStore(store_path).dataset(env["device_id"], bk.name, threads)
        can = Canary(_backend(backend, threads, onnx_cache), canary) if canary != "none" else None
        probe = memory_probe(backend, threads, onnx_cache, memory, space)
        out = err_console if as_json else console
        out.print(f"device [bold]{env['device_id']}[/] ({env['cpu_model']}, {env['cores']} cores"
                  f"{', ' + env['gpu_name'] if env['gpu_name'] else ''}) · backend {bk.name} · {threads} thread(s)")
        mode = (f"adaptive ({'≤ ' + format(minutes, 'g') + ' min' if minutes else ''}"
                f"{', ' if minutes and target else ''}{'target ' + format(target, '.0%') if target else ''})"
                if adaptive else f"until {ccfg.samples if ccfg else 0} rows")
        out.print(f"store {dataset.path} · space '{space.name}' ({space.size:,} archs) · sampler {sampler}, seed {seed}"
                  f" · {mode} · canary {canary} · memory {'on' if probe else 'off'}", markup=False)
        started = time.perf_counter()
        total = samples or (ccfg.samples if ccfg else 0)
        bar_or_lines: Any = (Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TextColumn("{task.fields[noise]}"), TimeElapsedColumn(),
                                      console=out, transient=False)
                             if out.is_terminal else LineProgress("profiling"))  # a log: a line every ~15 s
        with bar_or_lines as bar:
            task = bar.add_task("profiling", total=total or None, noise="")

            def on_progress(res: CampaignResult, m: Measurement | None) -> None:
                last = ""
                if m is not None:
                    last = (f"{m.arch} {m.shape.batch}x{m.shape.seq}: "
                            + (f"{m.timing.median_ms:.2f} ms" if m.timing else "[red]failed[/]"))
                noise = f"CV {res.median_cv:.1%}" if res.cvs else ""
                drift = res.canary_drift
                if drift is not None:
                    colour = "red" if abs(drift - 1) > 0.1 else ("yellow" if abs(drift - 1) > 0.05 else "green")
                    noise += f" · speed [{colour}]{1 / drift:.2f}×[/] · flagged {res.flagged}"
                if res.curve and (res.curve[-1].get("cv_grouped_by_arch") or {}).get("within_10pct") is not None:
                    noise += f" · CV ±10 % {res.curve[-1]['cv_grouped_by_arch']['within_10pct']:.0%}"
                bar.update(task, completed=res.rows_after, noise=f"{noise} {last}")

            if acfg is not None:
                result = run_adaptive(space, dataset, bk, acfg, cross_validate=cross_validate, progress=on_progress,
                                      canary=can, memory=probe)
            else:
                assert ccfg is not None
                result = run_campaign(space, dataset, bk, ccfg, progress=on_progress, canary=can, memory=probe)
        elapsed = time.perf_counter() - started
        drift = drift_summary(dataset.read().query("status == 'ok'"))
        summary = {
            "device_id": env["device_id"], "backend": bk.name, "threads": threads, "store": str(dataset.path),
            "rows_before": result.rows_before, "rows": result.rows_after, "measured": result.measured,
            "failed": result.failed, "noisy": result.noisy, "median_cv": result.median_cv,
            "seconds": elapsed, "rows_per_minute": 60 * result.measured / elapsed if result.measured else 0.0,
            "exhausted": result.exhausted, "canary": canary, "drift_flagged_now": result.flagged, "drift": drift,
            "adaptive": adaptive, "stopped_by": result.stopped_by, "curve": result.curve if adaptive else None,
            "memory": memory_summary(dataset.read()) if probe else None,
        }
        if as_json:
            print_json(summary)
            return
        cols = [Col("device", KEY), Col("backend", KEY), Col("threads", KEY, "right"), Col("rows", 1, "right"),
                Col("measured now", 2, "right"), Col("failed", 4, "right"), Col("noisy", 5, "right"),
                Col("median CV", 3, "right"), Col("rows/min", 6, "right")]
        console.print(fit_table("profile summary", cols, [[
            env["device_id"], bk.name, str(threads), f"{result.rows_before} → {result.rows_after}", str(result.measured),
            str(result.failed), str(result.noisy), f"{result.median_cv:.2%}" if result.cvs else "-",
            f"{summary['rows_per_minute']:.1f}"]], console.width))
        if drift is not None:
            lo, hi = drift["canary_p5_p95"]
            console.print(f"drift: canary {drift['reference_canary_ms']:.2f} ms median over {drift['rows']} rows, "
                          f"CV {drift['canary_cv']:.1%}, 5-95 % range {lo:.2f}–{hi:.2f}× of it; "
                          f"{drift['flagged_rows']} row(s) flagged ({drift['flag_rule']}); predictors learn latency "
                          "relative to the canary")
        if summary["memory"]:
            m = summary["memory"]
            console.print(f"memory: {m['rows']} rows measured in fresh processes, peak {m['peak_mb_min']:.1f}–"
                          f"{m['peak_mb_max']:.1f} MiB over the bare runtime; {m['errors']} error(s); methods "
                          f"{m['methods']}")
        if adaptive and result.curve:
            console.print(curve_table(result.curve))
            console.print(f"stopped by: {result.stopped_by}")
        if result.exhausted:
            console.print("[yellow]the space has no unmeasured configs left; the store holds fewer rows than asked[/]")

    @cli.command("measure")
    @arch_option(required=True)
    @seq_option()
    @batch_option()
    @backend_option("Backend to measure on, from the registry.")
    @threads_option()
    @click.option("--onnx-cache", type=click.Path(), help="Folder for exported ONNX models.")
    @click.option("--memory/--no-memory", default=None, help="Also measure the peak resident memory of a forward "
                  "pass and the weight bytes (a fresh child process) [default: off].")
    @measure_speed_options
    @timing_options
    @json_option()
    def measure_cmd(arch: Any, seq: int, batch: int, backend: str, threads: int, onnx_cache: str | None,
                    memory: bool | None, speed: bool, predictors_dir: str | None,
                    warmup: int, min_calls: int, min_seconds: float, max_seconds: float, as_json: bool) -> None:
        """Measure one student at one shape on this device, now, with the machine's speed factor (×1.10: 10 % slower
        than its profile's reference) and the median at the reference speed.

        \b
        Example:
          kdnas-bench measure --arch 4,312,12,1200 --seq 128 --batch 1 --json
        """
        from ..models import count_params, flops
        from ..profiling.device import environment
        from ..profiling.runner import Canary, measure

        a = arch
        positive("--seq", seq)
        positive("--batch", batch)
        positive("--threads", threads)
        shape = Shape(batch, seq)
        if seq > 512:
            raise KdnasError(f"--seq {seq} exceeds BERT's 512 positions")
        bk = _backend(backend, threads, onnx_cache)
        env = environment(bk.name, threads)
        probe = memory_probe(backend, threads, onnx_cache, True) if memory else None
        can = Canary(_backend(backend, threads, onnx_cache)) if speed else None
        m = measure(bk, a, shape, make_timing(warmup, min_calls, min_seconds, max_seconds), canary=can, memory=probe)
        for done in (x for x in (bk, can, probe) if x is not None):
            done.close()
        if m.timing is None:
            raise KdnasError(f"measuring {a} at {batch}x{seq} on {bk.name} failed: {m.error}")
        out: dict[str, Any] = {
            "arch": a.to_dict(), "seq": seq, "batch": batch, "backend": bk.name, "threads": threads,
            "device_id": env["device_id"], **m.timing.stats(), "params": count_params(a),
            "flops": flops(a, shape).total, "load_before": m.load_before, "load_after": m.load_after,
            **speed_fields(m.canary_ms, m.timing.median_ms, env["device_id"], bk.name, threads, predictors_dir),
        }
        if memory:
            from ..profiling.memory import METHOD

            out |= {**(m.memory.to_row() if m.memory else {}), "memory_error": m.memory_error,
                    "memory_method": METHOD if m.memory else None}
        if as_json:
            print_json(out)
            return
        table = Table(title=f"{a} · batch {batch} × seq {seq} · {bk.name} · {threads} thread(s) · {env['device_id']}")
        for col in ("median ms", "mean ms", "p90 ms", "p99 ms", "CV", "IQR/median", "n", "noisy"):
            table.add_column(col)
        t = m.timing
        table.add_row(f"{t.median_ms:.3f}", f"{t.mean_ms:.3f}", f"{t.p90_ms:.3f}", f"{t.p99_ms:.3f}", f"{t.cv:.2%}",
                      f"{t.iqr_ratio:.2%}", str(t.n), "yes" if t.noisy else "no")
        console.print(table)
        print_speed(out)
        if m.memory is not None:
            r = m.memory
            from ..profiling.memory import METHOD, method_label

            console.print(f"memory: peak {r.peak_rss_bytes / 2**20:.1f} MiB over the bare runtime (model "
                          f"{r.model_rss_bytes / 2**20:.1f} + forward pass {r.forward_rss_bytes / 2**20:.1f}); weights "
                          f"{r.weight_bytes / 2**20:.1f} MiB; {method_label(METHOD)}", markup=False)
        elif memory:
            console.print(f"memory: not measured ({m.memory_error})", markup=False)

    @cli.command("devices")
    @store_option()
    @json_option()
    def devices(store: str | None, as_json: bool) -> None:
        """List the profiled devices and backends in a store.

        \b
        Example:
          kdnas-bench devices --json
        """
        from ..profiling.store import ProfileStore

        entries = [dataset_summary(d) for d in ProfileStore(Path(store) if store else default_store()).datasets()]
        if as_json:
            print_json(entries)
            return
        cols = [Col("device_id", KEY), Col("backend", KEY), Col("threads", KEY, "right"), Col("rows", 1, "right"),
                Col("failed", 4, "right"), Col("median CV", 2, "right"), Col("canary CV · flagged", 5),
                Col("first", 6), Col("last", 3), Col("cpu / gpu", 7)]
        rows = []
        for e in entries:
            env = e["environment"] or {}
            rows.append([e["device_id"], e["backend"], str(e["threads"]), str(e["rows"]), str(e["failed_rows"]),
                         f"{e['median_cv']:.2%}" if e["median_cv"] is not None else "-",
                         f"{e['drift']['canary_cv']:.1%} · {e['drift']['flagged_rows']}" if e["drift"] else "no canary",
                         str(e["first_timestamp"])[:10], str(e["last_timestamp"])[:10],
                         str(env.get("gpu_name") or env.get("cpu_model", ""))])
        console.print(fit_table("profiled devices", cols, rows, console.width))
        if not entries:
            console.print("no profiles yet: run `kdnas-bench profile`")
