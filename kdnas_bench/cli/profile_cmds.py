"""Verbs about measuring this device: ``space show``, ``profile``, ``measure``, ``devices``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ..errors import KdnasError
from ..paths import default_space, default_store
from ..space import SAMPLERS, SearchSpace, Shape
from ..validate import check_writable
from .common import console, err_console, parse_arch, parse_int_list, positive, print_json

BACKEND_NAMES = ["torch", "onnxruntime", "torch-cuda", "onnxruntime-cuda"]


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


def _backend(name: str, threads: int, onnx_cache: str | None = None) -> Any:
    from ..profiling.backends import make_backend

    opts: dict[str, Any] = {}
    if onnx_cache and name.startswith("onnxruntime"):
        opts["cache_dir"] = Path(onnx_cache)
    return make_backend(name, threads, **opts)


def register(cli: click.Group) -> None:
    @cli.group("space")
    def space_group() -> None:
        """Inspect search spaces."""

    @space_group.command("show")
    @click.option("--space", "space_path", type=click.Path(), help="Space TOML (default: search/spaces/bert.toml).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
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
        table = Table(title=f"search space '{space.name}' ({space.source})")
        table.add_column("dimension")
        table.add_column("values")
        for key in ("layers", "hidden", "heads", "ffn", "seq", "batch"):
            vals = info[key]
            shown = ", ".join(map(str, vals)) if len(vals) <= 12 else f"{vals[0]} … {vals[-1]} ({len(vals)} values)"
            table.add_row(key, shown)
        table.add_row("min head dim", str(space.min_head_dim))
        table.add_row("max tokens", f"{space.max_tokens} per forward (batch × seq)")
        console.print(table)
        console.print(
            f"{space.size:,} valid archs × {len(space.shapes)} shapes = {space.size * len(space.shapes):,} configs"
        )

    @cli.command("profile")
    @click.option("--space", "space_path", type=click.Path(), help="Space TOML (default: search/spaces/bert.toml).")
    @click.option("--backend", type=click.Choice(BACKEND_NAMES), default="torch", show_default=True)
    @click.option("--threads", type=int, default=1, show_default=True, help="Intra-op threads.")
    @click.option("--samples", type=int, default=100, show_default=True, help="Run until the store holds N ok rows.")
    @click.option("--seq", "seq_list", help="Sequence lengths to profile, e.g. 32,128 (default: the space's).")
    @click.option("--batch", "batch_list", help="Batch sizes to profile, e.g. 1,8 (default: the space's).")
    @click.option("--store", type=click.Path(), help="Profile store folder (default: the checkout's profiles/).")
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--sampler", type=click.Choice(SAMPLERS), default="sobol", show_default=True)
    @click.option("--shapes-per-arch", type=int, default=4, show_default=True, help="Shapes measured per built arch.")
    @click.option("--onnx-cache", type=click.Path(), help="Folder for exported ONNX models.")
    @timing_options
    @click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
    def profile(space_path: str | None, backend: str, threads: int, samples: int, seq_list: str | None,
                batch_list: str | None, store: str | None, seed: int, sampler: str, shapes_per_arch: int,
                onnx_cache: str | None, warmup: int, min_calls: int, min_seconds: float, max_seconds: float,
                as_json: bool) -> None:
        """Measure the latency of sampled students on this device into the profile store.

        Resumable: rerun the same command after an interruption and it goes on where it stopped.

        \b
        Example:
          kdnas-bench profile --backend onnxruntime --threads 1 --samples 800
        """
        from ..profiling.device import environment
        from ..profiling.runner import CampaignConfig, CampaignResult, Measurement, run_campaign
        from ..profiling.store import ProfileStore

        positive("--threads", threads)
        positive("--samples", samples)
        space = load_space(space_path).restrict_shapes(parse_int_list(seq_list, "--seq"), parse_int_list(batch_list, "--batch"))
        cfg = CampaignConfig(samples=samples, sampler=sampler, seed=seed, shapes_per_arch=shapes_per_arch,
                             timing=make_timing(warmup, min_calls, min_seconds, max_seconds))
        bk = _backend(backend, threads, onnx_cache)
        env = environment(bk.name, threads)
        store_path = check_writable("--store", Path(store) if store else default_store())
        dataset = ProfileStore(store_path).dataset(env["device_id"], bk.name, threads)
        out = err_console if as_json else console
        out.print(f"device [bold]{env['device_id']}[/] ({env['cpu_model']}, {env['cores']} cores"
                  f"{', ' + env['gpu_name'] if env['gpu_name'] else ''}) · backend {bk.name} · {threads} thread(s)")
        out.print(f"store {dataset.path} · space '{space.name}' ({space.size:,} archs) · sampler {sampler}, seed {seed}",
                  markup=False)
        started = time.perf_counter()
        with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[noise]}"), TimeElapsedColumn(), TextColumn("ETA"),
                      TimeRemainingColumn(), console=out, transient=False) as bar:
            task = bar.add_task("profiling", total=samples, noise="")

            def on_progress(res: CampaignResult, m: Measurement | None) -> None:
                last = ""
                if m is not None:
                    last = (f"{m.arch} {m.shape.batch}x{m.shape.seq}: "
                            + (f"{m.timing.median_ms:.2f} ms" if m.timing else "[red]failed[/]"))
                noise = f"median CV {res.median_cv:.1%}" if res.cvs else ""
                bar.update(task, completed=min(res.rows_after, samples), noise=f"{noise} {last}")

            result = run_campaign(space, dataset, bk, cfg, progress=on_progress)
        elapsed = time.perf_counter() - started
        summary = {
            "device_id": env["device_id"], "backend": bk.name, "threads": threads, "store": str(dataset.path),
            "rows_before": result.rows_before, "rows": result.rows_after, "measured": result.measured,
            "failed": result.failed, "noisy": result.noisy, "median_cv": result.median_cv,
            "seconds": elapsed, "rows_per_minute": 60 * result.measured / elapsed if result.measured else 0.0,
            "exhausted": result.exhausted,
        }
        if as_json:
            print_json(summary)
            return
        table = Table(title="profile summary")
        for col in ("device", "backend", "threads", "rows", "measured now", "failed", "noisy", "median CV", "rows/min"):
            table.add_column(col)
        table.add_row(env["device_id"], bk.name, str(threads), f"{result.rows_before} → {result.rows_after}",
                      str(result.measured), str(result.failed), str(result.noisy),
                      f"{result.median_cv:.2%}" if result.cvs else "-", f"{summary['rows_per_minute']:.1f}")
        console.print(table)
        if result.exhausted:
            console.print("[yellow]the space has no unmeasured configs left; the store holds fewer rows than asked[/]")

    @cli.command("measure")
    @click.option("--arch", required=True, help="L,H,A,FFN, e.g. 4,312,12,1200.")
    @click.option("--seq", type=int, required=True, help="Sequence length.")
    @click.option("--batch", type=int, required=True, help="Batch size.")
    @click.option("--backend", type=click.Choice(BACKEND_NAMES), default="torch", show_default=True)
    @click.option("--threads", type=int, default=1, show_default=True)
    @click.option("--onnx-cache", type=click.Path(), help="Folder for exported ONNX models.")
    @timing_options
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def measure_cmd(arch: str, seq: int, batch: int, backend: str, threads: int, onnx_cache: str | None,
                    warmup: int, min_calls: int, min_seconds: float, max_seconds: float, as_json: bool) -> None:
        """Measure one student at one shape on this device, now.

        \b
        Example:
          kdnas-bench measure --arch 4,312,12,1200 --seq 128 --batch 1 --json
        """
        from ..models import count_params, flops
        from ..profiling.device import environment
        from ..profiling.runner import measure

        a = parse_arch(arch)
        positive("--seq", seq)
        positive("--batch", batch)
        positive("--threads", threads)
        shape = Shape(batch, seq)
        if seq > 512:
            raise KdnasError(f"--seq {seq} exceeds BERT's 512 positions")
        bk = _backend(backend, threads, onnx_cache)
        env = environment(bk.name, threads)
        m = measure(bk, a, shape, make_timing(warmup, min_calls, min_seconds, max_seconds))
        bk.close()
        if m.timing is None:
            raise KdnasError(f"measuring {a} at {batch}x{seq} on {bk.name} failed: {m.error}")
        out: dict[str, Any] = {
            "arch": a.to_dict(), "seq": seq, "batch": batch, "backend": bk.name, "threads": threads,
            "device_id": env["device_id"], **m.timing.stats(), "params": count_params(a),
            "flops": flops(a, shape).total, "load_before": m.load_before, "load_after": m.load_after,
        }
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

    @cli.command("devices")
    @click.option("--store", type=click.Path(), help="Profile store folder (default: the checkout's profiles/).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
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
        table = Table(title="profiled devices")
        for col in ("device_id", "backend", "threads", "rows", "failed", "median CV", "first", "last", "cpu / gpu"):
            table.add_column(col)
        for e in entries:
            env = e["environment"] or {}
            table.add_row(e["device_id"], e["backend"], str(e["threads"]), str(e["rows"]), str(e["failed_rows"]),
                          f"{e['median_cv']:.2%}" if e["median_cv"] is not None else "-",
                          str(e["first_timestamp"])[:19], str(e["last_timestamp"])[:19],
                          str(env.get("gpu_name") or env.get("cpu_model", "")))
        console.print(table)
        if not entries:
            console.print("no profiles yet: run `kdnas-bench profile`")


def dataset_summary(d: Any) -> dict[str, Any]:
    df = d.read()
    ok = df[df["status"] == "ok"] if len(df) else df
    env = json.loads(df["env"].iloc[-1]) if len(df) else None
    return {
        "device_id": d.key.device_id,
        "backend": d.key.backend,
        "threads": d.key.threads,
        "rows": len(ok),
        "failed_rows": len(df) - len(ok),
        "noisy_rows": int(ok["noisy"].sum()) if len(ok) else 0,
        "median_cv": float(ok["cv"].median()) if len(ok) else None,
        "first_timestamp": df["timestamp"].min().isoformat() if len(df) else None,
        "last_timestamp": df["timestamp"].max().isoformat() if len(df) else None,
        "environment": env,
        "path": str(d.path),
    }
