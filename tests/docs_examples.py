"""The examples of README.md, docs/ and the commands' --help, as data for tests/test_docs.py.

Convention (documented in docs/reference/files.md, "Examples in these docs"): every fenced ```bash block of
README.md and docs/**/*.md is checked. The line before the fence may hold a marker comment:

* ``<!-- test: run -->``: the block runs for real (bash -euo pipefail) in a scratch folder that holds the
  checkout's ``search/``, ``profiles/``, ``predictors/``, ``benchmarks/`` and ``tests/`` (as links); it must exit 0.
  For the light commands: the committed predictors, tiny data, table searches.
* no marker: each command is *parsed*: ``kdnas-bench ...`` through the click commands (unknown option, missing
  value, bad choice or number, missing required option: failure), ``python benchmarks/X.py --opt`` against the
  script's own options, ``nox -s S`` against noxfile.py, ``pip install -e '.[x]'`` against the extras.
* ``<!-- test: skip -->``: not checked (say why in the text around it).

```python blocks are checked too: with ``<!-- test: run -->`` they run in a fresh interpreter (same scratch
folder); without, their imports are executed (a renamed or removed name fails).
"""

from __future__ import annotations

import ast
import re
import shlex
import textwrap
from dataclasses import dataclass
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[a-zA-Z]*)[^\n]*$")
MARKER = re.compile(r"<!--\s*test:\s*(?P<mode>run|skip|parse)\b[^>]*-->")
CONTROL = {"&&", "||", ";", "|", "&", "(", ")"}


@dataclass(frozen=True)
class Block:
    source: str  # "README.md" or "docs/howto/profile.md"
    line: int  # the fence's line number (1-based)
    lang: str  # bash | python
    mode: str  # run | parse | skip
    text: str

    @property
    def id(self) -> str:
        return f"{self.source}:{self.line}"


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks_of(path: Path) -> list[Block]:
    """The fenced bash and python blocks of one Markdown file, with the marker of the line before each."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, indent, lang = i, m["indent"], m["lang"].lower()
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith("```"):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        i += 1
        if lang not in {"bash", "python"}:
            continue
        prev = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.search(prev)
        mode = marker["mode"] if marker else "parse"
        out.append(Block(str(path.relative_to(ROOT)), start + 1, lang, mode, "\n".join(body) + "\n"))
    return out


def all_blocks() -> list[Block]:
    return [b for path in doc_files() for b in blocks_of(path)]


def commands(script: str) -> list[list[str]]:
    """The simple commands of a bash snippet: continuations joined, comments dropped, split at ``&&``, ``|``,
    ``;``, ``&``; leading ``VAR=value`` assignments removed."""
    joined = re.sub(r"\\\n", " ", script)
    out: list[list[str]] = []
    for line in joined.splitlines():
        lex = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
        lex.whitespace_split = True
        lex.commenters = "#"
        current: list[str] = []
        for token in lex:
            if token in CONTROL:
                if current:
                    out.append(current)
                current = []
            else:
                current.append(token)
        if current:
            out.append(current)
    return [_drop_assignments(c) for c in out if _drop_assignments(c)]


def _drop_assignments(argv: list[str]) -> list[str]:
    i = 0
    while i < len(argv) and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[i]):
        i += 1
    return argv[i:]


def help_examples() -> list[tuple[str, str]]:
    """(command path, example line) for every ``kdnas-bench ...`` line in the commands' help texts."""
    from kdnas_bench.cli import cli

    found: list[tuple[str, str]] = []

    def walk(cmd: click.Command, path: str) -> None:
        text = "\n".join(t for t in (cmd.help, cmd.epilog) if t)
        joined = re.sub(r"\\\n\s*", " ", textwrap.dedent(text))
        for line in joined.splitlines():
            line = line.strip()
            if line.startswith("kdnas-bench "):
                found.append((path or "kdnas-bench", line))
        if isinstance(cmd, click.Group):
            for name, sub in sorted(cmd.commands.items()):
                walk(sub, f"{path} {name}".strip())

    walk(cli, "")
    return found


# --- parse-level checks -------------------------------------------------------------------------------------


def _lenient_path_convert(original):  # type: ignore[no-untyped-def]
    """click.Path.convert without the existence check: an example names files the reader will have made."""

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        if self.exists and isinstance(value, str) and not Path(value).exists():
            return self.coerce_path_result(value)
        return original(self, value, param, ctx)

    return convert


def _lenient_arch_folder(original):  # type: ignore[no-untyped-def]
    """``--arch FOLDER`` without the folder: an example names a model folder the reader will have saved (its arch
    is a placeholder); a folder that is there is read as usual."""
    from kdnas_bench.space import Arch

    def arch_of_folder(text):  # type: ignore[no-untyped-def]
        if "/" in text and not Path(text).exists():
            return Arch(1, 64, 2, 128)
        return original(text)

    return arch_of_folder


def parse_kdnas(argv: list[str]) -> str:
    """Parse ``kdnas-bench ARGS`` down the click tree as the real command would, then run the option checks
    every command runs before its body (finite numbers, ranges, writable outputs, in the current folder).
    Returns the command path; raises click / KdnasError on a bad example."""
    from kdnas_bench.cli import cli
    from kdnas_bench.cli.checks import check_options

    ctx = cli.make_context("kdnas-bench", list(argv))
    cmd: click.Command = cli
    path: list[str] = []
    while isinstance(cmd, click.Group):
        rest = [*getattr(ctx, "_protected_args", ctx.protected_args), *ctx.args]
        if not rest:
            raise click.UsageError(f"no subcommand after {' '.join(['kdnas-bench', *path])}")
        name, sub, args = cmd.resolve_command(ctx, rest)
        assert name is not None and sub is not None
        ctx = sub.make_context(name, args, parent=ctx)
        cmd, path = sub, [*path, name]
    check_options(" ".join(path), cmd.params, ctx.params)
    return " ".join(path)


def argparse_options(script: Path, _seen: frozenset[Path] = frozenset()) -> set[str]:
    """The ``--options`` (and sub-command names) a benchmark script declares, read from its source, with those of
    the sibling scripts it imports from (a command line shared between benchmarks)."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in {"add_argument", "add_parser"}:
            names.update(a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            sibling = script.parent / f"{node.module}.py"
            if sibling.is_file() and sibling not in _seen and script not in _seen:
                names |= argparse_options(sibling, _seen | {script})
    return names


def nox_sessions() -> set[str]:
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    return {f.name for f in tree.body if isinstance(f, ast.FunctionDef)
            and any("session" in ast.unparse(d) for d in f.decorator_list)}


def extras() -> set[str]:
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as f:
        return set(tomllib.load(f)["project"]["optional-dependencies"])


def python_imports(source: str) -> str:
    """The import statements of a Python snippet, as code to execute."""
    tree = ast.parse(source)
    return "\n".join(ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom))
