"""Shared CLI pieces: consoles, option parsers, JSON output."""

from __future__ import annotations

import json
import math
from typing import Any

import click
from rich.console import Console

from .. import models
from ..errors import KdnasError
from ..jobs.common import out_folder as jobs_out_folder
from ..jobs.common import task_inputs as task_inputs  # the library's, kept importable from here
from ..space import Arch

# user text (paths, messages, file contents) is printed as it is: no ":100:" or ":thumbs_up:" turned into emoji;
# rich markup in it is escaped where it is printed with markup (error_line, escape)
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)


def overwrite_option(what: str) -> Any:
    """``--overwrite``: let ``--out`` name an existing non-empty folder (refused without it, before any work)."""
    return click.option("--overwrite", is_flag=True,
                        help=f"Write into --out even when it exists and is not empty (replacing {what}); "
                             "without it such a folder is refused.")


def out_folder(out: str, *, overwrite: bool, inputs: list[tuple[str, str | None]]) -> Any:
    """Check ``--out`` (new or empty unless ``overwrite``; none of ``inputs``) and return its lock, to hold while
    writing (one writer per folder); a stale lock taken over is said on stderr."""
    return jobs_out_folder(out, overwrite=overwrite, inputs=inputs, emit=lambda kind, data: err_console.print(
        f"note: {data['text']}", markup=False, highlight=False))


class AcceleratorName(click.ParamType):
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (the GPU of that index), lower-cased; anything else refused."""

    name = "auto|cpu|cuda|cuda:N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip().lower()
        if text in ("auto", "cpu", "cuda") or (text.startswith("cuda:") and text[5:].isdigit()):
            return text
        self.fail(f"{value!r} is not one of auto, cpu, cuda, cuda:N (N: a GPU index, e.g. cuda:1)", param, ctx)


def accelerator_option(what: str = "training") -> Any:
    """``--accelerator auto|cpu|cuda|cuda:N`` (``--device`` names the latency device; this is where training runs)."""
    return click.option("--accelerator", type=AcceleratorName(), default="auto", show_default=True,
                        help=f"Where {what} runs: auto = the GPU when torch sees one (bf16 autocast where it has "
                             "bf16), else the CPU; cuda (or cuda:N, the GPU of index N) without a GPU is an error. "
                             "CPU numbers are unchanged.")


def check_accelerator(name: str) -> str:
    """``name`` resolved ("cpu", "cuda" or "cuda:N"): the one-line error for cuda without a GPU (or without GPU N),
    before any work."""
    from ..distill.accelerator import resolve  # noqa: PLC0415  lazy: torch (via distill.accelerator)

    return resolve(name).name


def parse_int_list(text: str | None, name: str) -> list[int] | None:
    if text is None or text == "":
        return None
    try:
        values = [int(v) for v in str(text).replace(" ", "").split(",") if v]
    except ValueError:
        raise KdnasError(f"{name} must be a comma-separated list of integers, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise KdnasError(f"{name} values must be positive integers, got {text!r}")
    return values


def parse_arch(text: str) -> Arch:
    """An arch from its text: the library's one parser, :func:`kdnas_bench.models.parse_arch`."""
    return models.parse_arch(text)


def positive(name: str, value: int | float | None) -> None:
    if value is not None and value <= 0:
        raise KdnasError(f"{name} must be positive, got {value}")


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _clean(obj.item())
    return obj


def print_json(obj: Any) -> None:
    click.echo(json.dumps(_clean(obj), indent=2, default=str))
