"""The package's shape: declared layers that every import respects, no import cycles (counting imports inside
functions and those only for type checkers), no module over ~400 lines, and the CLI's choices read from the
registries."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kdnas_bench"
MAX_LINES = 400

# The layers, lowest first: a module may import its own layer's and lower ones, never a higher one. A top-level
# module or subpackage of kdnas_bench that is not listed here fails the test (declare where it sits).
LAYERS: list[set[str]] = [
    {"__init__", "errors", "keys", "paths", "defaults", "progress", "significance",
     "registry"},  # names, places, progress, tests, the registry of pluggable parts
    {"space", "autospace", "filechecks", "validate", "outdirs"},  # the search space (a teacher's), checked input and outputs
    {"models"},  # Arch -> model
    {"export"},  # model -> ONNX
    {"profiling", "distill"},  # measuring students, training them
    {"predictors", "supernet", "deploy"},  # what is learned from the profiles; weight sharing; int8 deployment
    {"search"},  # the KD-NAS search
    {"report", "testing"},  # reading finished runs; the contract checks
    {"cli"},  # parse -> call the library -> render
    {"__main__"},
]


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


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports, anywhere in its body: a function-level import and one only for
    type checkers (under ``if TYPE_CHECKING:``) count like any other."""
    mods = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, (path, pkg) in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        deps: set[str | None] = set()
        for node in ast.walk(tree):
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


def layer_of(module: str) -> int | None:
    """The index in :data:`LAYERS` of ``kdnas_bench.<part>...`` (None: undeclared)."""
    parts = module.split(".")
    part = parts[1] if len(parts) > 1 else "__init__"
    return next((i for i, layer in enumerate(LAYERS) if part in layer), None)


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import that runs upward (or touches an undeclared part), as ``a -> b`` lines."""
    bad = []
    for module, deps in sorted(graph.items()):
        here = layer_of(module)
        for dep in sorted(deps):
            there = layer_of(dep)
            if here is None or there is None:
                bad.append(f"{module} -> {dep}: declare {module if here is None else dep}'s layer in LAYERS")
            elif there > here:
                bad.append(f"{module} (layer {here}) -> {dep} (layer {there}): an import against the layer order")
    return bad


def test_the_layer_check_fails_on_an_upward_import() -> None:
    assert layer_violations({"kdnas_bench.space": {"kdnas_bench.errors"}}) == []
    assert layer_violations({"kdnas_bench.profiling.adaptive": {"kdnas_bench.predictors.latency"}}) == [
        "kdnas_bench.profiling.adaptive (layer 4) -> kdnas_bench.predictors.latency (layer 5): an import against the "
        "layer order"]
    assert "declare kdnas_bench.newpart" in layer_violations({"kdnas_bench.newpart.x": {"kdnas_bench.errors"}})[0]


def test_every_import_follows_the_layers() -> None:
    bad = layer_violations(import_graph())
    assert not bad, "imports against the declared layers:\n" + "\n".join(bad)


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_sees_relative_function_level_and_type_only_imports() -> None:
    graph = import_graph()
    assert "kdnas_bench.distill.teacher" in graph["kdnas_bench.distill.cache"]  # under TYPE_CHECKING
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
