"""``kdnas-bench remeasure``: the device's noise floor (stored rows measured again, in a new time window), or
with ``--memory-only`` the memory columns of stored rows measured again with the current method."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import KdnasError
from ..paths import default_store
from ..validate import check_writable
from .common import console, err_console, positive, print_json
from .options import backend_option, json_option, seed_option, space_option, store_option, threads_option
from .profile_cmds import CANARY_MODES, _backend, load_space


def register(cli: click.Group) -> None:
    @cli.command("remeasure")
    @backend_option("Backend of the profile to re-measure, from the registry.")
    @threads_option()
    @click.option("--samples", type=int, help="Stored rows to measure again [default: 50; --memory-only: every "
                  "pending row].")
    @click.option("--fresh", type=int, default=0, show_default=True,
                  help="Also measure N configs the profile does not hold (held-out rows from a new time window).")
    @click.option("--canary", type=click.Choice(CANARY_MODES), default="burst", show_default=True,
                  help="How the canary is interleaved (left at its default: as the stored rows were).")
    @space_option("Search-space TOML for --fresh (default: search/spaces/bert.toml).")
    @store_option()
    @seed_option("Seed of the rows picked to re-measure.")
    @click.option("--onnx-cache", type=click.Path(), help="Folder for exported ONNX models.")
    @click.option("--memory-only", is_flag=True, help="Measure the memory of stored rows again with the current "
                  "method (rows whose memory an older method measured), leaving their latency as it is; resumable.")
    @click.option("--include-unmeasured", is_flag=True, help="--memory-only: also the ok rows without memory.")
    @json_option()
    @click.pass_context
    def remeasure_cmd(ctx: click.Context, backend: str, threads: int, samples: int | None, fresh: int, canary: str,
                      space_path: str | None, store: str | None, seed: int, onnx_cache: str | None, memory_only: bool,
                      include_unmeasured: bool, as_json: bool) -> None:
        """Measure stored rows of this device again, now: the device's noise floor.

        Reports the share of re-measured rows within ±5 % / ±10 % of their stored median, raw and
        drift-normalised (config/canary ratio), and writes it to the dataset's _floor.json, which
        `kdnas-bench predictors` shows beside each predictor's held-out accuracy.

        With --memory-only, no timing: the ok rows whose memory was measured with an older method
        (and with --include-unmeasured those without memory) get their memory columns measured again,
        each in a fresh process, and stored beside their unchanged latency columns. It needs no quiet
        machine: memory does not depend on the load.

        \b
        Examples:
          kdnas-bench remeasure --backend torch --threads 1 --samples 60 --fresh 100
          kdnas-bench remeasure --backend onnxruntime-int8 --memory-only
        """
        from ..profiling.device import environment
        from ..profiling.floor import remeasure
        from ..profiling.runner import Canary
        from ..profiling.store import ProfileStore

        positive("--threads", threads)
        if memory_only:
            _memory_only(ctx, backend, threads, samples, fresh, space_path, store, onnx_cache, include_unmeasured,
                         as_json)
            return
        if include_unmeasured:
            raise KdnasError("--include-unmeasured goes with --memory-only")
        samples = 50 if samples is None else samples
        if samples < 0 or fresh < 0 or samples + fresh == 0:
            raise KdnasError("--samples and --fresh must be >= 0, and one of them positive")
        model_space = load_space(space_path)  # its [model] section: the models the profile measured
        space = model_space if fresh else None
        bk = _backend(backend, threads, onnx_cache, model_space)
        env = environment(bk.name, threads)
        dataset = ProfileStore(Path(store) if store else default_store()).dataset(env["device_id"], bk.name, threads)
        if not dataset.path.exists():
            raise KdnasError(f"no profile of this device ({env['device_id']} {bk.name} t{threads}) in "
                             f"{dataset.path.parent.parent}; run `kdnas-bench profile` first")
        if ctx.get_parameter_source("canary") == click.core.ParameterSource.DEFAULT:  # like with like
            modes = dataset.read().get("interleave")
            canary = str(modes.dropna().mode().iloc[0]) if modes is not None and modes.notna().any() else "burst"
        can = Canary(_backend(backend, threads, onnx_cache), canary) if canary != "none" else None
        with (err_console if as_json else console).status(f"re-measuring {samples} stored + {fresh} fresh configs…"):
            doc = remeasure(dataset, bk, samples=samples, fresh=fresh, space=space, canary=can, seed=seed)
        if as_json:
            print_json({k: v for k, v in doc.items() if k not in ("remeasured", "fresh")})
            return
        for name in ("raw", "normalised"):
            a = doc[name]
            if a:
                console.print(f"{name:>10}: {a['rows']} rows re-measured · within ±5 % {a['within_5pct']:.1%} · "
                              f"±10 % {a['within_10pct']:.1%} · median |change| {a['median_abs']:.1%} · "
                              f"median new/stored {a['median_ratio']:.3f}")
        if doc["fresh"]:
            console.print(f"{len(doc['fresh'])} fresh configs measured (held-out rows for `predictors`)")
        console.print(f"saved {dataset.path / '_floor.json'}", markup=False)


def _memory_only(ctx: click.Context, backend: str, threads: int, samples: int | None, fresh: int,
                 space_path: str | None, store: str | None, onnx_cache: str | None, include_unmeasured: bool,
                 as_json: bool) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..profiling.device import environment
    from ..profiling.memory import method_label
    from ..profiling.memory_update import remeasure_memory
    from ..profiling.store import ProfileStore
    from .profile_cmds import memory_probe

    for name in ("fresh", "canary", "seed"):
        if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT:
            raise KdnasError(f"--{name} measures latency; it does not go with --memory-only")
    positive("--samples", samples)
    model_space = load_space(space_path)  # the models the profile measured: the space's vocabulary and labels
    env = environment(backend, threads)
    store_path = check_writable("--store", Path(store) if store else default_store(writable=True))
    dataset = ProfileStore(store_path).dataset(env["device_id"], backend, threads)
    if not dataset.path.exists():
        raise KdnasError(f"no profile of this device ({env['device_id']} {backend} t{threads}) in "
                         f"{dataset.path.parent.parent}; run `kdnas-bench profile` first")
    probe = memory_probe(backend, threads, onnx_cache, True, model_space)
    out = err_console if as_json else console
    try:
        with Progress(TextColumn("re-measuring memory"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=out, transient=as_json) as bar:
            task = bar.add_task("memory", total=None)
            doc = remeasure_memory(dataset, probe, include_unmeasured=include_unmeasured, limit=samples,
                                   progress=lambda n, total: bar.update(task, completed=n, total=total))
    finally:
        probe.close()
    if as_json:
        print_json({**doc.to_dict(), "store": str(dataset.path)})
        return
    ratio = "" if doc.peak_ratio_median is None else f"; median new/stored peak {doc.peak_ratio_median:.3f}"
    console.print(f"{doc.measured} of {doc.pending} pending rows re-measured with {method_label(doc.method)} in "
                  f"{doc.seconds:.0f} s; {doc.failed} failed{ratio}", markup=False)
    for e in doc.errors:
        console.print(f"  failed: {e}", markup=False)
    console.print(f"ok rows by memory method: {doc.rows_by_method} · saved {dataset.path}", markup=False)
