"""``kdnas-bench remeasure``: the device's noise floor (stored rows measured again, in a new time window), or
with ``--memory-only`` the memory columns of stored rows measured again with the current method.

Parses its options into a :class:`~kdnas_bench.profiling.requests.RemeasureRequest`, calls
:func:`kdnas_bench.profiling.jobs.run_remeasure` and renders what it returns."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..profiling.memory import method_label
from ..profiling.requests import RemeasureRequest
from .common import console, err_console, print_json
from .options import backend_option, json_option, seed_option, space_option, store_option, threads_option
from .profile_cmds import CANARY_MODES


@click.command("remeasure")
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
    from ..profiling.jobs import run_remeasure  # noqa: PLC0415  lazy: pandas (the profile store)

    def given(name: str, value: Any) -> Any:  # left at its default: None (the request's own default)
        return None if ctx.get_parameter_source(name) == click.core.ParameterSource.DEFAULT else value

    req = RemeasureRequest(backend=backend, threads=threads, samples=samples, fresh=given("fresh", fresh),
                           canary=given("canary", canary), space=space_path, store=store, seed=given("seed", seed),
                           onnx_cache=onnx_cache, memory_only=memory_only, include_unmeasured=include_unmeasured)
    out = err_console if as_json else console
    with ExitStack() as stack:
        result = run_remeasure(req, _RemeasureEvents(out, stack, transient=as_json).on_event)
    if as_json:
        print_json(result.to_json())
    elif result.memory is not None:
        _memory_lines(result)
    else:
        _floor_lines(result)


class _RemeasureEvents:
    """The spinner of a latency re-measurement, or the bar of a memory one, held open in ``stack``."""

    def __init__(self, out: Console, stack: ExitStack, *, transient: bool) -> None:
        self.out, self.stack, self.transient = out, stack, transient
        self.status: Any = None
        self.bar: Any = None
        self.task: Any = None

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "start":
            self.status = self.stack.enter_context(
                self.out.status(f"re-measuring {data['stored']} stored + {data['fresh']} fresh configs…"))
        elif kind == "end" and self.status is not None:
            self.status.stop()
        elif kind == "memory_start":
            self.bar = self.stack.enter_context(Progress(TextColumn("re-measuring memory"), BarColumn(),
                                                         MofNCompleteColumn(), TimeElapsedColumn(), console=self.out,
                                                         transient=self.transient))
            self.task = self.bar.add_task("memory", total=None)
        elif kind == "memory_progress" and self.bar is not None:
            self.bar.update(self.task, completed=data["done"], total=data["total"])
        elif kind == "memory_end" and self.bar is not None:
            self.bar.stop()


def _floor_lines(result: Any) -> None:
    doc = result.doc
    for name in ("raw", "normalised"):
        a = doc[name]
        if a:
            console.print(f"{name:>10}: {a['rows']} rows re-measured · within ±5 % {a['within_5pct']:.1%} · "
                          f"±10 % {a['within_10pct']:.1%} · median |change| {a['median_abs']:.1%} · "
                          f"median new/stored {a['median_ratio']:.3f}")
    if doc["fresh"]:
        console.print(f"{len(doc['fresh'])} fresh configs measured (held-out rows for `predictors`)")
    console.print(f"saved {result.dataset.path / '_floor.json'}", markup=False)


def _memory_lines(result: Any) -> None:
    doc = result.memory
    ratio = "" if doc.peak_ratio_median is None else f"; median new/stored peak {doc.peak_ratio_median:.3f}"
    console.print(f"{doc.measured} of {doc.pending} pending rows re-measured with {method_label(doc.method)} in "
                  f"{doc.seconds:.0f} s; {doc.failed} failed{ratio}", markup=False)
    for e in doc.errors:
        console.print(f"  failed: {e}", markup=False)
    console.print(f"ok rows by memory method: {doc.rows_by_method} · saved {result.dataset.path}", markup=False)


def register(cli: click.Group) -> None:
    cli.add_command(remeasure_cmd)
