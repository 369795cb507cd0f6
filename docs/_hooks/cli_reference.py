"""MkDocs hook: the command-line reference, generated from the click commands at build time.

A page that holds the line ``<!-- kdnas-cli-reference -->`` gets, in its place, one section per command (groups and
their subcommands, depth first): the command's help text, its usage line, and a table of its options as click itself
formats them for ``--help`` (names, metavar or choices, help, ``[default: ...]``, ranges). The examples in a
command's help become ``bash`` code blocks. Nothing is typed in by hand, so the page cannot drift from the code.
"""

from __future__ import annotations

import html
import inspect
import re
from typing import Any

import click

MARKER = "<!-- kdnas-cli-reference -->"
PROG = "kdnas-bench"


def _cell(text: str) -> str:
    return html.escape(" ".join(text.split()), quote=False).replace("|", "&#124;")


def _help_markdown(text: str) -> str:
    """A click help text as Markdown: paragraphs as prose; a ``\\b`` block (click's no-rewrap marker) whose lines
    are commands as a bash code block, any other ``\\b`` block as a plain code block."""
    out: list[str] = []
    for para in inspect.cleandoc(text).split("\n\n"):
        lines = para.splitlines()
        if lines and lines[0].strip() == "\b":
            body = [ln for ln in lines[1:]]
            head = [ln for ln in body if ln.strip() and not ln.strip().startswith(f"{PROG} ")
                    and not ln.startswith((" ", "\t"))]
            code = [ln for ln in body if ln not in head]
            if head:
                out.append(" ".join(h.strip() for h in head))
            if code:
                indent = min(len(ln) - len(ln.lstrip()) for ln in code if ln.strip())
                lang = "bash" if any(ln.strip().startswith(f"{PROG} ") for ln in code) else "text"
                out.append(f"```{lang}\n" + "\n".join(ln[indent:] for ln in code) + "\n```")
        else:
            out.append(html.escape(" ".join(ln.strip() for ln in lines), quote=False))
    return "\n\n".join(out)


def _summary(cmd: click.Command) -> str:
    """A command's summary for the index: its short help, else its help's first sentence, whole (click's
    ``--help`` listing cuts it to the terminal with "...")."""
    if cmd.short_help:
        return cmd.short_help
    first = " ".join(inspect.cleandoc(cmd.help or "").split("\n\n")[0].split())
    sentence = re.match(r".*?\.(?=\s|$)", first)
    return sentence.group(0) if sentence else first


def _section(cmd: click.Command, path: list[str], ctx: click.Context) -> list[str]:
    name = " ".join([PROG, *path])
    level = "#" * min(2 + max(len(path) - 1, 0), 4)
    parts = [f"{level} {name}", ""]
    if cmd.help:
        parts += [_help_markdown(cmd.help), ""]
    usage = " ".join(cmd.collect_usage_pieces(ctx))
    parts += ["```text", f"Usage: {name} {usage}".rstrip(), "```", ""]
    rows = [rec for p in cmd.get_params(ctx) if (rec := p.get_help_record(ctx)) is not None]
    if rows:
        parts += ["| option | description |", "|---|---|"]
        parts += [f"| <code>{_cell(opts)}</code> | {_cell(desc)} |" for opts, desc in rows]
        parts.append("")
    old = [f"`{opt}` (use `{(p.help or '').removeprefix('Deprecated: use ').rstrip('.')}`)" for p in cmd.params
           if isinstance(p, click.Option) and p.hidden and (p.help or "").startswith("Deprecated: use ") for opt in p.opts]
    if old:
        parts += [f"Old spellings still accepted, with a deprecation note: {', '.join(old)}.", ""]
    if cmd.epilog:
        parts += [_help_markdown(cmd.epilog), ""]
    return parts


def generate(cli: click.Command | None = None) -> str:
    """The reference as Markdown: a table of the commands, then one section per command (also used by the tests)."""
    if cli is None:
        from kdnas_bench.cli import cli as group

        cli = group
    index: list[str] = ["| command | what it does |", "|---|---|"]
    lines: list[str] = []

    def walk(cmd: click.Command, path: list[str], parent: click.Context | None) -> None:
        ctx = click.Context(cmd, info_name=path[-1] if path else PROG, parent=parent, max_content_width=100)
        if path:
            name = " ".join([PROG, *path])
            index.append(f"| [`{name}`](#{name.replace(' ', '-')}) | {_cell(_summary(cmd))} |")
        lines.extend(_section(cmd, path, ctx))
        if isinstance(cmd, click.Group):
            for sub_name, sub in sorted(cmd.commands.items()):
                if not sub.hidden:
                    walk(sub, [*path, sub_name], ctx)

    walk(cli, [], None)
    return "\n".join([*index, "", *lines])


def on_page_markdown(markdown: str, **_: Any) -> str:
    if MARKER in markdown:
        return markdown.replace(MARKER, generate())
    return markdown
