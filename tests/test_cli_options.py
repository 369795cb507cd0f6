"""One vocabulary across verbs, checked on the whole click tree (so an option added on any branch is checked at
merge): every option has a one-line help; options of the same name agree on type, default and ``multiple``, and a
choice offers the same names (a verb may offer a subset of them, never other names)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import click
import pytest

from kdnas_bench.cli import cli
from kdnas_bench.cli.options import MAY_REPEAT, RECIPE_OPTIONS


def _options() -> list[tuple[str, click.Option]]:
    out: list[tuple[str, click.Option]] = []

    def walk(cmd: click.Command, path: str) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}".strip())
            return
        out.extend((path, p) for p in cmd.params if isinstance(p, click.Option) and not p.hidden)

    walk(cli, "")
    return out


OPTIONS = _options()


def _type_key(opt: click.Option) -> Any:
    t = opt.type
    return (type(t).__name__, getattr(t, "kind", None), getattr(t, "min", None), opt.is_flag)


def _choices(opt: click.Option) -> set[str]:
    return {str(c) for c in getattr(opt.type, "choices", ()) or ()}


def _default(opt: click.Option) -> Any:
    d = opt.default
    return None if d is None or type(d).__name__ == "Sentinel" or repr(d).endswith("UNSET") else d


def test_the_tree_is_walked() -> None:
    verbs = {path for path, _ in OPTIONS}
    assert {"profile", "measure", "fit", "predict", "predictors", "devices", "search", "compare", "report",
            "distill", "teacher finetune", "supernet train", "quickstart", "remeasure"} <= verbs
    assert len(OPTIONS) > 150


def test_every_option_has_a_plain_one_line_help() -> None:
    missing = [f"{path} {opt.opts[0]}" for path, opt in OPTIONS if not (opt.help or "").strip()]
    assert not missing, f"options without help: {missing}"
    for path, opt in OPTIONS:
        assert "%%" not in (opt.help or ""), f"{path} {opt.opts[0]}: a literal %% in its help"
        assert "\n" not in (opt.help or "").strip(), f"{path} {opt.opts[0]}: help is more than one line"


def test_help_prints_no_double_percent(run_cli) -> None:
    code, out, _ = run_cli("profile", "--help")
    assert code == 0 and "±10 percent" in out and "%%" not in out


def _by_name() -> dict[str, list[tuple[str, click.Option]]]:
    groups: dict[str, list[tuple[str, click.Option]]] = defaultdict(list)
    for path, opt in OPTIONS:
        for name in opt.opts:
            if name.startswith("--"):
                groups[name].append((path, opt))
    return {k: v for k, v in groups.items() if len(v) > 1}


@pytest.mark.parametrize("name", sorted(_by_name()))
def test_same_name_same_type_default_and_multiple(name: str) -> None:
    uses = _by_name()[name]
    types = {path: _type_key(opt) for path, opt in uses}
    assert len(set(types.values())) == 1, f"{name} has different types across verbs: {types}"
    choices = {path: _choices(opt) for path, opt in uses}
    widest = max(choices.values(), key=len)  # a verb may offer fewer of the same names (quickstart: task evaluators)
    assert all(c <= widest for c in choices.values()), f"{name} has different choices across verbs: {choices}"
    if name not in MAY_REPEAT:
        multiple = {path: opt.multiple for path, opt in uses}
        assert len(set(multiple.values())) == 1, f"{name}: multiple differs across verbs: {multiple}"
    if name not in RECIPE_OPTIONS:
        defaults = {path: _default(opt) for path, opt in uses if not opt.required}
        assert len({repr(v) for v in defaults.values()}) <= 1, f"{name} has different defaults: {defaults}"


def test_the_shared_vocabulary() -> None:
    named = _by_name()
    for path, opt in named["--threads"]:
        assert opt.default == 1 and not opt.required, path
    from kdnas_bench.profiling.backends import BACKENDS

    for path, opt in [*named["--backend"], *named.get("--from-backend", [])]:
        assert isinstance(opt.type, click.Choice) and list(opt.type.choices) == list(BACKENDS), path
    assert {p for p, _ in named["--budget-ms"]} >= {"search", "compare"}
    assert {p for p, _ in named["--arch"]} >= {"predict", "measure", "distill", "supernet evaluate"}


def test_readme_predict_example_works_as_written(run_cli) -> None:
    code, out, err = run_cli("predict", "--device", "intel-xeon-processor-2c-cfff2f", "--backend", "torch", "--arch",
                             "4,312,12,1200", "--seq", "128", "--batch", "1")
    assert code == 0, err
    assert "intel-xeon-processor-2c-cfff2f" in out and "4,312,12,1200" in out


def test_named_students_wherever_an_arch_is(run_cli) -> None:
    import json

    code, out, err = run_cli("predict", "--device", "intel-xeon-processor-2c-cfff2f", "--arch", "tinybert-4l",
                             "--arch", "4L-312H-12A-1200F", "--arch", "4,312,12,1200", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 3 and len({r["latency_ms"] for r in rows}) == 1  # three spellings of one arch


@pytest.mark.parametrize("args,hint", [
    (("predict", "--device", "intel-xeon-processor-2c-cfff2e", "--arch", "tinybert-4l"),
     "did you mean 'intel-xeon-processor-2c-cfff2f'?"),
    (("predict", "--device", "intel-xeon-processor-2c-cfff2f", "--backend", "onnxruntme", "--arch", "tinybert-4l"),
     "did you mean 'onnxruntime'"),
    (("predict", "--device", "intel-xeon-processor-2c-cfff2f", "--arch", "tinybret-4l"), "did you mean 'tinybert-4l'"),
    (("compare", "--students", "minilm-l5"), "did you mean 'minilm-l6'"),
])
def test_unknown_names_get_did_you_mean(args: tuple[str, ...], hint: str, run_cli) -> None:
    code, _, err = run_cli(*args)
    assert code == 2 and hint in err and len(err.strip().splitlines()) == 1, err


def test_students_one_separator_and_the_old_form(run_cli) -> None:
    import json

    code, out, err = run_cli("compare", "--students", "bert-tiny,4,256,4,1024,2L-128H-2A-256F", "--json",
                             "--device", "intel-xeon-processor-2c-cfff2f")
    assert code == 0, err
    assert "deprecated" not in err
    names = list(dict.fromkeys(r["student"] for r in json.loads(out)))
    assert names == ["bert-tiny", "4,256,4,1024", "2,128,2,256"]
    code, out2, err = run_cli("compare", "--students", "bert-tiny;4,256,4,1024;2,128,2,256", "--json",
                              "--device", "intel-xeon-processor-2c-cfff2f")
    assert code == 0 and "deprecated" in err
    assert json.loads(out2) == json.loads(out)


def test_deprecated_profile_seq_alias(run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """``profile --seq 32,64`` (the old name of --seqs) still reaches the command, with a note."""
    from kdnas_bench.errors import KdnasError
    from kdnas_bench.space import SearchSpace

    seen: list[Any] = []

    def stop(self: Any, seq: Any = None, batch: Any = None) -> Any:
        seen.append((seq, batch))
        raise KdnasError("stopped before profiling")

    monkeypatch.setattr(SearchSpace, "restrict_shapes", stop)
    code, _, err = run_cli("profile", "--seq", "32,64", "--batches", "2")
    assert code == 2 and "stopped before profiling" in err
    assert "--seq is deprecated" in err and "--seqs" in err
    assert seen == [([32, 64], [2])]
