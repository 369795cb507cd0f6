"""The quickstart prints, before each step, the command that does it by hand. Here the pipeline runs with its
expensive library calls replaced by recorders, and every printed command is parsed by the CLI's own parser: the
values it names must be the ones the library call got, and the search command must build, through the search
verb's own code, the very request the quickstart ran. Also the request's own checks."""

from __future__ import annotations

import shlex
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import numpy as np
import pytest

from kdnas_bench.cli import cli
from kdnas_bench.cli.task_options import OWN, resolve_task
from kdnas_bench.distill.data import get_task
from kdnas_bench.errors import KdnasError
from kdnas_bench.keys import DatasetKey
from kdnas_bench.profiling.timing import TimingConfig
from kdnas_bench.quickstart import QuickstartRequest
from kdnas_bench.quickstart import pipeline as qp
from kdnas_bench.quickstart.steps import TIMING_OPTIONS, SearchStep, number


class Stop(Exception):
    """Raised by a recorder once the CLI has built what it would run."""


def parse(command: str) -> tuple[str, dict[str, Any]]:
    """The verb and the parsed options of ``kdnas-bench ...``, as the CLI's parser reads them."""
    argv = shlex.split(command)
    assert argv[0] == "kdnas-bench"
    argv, cmd, path = argv[1:], cli, []
    while isinstance(cmd, click.Group):
        path.append(argv[0])
        cmd = cmd.commands[argv.pop(0)]
    with cmd.make_context(" ".join(path), argv) as ctx:
        return " ".join(path), dict(ctx.params)


def cli_search_request(command: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The SearchRequest the search verb builds from ``command`` (caught where it would start the search)."""
    seen: dict[str, Any] = {}

    def record(req: Any, *args: Any, **kwargs: Any) -> Any:
        seen["request"] = req
        raise Stop

    monkeypatch.setattr("kdnas_bench.search.api.run_search", record)
    monkeypatch.setattr("kdnas_bench.cli.search_cmds.run_search", record, raising=False)
    with pytest.raises(Stop):
        cli.main(args=shlex.split(command)[1:], prog_name="kdnas-bench", standalone_mode=False)
    return seen["request"]


def cli_task(params: dict[str, Any]) -> Any:
    """The task a verb's task options name, resolved as the verb resolves them."""
    task = resolve_task(params["task"], params["data_dir"], required=False, **{k: params[k] for k in OWN})
    return get_task(task)


class Recorder:
    """Stands in for the pipeline's expensive library calls and keeps what each got."""

    def __init__(self) -> None:
        self.calls: dict[str, Any] = {}
        self.documents: list[dict[str, Any]] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in ("run_campaign", "fit_and_save", "finetune", "load_predictor", "run_search", "load_run",
                     "resolve_students", "compare", "write_documents", "compare_pngs"):
            monkeypatch.setattr(qp, name, getattr(self, name))
        monkeypatch.setattr(qp, "make_backend", lambda name, threads, **kw: SimpleNamespace(name=name))
        monkeypatch.setattr(qp, "Canary", lambda backend: None)
        monkeypatch.setattr(qp, "run_pngs", lambda story, folder: [])

    def run_campaign(self, space: Any, dataset: Any, backend: Any, config: Any, *, canary: Any, progress: Any) -> Any:
        self.calls["profile"] = {"dataset": dataset, "backend": backend.name, "config": config}
        progress(SimpleNamespace(rows_after=config.samples), None)
        return SimpleNamespace(measured=config.samples, failed=0, median_cv=0.01, rows_after=config.samples)

    def fit_and_save(self, device_id: str, backend: str, threads: int, **kwargs: Any) -> Any:
        self.calls["fit"] = {"device_id": device_id, "backend": backend, "threads": threads, **kwargs}
        return kwargs["out"] / device_id, {"metrics": {"heldout": {"within_10pct": 0.9, "mape": 0.05, "rows": 4}}}

    def finetune(self, task: Any, **kwargs: Any) -> Any:
        self.calls["teacher finetune"] = {"task": task, **kwargs}
        return SimpleNamespace(primary_metric="accuracy", primary=0.8, weak_warning=lambda: None)

    def load_predictor(self, device_id: str, backend: str, threads: int, root: Path) -> Any:
        def interval(pairs: list[Any]) -> Any:
            return SimpleNamespace(mid=np.full(len(pairs), 30.0), high=np.full(len(pairs), 2.0))

        return SimpleNamespace(predict_interval=interval)

    def run_search(self, req: Any, on_event: Any, progress: bool) -> Any:
        self.calls["search"] = req
        return SimpleNamespace(summary=lambda: {"winners": [{"arch": "2,128,2,512"}]})

    def load_run(self, run_dir: Path) -> Any:
        self.calls["report"] = {"run_dir": run_dir}

    def resolve_students(self, spec: str) -> Any:
        self.calls["compare"] = {"students": spec}
        return []

    def compare(self, students: Any, *, predictors_root: Path, measure: bool, on_measure: Any) -> Any:
        self.calls["compare"].update(predictors=predictors_root, measure=measure)

    def write_documents(self, doc_fn: Any, png: Path, html: Path, md: Path, make_pngs: Any) -> list[Path]:
        self.documents.append({"png": png, "html": html, "md": md})
        return make_pngs(png)

    def compare_pngs(self, result: Any, folder: Path, store: Path | None) -> list[Path]:
        self.calls["compare"]["store"] = store
        return []


def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **options: Any) -> tuple[Recorder, Any, list[Any]]:
    rec = Recorder()
    rec.install(monkeypatch)
    events: list[Any] = []
    req = QuickstartRequest(out=str(tmp_path / "qs"), accelerator="cpu", **options)
    result = qp.run_quickstart(req, lambda kind, data: events.append((kind, data)))
    return rec, result, events


def check_commands(rec: Recorder, result: Any, events: list[Any], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every step's printed command against the call that ran; returns the verbs in order."""
    printed = [data["command"] for kind, data in events if kind == "step"]
    assert printed == [s.step.command for s in result.steps]
    verbs = []
    for command in printed:
        verb, params = parse(command)
        verbs.append(verb)
        CHECKS[verb](rec, params)
        if verb == "search":
            assert cli_search_request(command, monkeypatch) == rec.calls["search"]
    return verbs


def check_profile(rec: Recorder, params: dict[str, Any]) -> None:
    got = rec.calls["profile"]
    cfg = got["config"]
    assert (params["backend"], params["threads"]) == (got["backend"], 1)
    assert (params["samples"], params["seed"]) == (cfg.samples, cfg.seed)
    assert Path(got["dataset"].path).is_relative_to(params["store"])
    assert {k: params[k] for k in TIMING_OPTIONS} == {k: getattr(cfg.timing, k) for k in TIMING_OPTIONS}
    assert TimingConfig(**{k: params[k] for k in TIMING_OPTIONS}) == cfg.timing  # the rest: the defaults


def check_fit(rec: Recorder, params: dict[str, Any]) -> None:
    got = rec.calls["fit"]
    assert {k: params[k] for k in ("device_id", "backend", "threads", "samples")} == {
        k: got[k] for k in ("device_id", "backend", "threads", "samples")}
    assert (Path(params["store"]), Path(params["out"])) == (got["store"], got["out"])
    assert params["source_root"] is not None and Path(params["source_root"]) == got["source_root"]
    assert DatasetKey(params["from_device"], params["backend"], params["threads"]) == got["from_key"]


def check_teacher(rec: Recorder, params: dict[str, Any]) -> None:
    got = rec.calls["teacher finetune"]
    assert cli_task(params) == get_task(got["task"])
    assert {k: params[k] for k in ("data_dir", "max_examples", "epochs", "seed", "accelerator")} == {
        k: got[k] for k in ("data_dir", "max_examples", "epochs", "seed", "accelerator")}
    assert Path(params["out"]) == got["out"] and params["threads"] == 1


def check_report(rec: Recorder, params: dict[str, Any]) -> None:
    assert Path(params["run_dir"]) == rec.calls["report"]["run_dir"]
    assert {k: Path(params[p]) for k, p in (("png", "png"), ("html", "html_path"), ("md", "md_path"))} == rec.documents[0]


def check_compare(rec: Recorder, params: dict[str, Any]) -> None:
    got = rec.calls["compare"]
    assert (params["students"], params["measure"]) == (got["students"], got["measure"])
    assert (Path(params["predictors_dir"]), Path(params["store"])) == (got["predictors"], got["store"])
    assert {k: Path(params[p]) for k, p in (("png", "png"), ("html", "html_path"), ("md", "md_path"))} == rec.documents[1]


CHECKS = {"profile": check_profile, "fit": check_fit, "teacher finetune": check_teacher, "search": lambda r, p: None,
          "report": check_report, "compare": check_compare}


def test_without_task_data_each_command_names_what_ran(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = tmp_path / "passages.txt"
    text.write_text("".join(f"passage {i}: a sentence or two of plain text to distil on.\n" for i in range(50)))
    rec, result, events = run(tmp_path, monkeypatch, text=str(text), allow_weak_teacher=True, proxy_epochs=1.25)
    assert check_commands(rec, result, events, monkeypatch) == ["profile", "fit", "search", "report", "compare"]
    req = rec.calls["search"]
    assert req.agnostic and req.text == str(text) and not req.allow_weak_teacher  # no teacher to judge
    assert (result.out / "quickstart.json").is_file() and result.summary()["steps"][2]["command"].startswith(
        "kdnas-bench search ")
    intro = next(data for kind, data in events if kind == "intro")
    assert "task-agnostic KD on" in intro["data"] and "passages.txt" in intro["data"]


@pytest.mark.parametrize("evaluator", ["supernet", "proxy-distill", "proxy"])
def test_with_glue_data_each_command_names_what_ran(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_glue: Path,
                                                    evaluator: str) -> None:
    rec, result, events = run(tmp_path, monkeypatch, data_dir=str(tiny_glue), evaluator=evaluator,
                              allow_weak_teacher=evaluator != "supernet", proxy_examples=101, teacher_examples=50)
    verbs = check_commands(rec, result, events, monkeypatch)
    assert verbs == ["profile", "fit", "teacher finetune", "search", "report", "compare"]
    req = rec.calls["search"]
    named = "proxy-distill" if evaluator == "proxy" else evaluator  # the old spelling runs as the evaluator's name
    assert req.task == "sst2" and req.evaluator == named and req.teacher == str(result.out / "teacher")
    assert req.final.baselines == ("minilm",) and req.allow_weak_teacher == (evaluator != "supernet")
    if evaluator == "supernet":
        assert (req.supernet.examples, req.supernet.rerank_top, req.supernet.rerank_examples) == (50, 2, 50)


def test_with_data_of_ones_own_each_command_names_what_ran(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           tiny_glue: Path) -> None:
    from kdnas_bench.distill.taskfiles import own_task

    task = own_task(train_file=str(tiny_glue / "SST-2" / "train.tsv"), validation_file=str(tiny_glue / "SST-2" /
                    "dev.tsv"), label_column="label", name="reviews")
    rec, result, events = run(tmp_path, monkeypatch, task=task)
    assert check_commands(rec, result, events, monkeypatch)[2] == "teacher finetune"
    assert rec.calls["search"].task == task and rec.calls["teacher finetune"]["task"] == task


def test_a_reused_teacher_is_not_a_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_glue: Path) -> None:
    (tmp_path / "qs" / "teacher").mkdir(parents=True)
    (tmp_path / "qs" / "teacher" / "metrics.json").write_text("{}")
    rec, result, events = run(tmp_path, monkeypatch, data_dir=str(tiny_glue))
    assert [s.step.name for s in result.steps] == ["profile", "fit", "search", "report", "compare"]
    assert "teacher finetune" not in rec.calls
    assert {"text": f"teacher: reusing {result.out / 'teacher'}"} in [d for k, d in events if k == "message"]


def test_a_budget_below_the_fastest_student_is_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec, result, events = run(tmp_path, monkeypatch, speedup=100.0)  # 30 ms / 100 is below every upper bound (2 ms)
    assert result.budget_ms == 2.1 and rec.calls["search"].budgets_ms == (2.1,)
    assert any(d.get("warning") and "budget raised to 2.1 ms" in d["text"] for k, d in events if k == "message")


def test_search_command_of_a_request_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request field the printed command does not carry would make the two differ: the check catches it."""
    (tmp_path / "predictors").mkdir()
    req = QuickstartRequest(out=str(tmp_path), episodes=2, candidates=3)
    step = qp.search_step(req, "agnostic", device_id="dev-x", budget_ms=12.5, space=str(qp.default_space()),
                          out=tmp_path, accelerator="cpu")
    assert cli_search_request(step.command, monkeypatch) == step.request
    from dataclasses import replace

    drifted = SearchStep(replace(step.request, seed=7, strategy="random"))  # seed printed, strategy not
    assert "--seed 7" in drifted.command
    assert cli_search_request(drifted.command, monkeypatch) != drifted.request


def test_numbers_are_printed_as_typed_and_exactly() -> None:
    assert [number(v) for v in (1.0, 2.0, 0.5, 0.2, 3)] == ["1", "2", "0.5", "0.2", "3"]
    assert float(number(1.2345678)) == 1.2345678  # "{:g}" would print 1.23457


@pytest.mark.parametrize(("options", "message"), [
    ({"profile_rows": 0}, "--profile-rows must be positive, got 0"),
    ({"proxy_epochs": -1.0}, "--proxy-epochs must be positive, got -1.0"),
    ({"speedup": float("nan")}, "--speedup must be positive, got nan"),
    ({"transfer_rows": 40}, r"--transfer-rows \(40\) must be below --profile-rows \(40\)"),
    ({"evaluator": "agnostic"}, "--evaluator: unknown 'agnostic' \\(choose from proxy-distill, supernet\\)"),
])
def test_the_request_checks_its_values_in_one_line(options: dict[str, Any], message: str) -> None:
    with pytest.raises(KdnasError, match=message):
        QuickstartRequest(**options)


def test_the_command_line_defaults_are_the_requests(run_cli) -> None:
    code, out, _ = run_cli("quickstart", "--help")
    flat = " ".join(out.split())
    req = QuickstartRequest()
    assert code == 0 and f"[default: {req.out}]" in flat and f"[default: {req.compare_students}]" in flat
    assert not req.with_task and QuickstartRequest(data_dir="glue").with_task
    from kdnas_bench.cli.quickstart_cmds import quickstart

    named = {p.name: p.default for p in quickstart.params if p.name in req.__dataclass_fields__}
    assert named.keys() == req.__dataclass_fields__.keys()  # every option is a field of the request, by its name
    for name, default in named.items():  # a flag or an option without a default: the request's False or None
        unset = default is None or type(default).__name__ == "Sentinel"
        assert getattr(req, name) in (None, False) if unset else default == getattr(req, name), name
