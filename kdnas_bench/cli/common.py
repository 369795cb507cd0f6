"""Shared CLI pieces: consoles, option parsers, JSON output."""

from __future__ import annotations

import json
import math
from typing import Any

import click
from rich.console import Console

from ..errors import KdnasError, SpaceError
from ..space import Arch

console = Console()
err_console = Console(stderr=True)


def accelerator_option(what: str = "training") -> Any:
    """``--accelerator auto|cpu|cuda`` (``--device`` names the latency device; this is where training runs)."""
    return click.option("--accelerator", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                        help=f"Where {what} runs: auto = the GPU when torch sees one (bf16 autocast where it has "
                             "bf16), else the CPU; cuda without a GPU is an error. CPU numbers are unchanged.")


def check_accelerator(name: str) -> str:
    """``name`` resolved ("cpu" or "cuda"): the one-line error for cuda without a GPU, before any work."""
    from ..distill.accelerator import resolve

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
    try:
        return Arch.parse(text)
    except SpaceError as exc:
        raise KdnasError(f"invalid --arch: {exc}") from None


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
