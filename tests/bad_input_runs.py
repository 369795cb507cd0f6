"""Bad-input cases: output and run folders (``--out`` not empty or an input, a run folder locked by a live
writer, another search in the run folder), messages that print user text verbatim, and the small options
(``--space`` a folder, ``--random-subnets``, ``--accelerator cuda:N``, ``--redo``)."""

from __future__ import annotations

import json
import os
import socket

from .bad_input_data import DISTILL_OWN
from .bad_input_support import DISTILL, FINETUNE, PREDICT, SEARCH, Case, Setup, _same_run, both, opt, write

SUPERNET = ("supernet", "train", "--teacher", "{ws}/noteacher", "--task", "sst2", "--data-dir", "{ws}/glue", "--space",
            "{ws}/tiny.toml", "--out", "{ws}/sn")


def _locked_by_a_live_process() -> Setup:
    """The run folder's lock names a live process on this host (the test runner's parent)."""
    return write("run/.kdnas.lock", json.dumps({"pid": os.getppid(), "host": socket.gethostname()}))


RUN_CASES: list[Case] = [
    # --out: an existing non-empty folder, an input, a folder that holds an input
    Case("finetune-out-not-empty", opt(FINETUNE, "--out", "{ws}/preds"), "exists and is not empty"),
    Case("finetune-out-is-data-dir", (*opt(FINETUNE, "--out", "{ws}/glue"), "--overwrite"),
         "--out {ws}/glue is the --data-dir folder"),
    Case("distill-out-not-empty", (*DISTILL, "--out", "{ws}/preds"), "pass --overwrite to replace its files"),
    Case("distill-out-is-teacher", (*opt(DISTILL, "--teacher", "{ws}/preds"), "--out", "{ws}/preds", "--overwrite"),
         "--out {ws}/preds is the --teacher folder"),
    Case("distill-out-holds-train-file", (*DISTILL_OWN, "--out", "{ws}/own", "--overwrite"),
         "--out {ws}/own holds the --train-file"),
    Case("supernet-train-out-is-teacher", opt(opt(SUPERNET, "--teacher", "{ws}/preds"), "--out", "{ws}/preds"),
         "--out {ws}/preds is the --teacher folder"),
    Case("supernet-train-out-other-folder", opt(SUPERNET, "--out", "{ws}/preds"), "exists and holds no supernet"),
    Case("supernet-random-subnets-negative", (*SUPERNET, "--random-subnets", "-1"),
         "--random-subnets must be 0 or more (random sub-networks per step besides the largest and the smallest), got -1"),
    # run folders
    Case("search-run-locked", (*SEARCH, "--budget-ms", "5,10"), "is in use by another kdnas-bench process (pid",
         both(_same_run, _locked_by_a_live_process())),
    Case("search-run-different-names-options", (*SEARCH, "--budget-ms", "7", "--seed", "3"),
         "(--budget-ms 5,10 (stored) vs 7 (now); --seed 0 (stored) vs 3 (now))", _same_run),
    Case("search-fresh-run-budget-too-low", (*opt(SEARCH, "--out", "{ws}/fresh"), "--budget-ms", "0.001"),
         "below the fastest arch"),
    Case("search-redo-without-final", (*SEARCH, "--budget-ms", "5,10", "--redo", "final"),
         "--redo final re-does the final distillation and measurement: pass --final too"),
    Case("search-redo-unknown-step", (*SEARCH, "--budget-ms", "5,10", "--redo", "episodes"), "'episodes' is not"),
    Case("search-space-is-folder", (*opt(SEARCH, "--space", "{ws}/preds"), "--budget-ms", "10"),
         "space file {ws}/preds is a folder; --space takes a space TOML file or 'auto'"),
    # user text printed verbatim: no emoji codes, no markup
    Case("markup-emoji-in-path", (*PREDICT, "--configs", "{ws}/:thumbs_up:.csv"),
         "configs file not found: {ws}/:thumbs_up:.csv"),
    Case("markup-line-number-kept", (*PREDICT, "--configs", "{ws}/broken_mid.jsonl:100:"),
         "{ws}/broken_mid.jsonl:100:"),
    Case("markup-brackets-in-path", (*PREDICT, "--configs", "{ws}/[bold]x[/bold].json"),
         "configs file not found: {ws}/[bold]x[/bold].json"),
    # --accelerator cuda:N: accepted as a name, refused without that GPU
    Case("accelerator-cuda-index-without-gpu", (*DISTILL, "--accelerator", "cuda:99"), "--accelerator cuda"),
    Case("accelerator-bad-name", (*DISTILL, "--accelerator", "cuda:x"), "is not one of auto, cpu, cuda, cuda:N"),
]
