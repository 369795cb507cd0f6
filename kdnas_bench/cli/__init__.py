"""The ``kdnas-bench`` command line: parse, call the library, render with rich.

User errors (:class:`~kdnas_bench.errors.KdnasError`) are printed as one line on stderr with exit
code 2, never as a traceback."""

from __future__ import annotations

import os
import sys

import click

from .. import __version__
from ..errors import KdnasError
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
    from . import distill_cmds, predict_cmds, profile_cmds, quickstart_cmds, report_cmds, search_cmds, supernet_cmds

    for module in (profile_cmds, predict_cmds, distill_cmds, supernet_cmds, search_cmds, report_cmds, quickstart_cmds):
        module.register(cli)


_register()


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        cli.main(args=argv, prog_name="kdnas-bench", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        err_console.print("interrupted; what was finished is stored: rerun the same command to resume")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KdnasError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
