"""The checks every command runs on its parsed options before its body (see :mod:`kdnas_bench.validate`, which
holds the rules; this module is their click side: how each option is named, and the wrapper around each command)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

import click

from ..validate import check_values
from .options import apply_aliases


def option_name(param: click.Parameter) -> str:
    """``--max-load`` for an option, ``RUN_DIR`` for an argument."""
    if isinstance(param, click.Option) and param.opts:
        return max(param.opts, key=len)
    return (param.name or "?").upper()


def check_options(command: str, params: Iterable[click.Parameter], values: Mapping[str, Any]) -> None:
    """Every parsed option of ``command`` (e.g. ``"teacher finetune"``): finite, in int64, in range, and
    every output path writable. Raises :class:`~kdnas_bench.errors.KdnasError` naming the first bad option."""
    check_values(command, {p.name: option_name(p) for p in params if p.name}, values)


def guard(cmd: click.Command, path: str = "") -> None:
    """Wrap every command under ``cmd`` so that it checks its options (finite, int64, ranges, writable outputs)
    before its body runs."""
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            guard(sub, f"{path} {name}".strip())
        return
    body = cmd.callback
    if body is None or getattr(body, "__kdnas_guarded__", False):
        return

    @functools.wraps(body)
    def checked(**kwargs: Any) -> Any:
        apply_aliases(kwargs)
        check_options(path, cmd.params, kwargs)
        return body(**kwargs)

    checked.__kdnas_guarded__ = True  # type: ignore[attr-defined]
    cmd.callback = checked
