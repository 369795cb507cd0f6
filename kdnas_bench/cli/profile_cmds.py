"""Verbs about measuring this device: ``space show``, ``profile``, ``measure``, ``devices``.

Each command parses its options into a typed request (:mod:`kdnas_bench.profiling.requests`), calls the library
(:mod:`kdnas_bench.profiling.jobs`, :mod:`kdnas_bench.predictors.profile_jobs`) and renders what it returns."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import click
from rich.table import Table

from ..profiling.memory import METHOD, method_label
from ..profiling.requests import CANARY_MODES as _CANARY_MODES
from ..profiling.requests import (
    DevicesRequest,
    MeasureRequest,
    ProfileRequest,
    SpaceShowRequest,
    TimingOptions,
    build_backend,
    make_timing,
)
from ..profiling.requests import load_space as load_space
from ..profiling.requests import memory_probe as memory_probe
from ..space import SAMPLERS
from .common import console, err_console, print_json
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
from .predict_cmds import measure_speed_options, print_speed
from .profile_view import ProfileProgress, devices_table, print_profile_summary, space_table

CANARY_MODES = list(_CANARY_MODES)
__all__ = ["CANARY_MODES", "load_space", "make_timing", "memory_probe", "register", "timing_options"]


def timing_options(f: Any) -> Any:
    f = click.option("--max-seconds", type=float, default=2.0, show_default=True, help="Cap on timed seconds per config.")(f)
    f = click.option("--min-seconds", type=float, default=0.3, show_default=True, help="Minimum timed seconds per config.")(f)
    f = click.option("--min-calls", type=int, default=10, show_default=True, help="Minimum timed calls per config.")(f)
    f = click.option("--warmup", type=int, default=5, show_default=True, help="Untimed warm-up calls.")(f)
    return f


def _backend(name: str, threads: int, onnx_cache: str | None = None, space: Any = None) -> Any:
    """A backend; with ``space``, its models get the space's ``[model]`` vocabulary size and label count
    (:func:`kdnas_bench.profiling.requests.build_backend`)."""
    return build_backend(name, threads, onnx_cache, space)


@click.group("space")
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
    from ..profiling.jobs import show_space  # noqa: PLC0415  lazy: pandas (the profile store)

    view = show_space(SpaceShowRequest(space_path))
    if as_json:
        print_json(view.info)
        return
    console.print(space_table(view.space, view.info))
    console.print(f"{view.space.size:,} valid archs × {len(view.space.shapes)} shapes = {view.configs:,} configs")


@click.command("profile")
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
    from ..predictors.profile_jobs import run_profile  # noqa: PLC0415  lazy: pandas, LightGBM

    req = ProfileRequest(space=space_path, backend=backend, threads=threads, samples=samples, minutes=minutes,
                         target=target, canary=canary, seqs=seq_list, batches=batch_list, store=store, seed=seed,
                         sampler=sampler, shapes_per_arch=shapes_per_arch, onnx_cache=onnx_cache, memory=memory,
                         timing=TimingOptions(warmup, min_calls, min_seconds, max_seconds))
    with ExitStack() as stack:
        view = ProfileProgress(err_console if as_json else console, stack)
        result = run_profile(req, view.on_event)
    if as_json:
        print_json(result.summary)
        return
    print_profile_summary(result)


@click.command("measure")
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
    from ..predictors.profile_jobs import run_measure  # noqa: PLC0415  lazy: pandas, torch

    req = MeasureRequest(arch=arch, seq=seq, batch=batch, backend=backend, threads=threads, onnx_cache=onnx_cache,
                         memory=bool(memory), speed_factor=speed, predictors=predictors_dir,
                         timing=TimingOptions(warmup, min_calls, min_seconds, max_seconds))
    result = run_measure(req)
    if as_json:
        print_json(result.record)
        return
    _measure_lines(req, result)


def _measure_lines(req: MeasureRequest, result: Any) -> None:
    """The table, speed factor and memory lines of ``measure``."""
    m, env = result.measurement, result.env
    table = Table(title=f"{req.arch} · batch {req.batch} × seq {req.seq} · {result.record['backend']} · "
                  f"{req.threads} thread(s) · {env['device_id']}")
    for col in ("median ms", "mean ms", "p90 ms", "p99 ms", "CV", "IQR/median", "n", "noisy"):
        table.add_column(col)
    t = m.timing
    table.add_row(f"{t.median_ms:.3f}", f"{t.mean_ms:.3f}", f"{t.p90_ms:.3f}", f"{t.p99_ms:.3f}", f"{t.cv:.2%}",
                  f"{t.iqr_ratio:.2%}", str(t.n), "yes" if t.noisy else "no")
    console.print(table)
    print_speed(result.record)
    if m.memory is not None:
        r = m.memory
        console.print(f"memory: peak {r.peak_rss_bytes / 2**20:.1f} MiB over the bare runtime (model "
                      f"{r.model_rss_bytes / 2**20:.1f} + forward pass {r.forward_rss_bytes / 2**20:.1f}); weights "
                      f"{r.weight_bytes / 2**20:.1f} MiB; {method_label(METHOD)}", markup=False)
    elif req.memory:
        console.print(f"memory: not measured ({m.memory_error})", markup=False)


@click.command("devices")
@store_option()
@json_option()
def devices(store: str | None, as_json: bool) -> None:
    """List the profiled devices and backends in a store.

    \b
    Example:
      kdnas-bench devices --json
    """
    from ..profiling.jobs import list_devices  # noqa: PLC0415  lazy: pandas (the profile store)

    entries = list_devices(DevicesRequest(store))
    if as_json:
        print_json(entries)
        return
    console.print(devices_table(entries, console.width))
    if not entries:
        console.print("no profiles yet: run `kdnas-bench profile`")


def register(cli: click.Group) -> None:
    for command in (space_group, profile, measure_cmd, devices):
        cli.add_command(command)

