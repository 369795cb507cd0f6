"""The ``kdnas-bench`` command line: parse, call the library, render with rich.

User errors (:class:`~kdnas_bench.errors.KdnasError`) are printed as one line on stderr with exit
code 2, never as a traceback."""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

import click
from rich.markup import escape

from .. import __version__
from ..errors import KdnasError
from ..progress import quiet_third_party
from . import (
    distill_cmds,
    export_cmds,
    floor_cmds,
    predict_cmds,
    profile_cmds,
    quickstart_cmds,
    report_cmds,
    search_cmds,
    supernet_cmds,
)
from .checks import guard
from .common import err_console


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="kdnas-bench")
def cli() -> None:
    """Hardware-aware KD-NAS: profile latency, predict it, search and compare distilled students.

    \b
    Example:
      kdnas-bench profile --backend torch --threads 1 --samples 200
    """


def _register() -> None:
    for module in (profile_cmds, floor_cmds, predict_cmds, distill_cmds, export_cmds, supernet_cmds, search_cmds,
                   report_cmds, quickstart_cmds):
        module.register(cli)
    guard(cli)


_register()


def error_line(message: str) -> str:
    """A message as one line of plain text (rich markup in it is escaped, so it prints verbatim)."""
    return escape(" ".join(part.strip() for part in str(message).splitlines() if part.strip()))


def _show_warning(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None,
                  line: str | None = None) -> None:
    """A library warning meant for the user (e.g. a predictor used on another CPU) as one line on stderr."""
    if getattr(category, "__module__", "").startswith("kdnas_bench"):
        err_console.print(f"[yellow]warning:[/] {error_line(str(message))}", highlight=False, soft_wrap=True)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.showwarning = _show_warning
    quiet_third_party()  # no third-party bars in our output ("Writing model shards: 0%|…")
    try:
        cli.main(args=argv, prog_name="kdnas-bench", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        err_console.print("interrupted; what was finished is stored: rerun the same command to resume")
        sys.exit(130)
    except click.ClickException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare `kdnas-bench` or group: the help, as click shows it
            exc.show()
            sys.exit(exc.exit_code)
        err_console.print(f"[bold red]error:[/] {error_line(exc.format_message())}"
                          f"{_usage_hint(exc)}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KdnasError as exc:
        err_console.print(f"[bold red]error:[/] {error_line(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except Exception as exc:  # a bug, not bad input: still one line, the traceback on request
        if os.environ.get("KDNAS_DEBUG"):
            raise
        err_console.print(f"[bold red]internal error:[/] {error_line(f'{type(exc).__name__}: {exc}')} "
                          "(a bug in kdnas-bench; KDNAS_DEBUG=1 shows the traceback)", highlight=False,
                          soft_wrap=True)
        sys.exit(70)


def _usage_hint(exc: click.ClickException) -> str:
    ctx = getattr(exc, "ctx", None)
    return f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
