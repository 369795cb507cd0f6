"""Bad input, table-driven: every verb and every file kind the tool reads, each case an input and the
exit code and message fragment it must give.

Each case runs in a fresh copy of a small workspace (committed predictors, a small profile store, a
finished table-driven search run, spaces, a GLUE folder, a configs file) after its ``setup`` has broken
one thing. It must exit non-zero with exactly one line on stderr holding the fragment, no traceback, and
every file in the workspace must be byte-identical afterwards (nothing stored changed, nothing
created). Most cases run the CLI in-process; a case that could kill the process (a model file that
crashed LightGBM) runs in a subprocess.

The rows live in ``bad_input_options.py`` (options, output paths), ``bad_input_inputs.py`` (spaces, stores,
configs files) and ``bad_input_folders.py`` (predictors, tables, run folders, checkpoints, TSVs); the ways to
break a workspace in ``bad_input_support.py``. To add a verb or a file kind: add rows there (``{ws}`` in an
argument is the workspace folder).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .bad_input_data import DATA_CASES, GOOD_OWN
from .bad_input_folders import FOLDER_CASES
from .bad_input_inputs import INPUT_CASES
from .bad_input_options import OPTION_CASES
from .bad_input_runs import RUN_CASES
from .bad_input_support import CONFIG, DEV, GOOD_TSV, SEARCH, STORE_DEV, Case, _same_run, _tsv, snapshot
from .conftest import ROOT, cli_subprocess_cmd
from .helpers import real_rows, write_store

CASES: list[Case] = [*OPTION_CASES, *INPUT_CASES, *FOLDER_CASES, *DATA_CASES, *RUN_CASES]
MACHINE_ADVICE = ("warning: this machine has device id ", "warning: the canary runs ")


# -- the workspace -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kdnas_bench.cli import main

    ws = tmp_path_factory.mktemp("pristine")
    shutil.copytree(ROOT / "predictors", ws / "preds")
    write_store(ws / "store", STORE_DEV, real_rows().head(40))
    shutil.copy(ROOT / "search" / "tables" / "sst2-minilm-students.json", ws / "table.json")
    shutil.copy(ROOT / "search" / "spaces" / "minilm-students.toml", ws / "students.toml")
    shutil.copy(ROOT / "tests" / "data" / "tiny.toml", ws / "tiny.toml")
    (ws / "afile").write_text("a plain file\n")
    (ws / "configs.json").write_text(json.dumps([CONFIG]))
    for split in ("train", "dev"):
        (ws / "glue" / "SST-2").mkdir(parents=True, exist_ok=True)
        (ws / "glue" / "SST-2" / f"{split}.tsv").write_bytes(_tsv(GOOD_TSV))
    (ws / "own").mkdir()
    for name in ("train.csv", "dev.csv"):  # a task of one's own: a CSV with renamed columns and text labels
        (ws / "own" / name).write_text("\n".join(GOOD_OWN) + "\n")
    argv = [a.replace("{ws}", str(ws)) for a in (*SEARCH, "--budget-ms", "5,10", "--json")]
    try:
        main(argv)
    except SystemExit as exc:
        assert not exc.code
    return ws


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, pristine: Path, tmp_path: Path, run_cli) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(pristine, ws)
    if case.setup is not None:
        case.setup(ws)
    before = snapshot(ws)
    argv = [a.replace("{ws}", str(ws)) for a in case.argv]
    if case.subprocess:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(cli_subprocess_cmd(*argv), capture_output=True, text=True, env=env, timeout=120)
        code, err = proc.returncode, proc.stderr
        assert code > 0, f"killed by signal {-code}" if code < 0 else f"exit {code}"
    else:
        code, _, err = run_cli(*argv)
    # the machine advisories (a predictor's device id on another CPU, a canary outside its band) depend on the machine
    # the suite runs on, not on the input; in-process runs drop them with every UserWarning (pyproject's filter)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(MACHINE_ADVICE)]
    assert code == case.code, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert len(lines) == 1, err
    assert case.fragment.replace("{ws}", str(ws)) in lines[0], err
    assert snapshot(ws) == before, "a stored file changed or a new file appeared"


def test_the_table_covers_every_verb_and_file_kind() -> None:
    from kdnas_bench.cli import cli

    verbs = {c.argv[0] if c.argv[0] not in ("space", "teacher", "supernet") else " ".join(c.argv[:2]) for c in CASES}
    commands = {name for name, cmd in cli.commands.items() if not hasattr(cmd, "commands")}
    commands |= {f"{g} {n}" for g, grp in cli.commands.items() for n in getattr(grp, "commands", {})}
    assert commands - {"predictors"} <= verbs, commands - verbs  # `predictors` lists broken ones, see below
    kinds = ("space", "devices", "configs", "model", "meta", "table", "log", "run-json", "result", "tsv", "own-")
    assert all(any(k in c.id for c in CASES) for k in kinds)
    assert len(CASES) >= 100


# -- a torn run log is healed, not failed on ------------------------------------------------------------
def test_torn_last_line_is_set_aside_and_redone_once(pristine: Path, tmp_path: Path, run_cli) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(pristine, ws)
    _same_run(ws)
    log = ws / "run" / "evaluations.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    fragment = lines[-1][: len(lines[-1]) // 2]  # a crash mid-write: the last record cut in half
    log.write_bytes(b"".join(lines[:-1]) + fragment)
    (ws / "run" / "result.json").unlink()
    argv = [a.replace("{ws}", str(ws)) for a in (*SEARCH, "--budget-ms", "5,10")]

    code, out, err = run_cli("report", str(ws / "run"), "--json")  # report only reads: counts, moves nothing
    assert code == 0, err
    assert json.loads(out)["skipped_records"] == 1 and json.loads(out)["evaluations"] == len(lines) - 1
    assert log.read_bytes().endswith(fragment)

    code, out, err = run_cli(*argv, "--json")
    assert code == 0, err
    assert "set aside a torn last line" in err and "Traceback" not in err
    assert json.loads(out)["evaluated_now"] == 1  # that one evaluation, redone once
    healed = log.read_bytes()
    assert healed.startswith(b"".join(lines[:-1])) and healed.endswith(b"\n")
    assert [json.loads(line)["arch"] for line in healed.splitlines()] == [json.loads(line)["arch"] for line in lines]
    assert (ws / "run" / "evaluations.jsonl.torn").read_bytes() == fragment + b"\n"

    code, out, err = run_cli(*argv, "--json")  # healed: a second rerun redoes nothing and notes nothing
    assert code == 0 and json.loads(out)["evaluated_now"] == 0 and "set aside" not in err
    code, out, _ = run_cli("report", str(ws / "run"), "--json")
    assert json.loads(out)["skipped_records"] == 0


def test_report_says_how_many_records_it_skipped(pristine: Path, tmp_path: Path, run_cli) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(pristine, ws)
    log = ws / "run" / "evaluations.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0][:30] + lines[1], *lines[2:]]) + "\n")  # an old torn line with a record on it
    code, out, err = run_cli("report", str(ws / "run"))
    assert code == 0, err
    assert "Skipped 1 record(s)" in out
    assert len(lines) - 2 == json.loads(run_cli("report", str(ws / "run"), "--json")[1])["evaluations"]


FUZZ = """
import random, sys
import lightgbm as lgb
from kdnas_bench.predictors.checks import ModelCheckError, check_model_text
text = open(sys.argv[1]).read()
rng = random.Random(int(sys.argv[2]))
variants = [text[:n] for n in range(0, len(text), 997)]
for _ in range(300):
    j = rng.randrange(len(text)); k = j + rng.choice([1, 2, 40, 800]); op = rng.random()
    variants.append(text[:j] + text[k:] if op < 0.4 else text[:j] + rng.choice("0123456789 -=\\nx.[]:") + text[j + 1:]
                    if op < 0.7 else text[:j] + text[j:k] + text[j:])
refused = 0
for v in variants:
    try:
        check_model_text(v, "m", n_features=14)
    except ModelCheckError:
        refused += 1
        continue
    try:
        lgb.Booster(model_str=v)  # passed the checks: LightGBM must load it or raise, never crash
    except Exception:
        pass
print(len(variants), refused)
"""


def test_no_truncation_or_edit_of_a_model_file_crashes_the_process() -> None:
    """Truncations and random edits of a committed model.txt: each is refused by the checks or handed to
    LightGBM, which must then load it or raise; the process (a subprocess here) must never die of a signal."""
    model = ROOT / "predictors" / DEV / "torch-t1" / "model.txt"
    proc = subprocess.run(
        [sys.executable, "-c", FUZZ, str(model), "0"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-500:]}"
    total, refused = map(int, proc.stdout.splitlines()[-1].split())
    assert total > 300 and refused > total // 2
