"""The Trainer's basics on tiny models: ``--max-length`` (auto from the data, or a number; recorded and
stated), evaluation per epoch with the best checkpoint restored, early stopping, and TensorBoard logging."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from kdnas_bench.distill.data import encode, get_task, load_split
from kdnas_bench.distill.lengths import LEGACY, check_fits, encode_pair, parse_max_length, trained_max_length
from kdnas_bench.distill.losses import GroundTruth
from kdnas_bench.distill.selection import Selection, make_selection
from kdnas_bench.distill.teacher import load_teacher
from kdnas_bench.distill.tracking import check_log_to
from kdnas_bench.distill.training import TrainConfig, prepare_data, train
from kdnas_bench.errors import KdnasError
from kdnas_bench.models import build_model
from kdnas_bench.space import Arch

from .helpers import TINY_SPACE, save_tiny, sst2_glue


@pytest.fixture(scope="module")
def glue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sst2_glue(tmp_path_factory.mktemp("glue"), train=120, dev=60)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_teacher(save_tiny(tmp_path_factory.mktemp("tiny"), 2), task="sst2").tokenizer


# -- max length ---------------------------------------------------------------------------------------------
def test_auto_keeps_every_example_whole_and_gives_the_old_tokens(glue: Path, tokenizer: Any) -> None:
    task = get_task("sst2")
    train, dev = load_split(task, "train", glue), load_split(task, "dev", glue)
    train_enc, dev_enc, lengths = encode_pair(train, dev, tokenizer, "auto", 512)
    longest = max(int(train_enc.lengths().max()), int(dev_enc.lengths().max()))
    assert lengths.chosen == "auto" and lengths.longest == longest
    assert lengths.max_length == math.ceil(longest / 8) * 8 and lengths.max_length < LEGACY
    assert (lengths.cut_train, lengths.cut_dev) == (0, 0) and "no example is cut" in lengths.describe()
    old = encode(train, tokenizer, max_length=LEGACY)  # the fixed 128 of before: the same tokens
    assert train_enc.input_ids == old.input_ids and train_enc.token_type_ids == old.token_type_ids


def test_a_given_length_cuts_longer_examples_and_counts_them(glue: Path, tokenizer: Any) -> None:
    task = get_task("sst2")
    train, dev = load_split(task, "train", glue), load_split(task, "dev", glue)
    whole = encode(train, tokenizer, max_length=LEGACY)
    train_enc, dev_enc, lengths = encode_pair(train, dev, tokenizer, 16, 512)
    assert int(train_enc.lengths().max()) == 16 and int(dev_enc.lengths().max()) == 16
    assert lengths.cut_train == int((whole.lengths() > 16).sum()) > 0
    assert train_enc.input_ids == encode(train, tokenizer, max_length=16).input_ids  # as the tokenizer cuts
    assert "are longer and are cut to 16 tokens" in lengths.describe()


def test_a_length_beyond_the_model_is_refused_in_one_line(glue: Path, tokenizer: Any, tmp_path: Path) -> None:
    with pytest.raises(KdnasError, match=r"--max-length 600 is more than the model reads \(512 positions\)"):
        prepare_data(tokenizer, "sst2", data_dir=glue, max_length=600, positions=512)
    with pytest.raises(KdnasError, match="at most 64"):
        prepare_data(tokenizer, "sst2", data_dir=glue, max_length=100, positions=64)
    model = save_tiny(tmp_path / "m", 2)
    with pytest.raises(KdnasError, match="more than the model reads"):
        check_fits(100_000, model)
    check_fits("auto", model)
    for bad in ("0", "-3", "long"):
        with pytest.raises(KdnasError, match="--max-length must be"):
            parse_max_length(bad)


def test_finetune_records_and_distill_reuses_the_length(glue: Path, tmp_path: Path) -> None:
    from kdnas_bench.distill import distill, finetune

    backbone = save_tiny(tmp_path / "backbone", 2)
    ft = finetune("sst2", backbone=backbone, data_dir=glue, max_examples=32, epochs=0.5, out=tmp_path / "t",
                  max_length=24)
    saved = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert saved["config"]["max_length"] == 24 and saved["config"]["max_length_auto"] is False
    assert saved["config"]["cut_examples"]["dev"] > 0 and "selection" not in saved  # off by default
    assert trained_max_length(tmp_path / "t") == 24 == ft.config["max_length"]
    res = distill(tmp_path / "t", "sst2", "1,32,2,64", data_dir=glue, max_examples=32, epochs=0.5,
                  allow_weak_teacher=True)
    assert res.config["max_length_auto"] is True and res.config["max_length"] % 8 == 0
    assert res.config["cut_examples"] == {"train": 0, "dev": 0}
    assert trained_max_length(tmp_path / "nothing-here") == LEGACY  # an old folder: the fixed 128


# -- evaluation per epoch, best checkpoint, early stopping -----------------------------------------------
def _tiny_run(glue: Path, tokenizer: Any, scores: list[float], patience: int | None,
              epochs: float = 4.0) -> tuple[Any, Selection, list[dict[str, torch.Tensor]], int]:
    data = prepare_data(tokenizer, "sst2", data_dir=glue, max_examples=32)
    model = build_model(Arch(1, 32, 2, 64), num_labels=2, seed=0)
    seen: list[dict[str, torch.Tensor]] = []

    def score(m: Any) -> dict[str, float]:  # scripted dev scores; keeps each evaluated state
        seen.append({k: v.detach().clone() for k, v in m.state_dict().items()})
        return {"accuracy": scores[len(seen) - 1]}

    selection = Selection(score, "accuracy", patience)
    train(model, data.train, [GroundTruth(1.0, False)], TrainConfig(epochs=epochs, batch_size=16, lr=1e-3),
          selection=selection)
    return model, selection, seen, math.ceil(len(data.train) / 16)


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_the_best_epoch_is_restored_when_the_last_is_worse(glue: Path, tokenizer: Any) -> None:
    model, selection, seen, per_epoch = _tiny_run(glue, tokenizer, [0.5, 0.9, 0.7, 0.6], None)
    assert [h["step"] for h in selection.history] == [per_epoch * e for e in (1, 2, 3, 4)]
    assert [h["epoch"] for h in selection.history] == [1, 2, 3, 4]
    assert selection.best_index == 1 and not selection.stopped_early
    assert _same(model.state_dict(), seen[1]) and not _same(seen[1], seen[3])
    doc = selection.to_dict()
    assert doc["restored_best"] is True and doc["best_epoch"] == 2
    assert "restored the best checkpoint: epoch 2 (accuracy 0.9000)" in selection.describe()


def test_evaluating_each_epoch_does_not_change_the_training(glue: Path, tokenizer: Any) -> None:
    model, selection, _, _ = _tiny_run(glue, tokenizer, [0.1, 0.2, 0.3, 0.4], None)
    plain = build_model(Arch(1, 32, 2, 64), num_labels=2, seed=0)
    data = prepare_data(tokenizer, "sst2", data_dir=glue, max_examples=32)
    train(plain, data.train, [GroundTruth(1.0, False)], TrainConfig(epochs=4.0, batch_size=16, lr=1e-3))
    assert selection.to_dict()["restored_best"] is False and _same(model.state_dict(), plain.state_dict())


def test_early_stopping_stops_after_n_evaluations_without_improvement(glue: Path, tokenizer: Any) -> None:
    model, selection, seen, per_epoch = _tiny_run(glue, tokenizer, [0.8, 0.7, 0.9, 0.6, 0.5, 0.4], 2, epochs=6)
    assert len(selection.history) == 5 and selection.stopped_early  # best at 3, then 2 worse: stop after 5
    assert selection.history[-1]["step"] == 5 * per_epoch
    assert _same(model.state_dict(), seen[2]) and "stopped early after 5 evaluations" in selection.describe()


def test_eval_options_are_checked() -> None:
    assert make_selection("end", None, dict, "m") is None
    with pytest.raises(KdnasError, match="--early-stopping needs --eval-every epoch"):
        make_selection("end", 2, dict, "m")
    with pytest.raises(KdnasError, match="--early-stopping must be a positive"):
        make_selection("epoch", 0, dict, "m")
    with pytest.raises(KdnasError, match="--eval-every must be one of"):
        make_selection("step", None, dict, "m")


# -- the CLI: stated length, per-epoch evaluation, TensorBoard -------------------------------------------
def test_distill_cli_states_the_length_restores_the_best_and_logs(run_cli: Any, glue: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install 'kdnas-bench[track]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    teacher = save_tiny(tmp_path / "teacher", 2)
    code, out, err = run_cli("distill", "--teacher", str(teacher), "--task", "sst2", "--data-dir", str(glue),
                             "--arch", "1,32,2,64", "--max-examples", "32", "--epochs", "3", "--batch-size", "16",
                             "--max-length", "16", "--eval-every", "epoch", "--early-stopping", "1",
                             "--log-to", "tensorboard", "--out", str(tmp_path / "s"), "--allow-weak-teacher")
    assert code == 0, err
    assert "max length" in out and "16 tokens; cut:" in out and "best epoch" in out
    assert "dev examples are longer than --max-length 16 and were cut" in err
    doc = json.loads((tmp_path / "s" / "metrics.json").read_text())
    history = doc["selection"]["history"]
    assert doc["config"]["max_length"] == 16 and 1 <= len(history) <= 3
    best = max(h["metrics"]["accuracy"] for h in history)
    assert doc["metrics"]["accuracy"] == best  # the saved student is the best evaluated one
    events = EventAccumulator(str(tmp_path / "s" / "logs"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"train/loss", "train/lr", "dev/accuracy"} <= set(tags)
    assert len(events.Scalars("dev/accuracy")) == len(history)
    assert all(np.isfinite(e.value) for e in events.Scalars("train/loss"))


def test_log_to_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KdnasError, match="'wandb' is not one of tensorboard"):
        check_log_to("wandb")
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(KdnasError, match=r"--log-to tensorboard needs the tensorboard package: pip install"):
        check_log_to("tensorboard")


# -- supernet: the length in its recipe; old folders (no key) are the old 128 -------------------------------
def test_supernet_records_its_length_and_old_folders_still_load(glue: Path, tmp_path: Path) -> None:
    from kdnas_bench.distill.finetuning import finetune
    from kdnas_bench.space import SearchSpace
    from kdnas_bench.supernet import SupernetConfig, SupernetError
    from kdnas_bench.supernet.train import ensure_supernet

    finetune("sst2", backbone=save_tiny(tmp_path / "b", 2), data_dir=glue, max_examples=32, epochs=0.5,
             out=tmp_path / "t")
    space = SearchSpace.load(TINY_SPACE)
    cfg = SupernetConfig(examples=32, epochs=0.5, batch_size=16, importance_examples=16)
    _, doc = ensure_supernet(str(tmp_path / "t"), "sst2", space, tmp_path / "net", data_dir=glue, cfg=cfg, max_length=24)
    assert doc["recipe"]["max_length"] == 24
    recipe_file = tmp_path / "net" / "supernet.json"
    old = json.loads(recipe_file.read_text())
    del old["recipe"]["max_length"]  # a folder written before --max-length
    recipe_file.write_text(json.dumps(old))
    _, again = ensure_supernet(str(tmp_path / "t"), "sst2", space, tmp_path / "net", data_dir=glue, cfg=cfg,
                               max_length="auto")
    assert again["recipe"]["max_length"] == LEGACY
    with pytest.raises(SupernetError, match="was trained with --max-length 128, not 24"):
        ensure_supernet(str(tmp_path / "t"), "sst2", space, tmp_path / "net", data_dir=glue, cfg=cfg, max_length=24)


def test_supernet_train_cli_states_the_length_and_refuses_another(run_cli: Any, glue: Path, tmp_path: Path) -> None:
    from kdnas_bench.distill.finetuning import finetune

    finetune("sst2", backbone=save_tiny(tmp_path / "b", 2), data_dir=glue, max_examples=32, epochs=0.5,
             out=tmp_path / "t")
    base = ("supernet", "train", "--teacher", str(tmp_path / "t"), "--task", "sst2", "--data-dir", str(glue),
            "--space", str(TINY_SPACE), "--max-examples", "32", "--epochs", "0.5", "--batch-size", "16",
            "--out", str(tmp_path / "net"))
    logged = ("--log-to", "tensorboard") if importlib.util.find_spec("tensorboard") else ()
    code, out, err = run_cli(*base, "--max-length", "16", *logged)
    assert code == 0, err
    out = " ".join(out.split())  # the line wraps at the terminal's width
    assert "max length 16 tokens (given);" in out and "dev examples are longer and are cut to 16 tokens" in out
    assert json.loads((tmp_path / "net" / "supernet.json").read_text())["recipe"]["max_length"] == 16
    if logged:
        assert any(f.stat().st_size > 0 for f in (tmp_path / "net" / "logs").iterdir())
    code, out, err = run_cli(*base, "--max-length", "32")
    assert code != 0 and "was trained with --max-length 16, not 32" in err and len(err.strip().splitlines()) == 1
    code, out, err = run_cli(*base)  # auto: the folder's own length, reused
    assert code == 0 and "16 tokens" in out


def test_the_search_final_trains_with_the_asked_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install 'kdnas-bench[track]')")
    from types import SimpleNamespace

    from kdnas_bench.keys import DatasetKey
    from kdnas_bench.search import final
    from kdnas_bench.search.recipe import Recipe
    from kdnas_bench.search.request import FinalOptions
    from kdnas_bench.search.result import SearchResult, Winner
    from kdnas_bench.space import Shape

    asked: dict[str, Any] = {}
    distilled = SimpleNamespace(metrics={"accuracy": 0.8}, primary=0.8, train_examples=10, train_seconds=1.0)
    monkeypatch.setattr("kdnas_bench.distill.trainer.distill", lambda *a, **k: asked.update(k) or distilled)
    monkeypatch.setattr(final, "this_machine_is", lambda *a: False)
    result = SearchResult([Winner(50.0, Arch(1, 32, 2, 64), 1.0, 1.2, 0.7, 0.7)], 1, str(tmp_path), [])
    options = FinalOptions(max_length=48, eval_every="epoch", early_stopping=2, log_to="tensorboard")
    job = final.FinalJob("teacher", "sst2", DatasetKey("dev-x", "torch", 1), Shape(1, 128),
                         options.recipe(Recipe(losses="logits")))
    final.finalize(result, job)
    assert (asked["max_length"], asked["eval_every"], asked["early_stopping"]) == (48, "epoch", 2)
    assert asked["log_to"] == "tensorboard" and asked["log_dir"] == str(tmp_path / "final" / "1L-32H-2A-64F" / "logs")
    assert FinalOptions().training() == {"max_length": "auto", "eval_every": "end", "early_stopping": None,
                                         "log_to": None}
    with pytest.raises(KdnasError, match="--max-length must be positive"):
        FinalOptions(max_length=0)
    with pytest.raises(KdnasError, match="--early-stopping needs --eval-every epoch"):
        FinalOptions(early_stopping=3)


def test_task_agnostic_distillation_keeps_its_best_epoch(tmp_path: Path) -> None:
    from kdnas_bench.distill import distill
    from kdnas_bench.distill.agnostic import prepare_text, stdlib_text

    teacher = load_teacher(save_tiny(tmp_path / "t", 2))
    data = prepare_text(teacher.tokenizer, stdlib_text(), max_examples=64, seed=0)
    plain = distill(teacher, "agnostic", "1,32,2,64", data=data, epochs=2, seed=0, batch_size=16)
    res = distill(teacher, "agnostic", "1,32,2,64", data=data, epochs=2, seed=0, batch_size=16, eval_every="epoch")
    assert res.selection is not None and len(res.selection["history"]) == 2
    scores = [h["metrics"]["kd_score"] for h in res.selection["history"]]
    assert res.metrics["kd_score"] == pytest.approx(max(scores), rel=1e-6)
    if not res.selection["restored_best"]:  # the last epoch was best: the same student as without evaluating
        assert res.metrics["kd_score"] == pytest.approx(plain.metrics["kd_score"], rel=1e-6)
