"""The package's shape: declared layers that every import respects, no import cycles (counting imports inside
functions and those only for type checkers), small and simple functions (length and cyclomatic complexity, tighter in
the CLI), the import policy (imports at the top; the few lazy ones marked; click and rich only in the CLI), light
package ``__init__``s, benchmarks on the public API without cycles, and the CLI's choices read from the registries."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "kdnas_bench"
BENCHMARKS = ROOT / "benchmarks"

# The layers, lowest first: a module may import its own layer's and lower ones, never a higher one. A top-level
# module or subpackage of kdnas_bench that is not listed here fails the test (declare where it sits).
LAYERS: list[set[str]] = [
    # names, places, progress, tests, the lazy-import helper, the registry of pluggable parts
    {"__init__", "errors", "keys", "paths", "defaults", "progress", "significance", "lazy", "registry"},
    {"space", "autospace", "filechecks", "validate", "outdirs"},  # the search space (a teacher's), checked input and outputs
    {"models"},  # Arch -> model
    {"export"},  # model -> ONNX
    {"profiling", "distill"},  # measuring students, training them
    {"predictors", "supernet", "deploy", "jobs"},  # learned from the profiles; weight sharing; int8; the verbs as jobs
    {"search"},  # the KD-NAS search
    {"report", "testing"},  # reading finished runs; the contract checks
    {"quickstart"},  # the whole pipeline as one library call
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


# --- small, simple functions -------------------------------------------------------------------------------------
# A function's length is its lines after the docstring (nested functions included: a closure is part of its
# parent); its complexity is McCabe's count (see `complexity`; a nested function counts on its own). The CLI only
# parses, calls and renders, so its limits are tighter.
MAX_LINES, MAX_COMPLEXITY = 80, 30
CLI_MAX_LINES, CLI_MAX_COMPLEXITY = 60, 15

# Library functions over the limits, pinned at today's (lines, complexity): they may shrink, never grow.
LIBRARY_OVER: dict[str, tuple[int, int]] = {
    "distill/training.py::train": (69, 36),
    "predictors/checks.py::_check_tree": (52, 38),
    "report/compare.py::compare": (52, 33),
    "supernet/train.py::train_supernet": (105, 52),
}

# CLI functions over the CLI limits (none: every command is a module-level function that parses, calls the library
# and renders). A function added here must shrink later (the test fails on a stale entry).
CLI_OVER: set[str] = set()

Function = ast.FunctionDef | ast.AsyncFunctionDef


def complexity(fn: Function) -> int:
    """McCabe's cyclomatic complexity: 1, plus one per ``if``/``elif``, loop, ``except``, ``case``, conditional
    expression and comprehension ``for``/``if``, plus one per extra operand of ``and``/``or``. A nested function or
    class is not counted here (it is measured on its own)."""
    count = 1

    def visit(node: ast.AST) -> None:
        nonlocal count
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            if isinstance(child, ast.If | ast.IfExp | ast.For | ast.AsyncFor | ast.While | ast.ExceptHandler
                          | ast.match_case):
                count += 1
            elif isinstance(child, ast.BoolOp):
                count += len(child.values) - 1
            elif isinstance(child, ast.comprehension):
                count += 1 + len(child.ifs)
            visit(child)

    visit(fn)
    return count


def length(fn: Function) -> int:
    """Lines from the first statement after the docstring to the function's end."""
    first = fn.body[0]
    has_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)
    start = fn.body[1].lineno if has_doc and len(fn.body) > 1 else first.lineno
    return (fn.end_lineno or start) - start + 1


def functions(tree: ast.AST, prefix: str = "") -> list[tuple[str, Function]]:
    """(qualified name, node) of every function in ``tree``, nested ones as ``outer.inner``."""
    out: list[tuple[str, Function]] = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            out.append((f"{prefix}{node.name}", node))
            out += functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            out += functions(node, f"{prefix}{node.name}.")
        else:
            out += functions(node, prefix)
    return out


def measure_functions() -> dict[str, tuple[int, int]]:
    """``"cli/x.py::f"`` -> (length, complexity) of every function of the package."""
    sizes = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for name, fn in functions(ast.parse(path.read_text(encoding="utf-8"))):
            sizes[f"{path.relative_to(PACKAGE).as_posix()}::{name}"] = (length(fn), complexity(fn))
    return sizes


def size_violations(sizes: dict[str, tuple[int, int]]) -> list[str]:
    bad = []
    for name, (lines, cx) in sorted(sizes.items()):
        cli = name.startswith("cli/")
        max_lines, max_cx = (CLI_MAX_LINES, CLI_MAX_COMPLEXITY) if cli else (MAX_LINES, MAX_COMPLEXITY)
        if cli and name in CLI_OVER:
            continue
        if name in LIBRARY_OVER:
            max_lines, max_cx = max(max_lines, LIBRARY_OVER[name][0]), max(max_cx, LIBRARY_OVER[name][1])
        if lines > max_lines or cx > max_cx:
            bad.append(f"{name}: {lines} lines (max {max_lines}), complexity {cx} (max {max_cx}): split it")
    return bad


def test_the_size_measures_count_what_they_say() -> None:
    src = '''
def f(xs):
    """Doc."""
    total = 0
    for x in xs:
        if x > 0 and x < 10 or x == 99:
            total += x
    try:
        y = [a for a in xs if a]
    except ValueError:
        y = []

    def inner():
        if y:
            return 1

    return total if y else 0
'''
    (name, fn), (inner_name, inner) = functions(ast.parse(src))
    assert (name, inner_name) == ("f", "f.inner")
    assert length(fn) == 14  # from `total = 0` to the last line; the docstring is not counted
    assert complexity(fn) == 1 + 1 + 1 + 2 + 2 + 1 + 1  # for, if, and/or, comprehension (for + if), except, ifexp
    assert complexity(inner) == 2
    assert size_violations({"x.py::f": (81, 1)}) == ["x.py::f: 81 lines (max 80), complexity 1 (max 30): split it"]
    assert size_violations({"cli/x.py::f": (10, 16)})[0].startswith("cli/x.py::f: 10 lines (max 60), complexity 16")
    assert size_violations({"supernet/train.py::train_supernet": (106, 52)})  # a pinned one may not grow


def test_functions_stay_small_and_simple() -> None:
    sizes = measure_functions()
    bad = size_violations(sizes)
    assert not bad, "functions over the size limits:\n" + "\n".join(bad)


def test_the_allowlists_hold_only_todays_offenders() -> None:
    """An entry whose function is gone or now meets the limits is removed, so the lists only shrink."""
    sizes = measure_functions()
    stale = [n for n in CLI_OVER if n not in sizes or (sizes[n][0] <= CLI_MAX_LINES
                                                       and sizes[n][1] <= CLI_MAX_COMPLEXITY)]
    stale += [n for n in LIBRARY_OVER if n not in sizes or (sizes[n][0] <= MAX_LINES and sizes[n][1] <= MAX_COMPLEXITY)]
    assert not stale, f"remove from the allowlists (gone or within the limits now): {sorted(stale)}"


# --- the import policy -------------------------------------------------------------------------------------------
# Imports sit at the top of their module. A function-level import is a lazy load of a heavy library (or of a
# package module that imports one) or a cycle breaker, and says so at the end of its line (ruff's `noqa: PLC0415`,
# then `lazy: <why>`).
MAX_FUNCTION_IMPORTS = 110
LAZY_MARK = re.compile(r"#\s*noqa: PLC0415\s+lazy: \S")
# Modules left out of the count and the marks (none: the CLI's modules follow the policy too, PLC0415 on everywhere).
IMPORTS_PENDING: set[str] = set()
PRESENTATION = {"click", "rich"}  # only in cli/ and progress.py


def function_level_imports(path: Path) -> list[tuple[int, str]]:
    """(line number, the statement's first line) of every import inside a function of the file."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    return [(node.lineno, lines[node.lineno - 1]) for _, fn in functions(ast.parse(text)) for node in ast.walk(fn)
            if isinstance(node, ast.Import | ast.ImportFrom) and _innermost(fn, node)]


def _innermost(fn: Function, node: ast.AST) -> bool:
    """Whether ``node`` belongs to ``fn`` itself, not to a function nested in it (each import counted once)."""
    return not any(node in ast.walk(inner) for inner in ast.walk(fn) if inner is not fn
                   and isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef))


def test_function_level_imports_are_marked_lazy_and_few() -> None:
    unmarked, count = [], 0
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel in IMPORTS_PENDING:
            continue
        found = function_level_imports(path)
        count += len(found)
        unmarked += [f"kdnas_bench/{rel}:{n}: {line.strip()}" for n, line in found if not LAZY_MARK.search(line)]
    assert not unmarked, "function-level imports without the mark (noqa: PLC0415  lazy: <why>):\n" + "\n".join(unmarked)
    assert count <= MAX_FUNCTION_IMPORTS, f"{count} function-level imports (at most {MAX_FUNCTION_IMPORTS}): move some up"


def test_the_import_mark_check_can_fail(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("import os\n\n\ndef f():\n    import torch  # noqa: PLC0415  lazy: torch\n    import json\n\n"
                 "    def g():\n        import re\n")
    found = function_level_imports(f)
    assert [n for n, _ in found] == [5, 6, 9]
    assert [bool(LAZY_MARK.search(line)) for _, line in found] == [True, False, False]


def presentation_imports(path: Path) -> set[str]:
    """The click/rich imports of a file, anywhere in it (top, functions, type-only)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
        found |= {n.split(".")[0] for n in names} & PRESENTATION
    return found


def test_click_and_rich_only_in_the_cli_and_progress() -> None:
    bad = [f"kdnas_bench/{p.relative_to(PACKAGE).as_posix()}: {', '.join(sorted(presentation_imports(p)))}"
           for p in sorted(PACKAGE.rglob("*.py"))
           if p.relative_to(PACKAGE).parts[0] not in ("cli", "progress.py") and presentation_imports(p)]
    assert not bad, "click/rich outside kdnas_bench/cli/ and progress.py (raise KdnasError; report through "\
                    "progress or events):\n" + "\n".join(bad)


def test_package_inits_are_lazy_name_tables() -> None:
    """Every package ``__init__`` is light: a docstring, a lazy name table (``lazy_exports``) with its type-only
    imports, or a plugin registry; nothing else imports at its top (see kdnas_bench/lazy.py)."""
    registries = {"profiling/backends", "search/strategies", "search/evaluators", "cli"}
    for path in sorted(PACKAGE.rglob("__init__.py")):
        rel = path.parent.relative_to(PACKAGE).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if rel in registries:
            continue
        top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        allowed = {"__future__", "typing", "lazy"}
        assert all((n.module or "") in allowed or (n.module or "").endswith("lazy") for n in top
                   if isinstance(n, ast.ImportFrom)) and not any(isinstance(n, ast.Import) for n in top), \
            f"{path.relative_to(PACKAGE.parent)} imports at its top: make it a lazy name table"
        typed = {a.asname or a.name for n in tree.body if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)
                 for i in n.body if isinstance(i, ast.ImportFrom) for a in i.names}
        exported = {e.value for n in tree.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "__all__"
                    and isinstance(n.value, ast.List) for e in n.value.elts if isinstance(e, ast.Constant)}
        defined = {ast.unparse(t) for n in tree.body if isinstance(n, ast.Assign) for t in n.targets}
        assert typed <= exported <= typed | defined, \
            f"{path.relative_to(PACKAGE.parent)}: __all__ and the type-only imports differ"
        module = importlib.import_module(".".join(("kdnas_bench", *path.parent.relative_to(PACKAGE).parts)))
        for name in exported:
            assert getattr(module, name) is not None, name


# --- benchmarks ----------------------------------------------------------------------------------------------------
def benchmark_imports() -> dict[str, list[str]]:
    """Benchmark script -> the kdnas_bench names it imports (``module`` or ``module:name``) and the sibling scripts
    it imports (``bench:<script>``)."""
    scripts = {p.stem for p in BENCHMARKS.glob("*.py")}
    out: dict[str, list[str]] = {}
    for path in sorted(BENCHMARKS.glob("*.py")):
        found: list[str] = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found += [a.name if a.name.startswith("kdnas_bench") else f"bench:{a.name}" for a in node.names
                          if a.name.startswith("kdnas_bench") or a.name in scripts]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                if node.module.startswith("kdnas_bench"):
                    found += [f"{node.module}:{a.name}" for a in node.names]
                elif node.module in scripts:
                    found.append(f"bench:{node.module}")
        out[path.stem] = found
    return out


def private_names(imports: list[str]) -> list[str]:
    """The imports that reach past the public API: an underscore module on the path or an underscore name."""
    return [i for i in imports if not i.startswith("bench:")
            and any(part.startswith("_") for part in i.replace(":", ".").split("."))]


def test_benchmarks_use_only_the_public_api() -> None:
    bad = {script: private_names(found) for script, found in benchmark_imports().items() if private_names(found)}
    assert not bad, f"benchmarks importing private modules or names of kdnas_bench: {bad}"
    assert private_names(["kdnas_bench.search._x:run", "kdnas_bench.space:_parse", "kdnas_bench.space:Arch"]) == [
        "kdnas_bench.search._x:run", "kdnas_bench.space:_parse"]


def test_benchmarks_have_no_import_cycles() -> None:
    graph = {s: {i.removeprefix("bench:") for i in found if i.startswith("bench:")}
             for s, found in benchmark_imports().items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle among benchmark scripts: " + " -> ".join(cycle or [])
