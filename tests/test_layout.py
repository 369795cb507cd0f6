"""The package's shape: no import cycles (counting imports inside functions, not those only for type checkers),
no module over ~400 lines, and the CLI's choices read from the registries."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kdnas_bench"
MAX_LINES = 400


def _modules() -> dict[str, tuple[Path, list[str]]]:
    """Module name -> (file, the package its relative imports start from)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
            out[".".join(parts)] = (path, parts)
        else:
            out[".".join(parts)] = (path, parts[:-1])
    return out


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:`` (never run)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports, anywhere in its body (a function-level import counts)."""
    mods = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, (path, pkg) in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_only(tree)
        deps: set[str | None] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                deps.update(resolve(a.name) for a in node.names if a.name.startswith("kdnas_bench"))
            elif isinstance(node, ast.ImportFrom):
                base = ".".join([*pkg[:len(pkg) - node.level + 1], node.module or ""]) if node.level else node.module
                base = (base or "").rstrip(".")
                if base.startswith("kdnas_bench"):
                    deps.update(resolve(f"{base}.{a.name}") if f"{base}.{a.name}" in mods else resolve(base)
                                for a in node.names)
        graph[name] = {d for d in deps if d is not None and d != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (as a path that returns to its start), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_sees_relative_and_function_level_imports() -> None:
    graph = import_graph()
    assert "kdnas_bench.distill.finetuning" in graph["kdnas_bench.search.evaluators.base"]  # inside default_teacher
    assert "kdnas_bench.predictors.latency" in graph["kdnas_bench.predictors.lookup"]


def test_no_import_cycles() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE.parent)} has {lines} lines (> {MAX_LINES}): split it"


def test_cli_choices_come_from_the_registries() -> None:
    from kdnas_bench.cli import cli
    from kdnas_bench.distill.losses import LOSSES
    from kdnas_bench.predictors.transfer_methods import TRANSFER_METHODS
    from kdnas_bench.profiling.backends import BACKENDS
    from kdnas_bench.search.strategies import STRATEGIES

    def choices(command: str, option: str) -> list[str]:
        cmd = cli
        for part in command.split():
            cmd = cmd.commands[part]  # type: ignore[attr-defined]
        (param,) = [p for p in cmd.params if p.name == option]
        return list(param.type.choices)  # type: ignore[attr-defined]

    assert choices("profile", "backend") == list(BACKENDS)
    assert choices("remeasure", "backend") == list(BACKENDS)
    assert choices("search", "strategy") == list(STRATEGIES)
    assert set(choices("fit", "transfer_method")) == {*TRANSFER_METHODS, "auto"}
    assert set(LOSSES) >= {"logits", "hidden", "hidden-uniform", "attn", "ce"}
