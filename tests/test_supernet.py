"""The supernet: extraction is exact, save/load round-trips, a killed training resumes to the same tensors,
a supernet of another teacher / space / task is refused in one line, and the search uses it end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from kdnas_bench.distill import get_task, load_teacher, prepare_data
from kdnas_bench.distill.data import batches
from kdnas_bench.space import Arch, SearchSpace
from kdnas_bench.supernet import SupernetConfig, SupernetError, check_recipe, load, train_supernet
from kdnas_bench.supernet.store import CKPT_META, CKPT_WEIGHTS

from .conftest import TINY_SPACE
from .helpers import GLUE, save_tiny, search_args

pytestmark = pytest.mark.skipif(not (GLUE / "SST-2" / "dev.tsv").is_file(), reason="../shared/data/glue not present")
SST2 = get_task("sst2")
CFG = SupernetConfig(examples=96, epochs=1.0, batch_size=16, importance_examples=64)


def _other_teacher(path: Path) -> Path:
    """A tiny teacher with other weights than ``tiny_teacher``."""
    from transformers import BertForSequenceClassification

    save_tiny(path, 2)
    model = BertForSequenceClassification.from_pretrained(path)
    with torch.no_grad():
        model.classifier.bias.add_(1.0)
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def parts(tiny_teacher: Path, tiny_glue: Path):
    teacher = load_teacher(tiny_teacher, task="sst2")
    data = prepare_data(teacher.tokenizer, "sst2", data_dir=tiny_glue, max_examples=96)
    return teacher, data, SearchSpace.load(TINY_SPACE)


@pytest.fixture(scope="module")
def trained(parts, tmp_path_factory: pytest.TempPathFactory):
    teacher, data, space = parts
    folder = tmp_path_factory.mktemp("supernet")
    net, doc = train_supernet(teacher, SST2, space, folder, train_data=data.train, cfg=CFG)
    return net, doc, folder


def _inputs(data) -> dict:
    batch = next(batches(data.dev, 16, shuffle=False))
    return {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


def test_extracted_subnetwork_saved_as_bert_gives_the_supernets_logits(parts, trained, tmp_path: Path) -> None:
    from transformers import BertForSequenceClassification

    _, data, _ = parts
    net, doc, _ = trained
    assert doc["complete"] and doc["steps"] == 6 and doc["largest"] == "2,64,4,128"
    inputs = _inputs(data)
    for arch in (Arch(1, 32, 2, 64), Arch(2, 64, 2, 128), Arch(2, 32, 4, 64)):
        net.extract(arch).save_pretrained(tmp_path / str(arch).replace(",", "-"))
        standalone = BertForSequenceClassification.from_pretrained(tmp_path / str(arch).replace(",", "-")).eval()
        with torch.no_grad():
            torch.testing.assert_close(standalone(**inputs).logits, net.logits(arch, inputs), atol=1e-6, rtol=1e-6)
    later = net.skeleton(Arch(2, 32, 4, 64))  # not the first skeleton: built on meta, without weights or their init
    assert all(p.is_meta for p in later.parameters()) and not any(b.is_meta for b in later.buffers())
    with pytest.raises(SupernetError, match="not a sub-network"):
        net.extract(Arch(3, 64, 4, 128))


def test_training_moved_the_shared_weights_and_kept_the_teacher_start(parts, trained) -> None:
    teacher, data, _ = parts
    net, _, folder = trained
    again, _ = load(folder)
    assert all(torch.equal(again.params[k], net.params[k]) for k in net.params)
    assert json.loads((folder / "supernet.json").read_text())["recipe"]["task"] == "sst2"
    inputs = _inputs(data)
    with torch.no_grad():
        assert not torch.allclose(net.logits(Arch(2, 64, 4, 128), inputs), teacher.model(**inputs).logits)
    assert not (folder / CKPT_META).exists()


def test_killed_training_resumes_to_the_same_tensors(parts, trained, tmp_path: Path) -> None:
    teacher, data, space = parts
    net, _, _ = trained
    stopped = train_supernet(teacher, SST2, space, tmp_path, train_data=data.train, cfg=CFG, stop_after=3)
    assert stopped is None and (tmp_path / CKPT_META).is_file()
    assert json.loads((tmp_path / CKPT_META).read_text())["step"] == 3
    resumed, doc = train_supernet(teacher, SST2, space, tmp_path, train_data=data.train, cfg=CFG)  # type: ignore[misc]
    assert doc["resumed_from_step"] == 3
    assert all(torch.equal(resumed.params[k], net.params[k]) for k in net.params)
    # a checkpoint torn by a kill during its first write: training restarts cleanly from step 0
    torn = tmp_path / "torn"
    train_supernet(teacher, SST2, space, torn, train_data=data.train, cfg=CFG, stop_after=2)
    (torn / CKPT_WEIGHTS).write_bytes(b"garbage")
    restarted, doc = train_supernet(teacher, SST2, space, torn, train_data=data.train, cfg=CFG)  # type: ignore[misc]
    assert doc["resumed_from_step"] is None
    assert all(torch.equal(restarted.params[k], net.params[k]) for k in net.params)


def test_supernet_of_another_teacher_space_or_task_is_refused(parts, trained, tmp_path: Path) -> None:
    teacher, data, space = parts
    _, doc, folder = trained
    other = load_teacher(_other_teacher(tmp_path / "other"), task="sst2")
    with pytest.raises(SupernetError, match="another teacher"):
        check_recipe(doc, folder, teacher=other, task=SST2, space=space)
    smaller = SearchSpace.from_dict({"arch": {"layers": [1], "hidden": [32], "heads": [2], "ffn": [64]},
                                     "shapes": {"seq": [8], "batch": [1]}})
    with pytest.raises(SupernetError, match="another space"):
        check_recipe(doc, folder, teacher=teacher, task=SST2, space=smaller)
    with pytest.raises(SupernetError, match="task sst2, not mrpc"):
        check_recipe(doc, folder, teacher=teacher, task=get_task("mrpc"), space=space)
    with pytest.raises(SupernetError, match="other data or options"):
        train_supernet(teacher, SST2, space, folder, train_data=data.train, cfg=SupernetConfig(examples=96, epochs=2.0))
    wide = SearchSpace.from_dict({"arch": {"layers": [1], "hidden": [128], "heads": [2], "ffn": [64]},
                                  "shapes": {"seq": [8], "batch": [1]}})
    with pytest.raises(SupernetError, match="does not fit inside the teacher"):
        train_supernet(teacher, SST2, wide, tmp_path / "w", train_data=data.train, cfg=CFG)


def test_cli_search_with_the_supernet_evaluator(preds: Path, tiny_teacher: Path, tiny_glue: Path,
                                               tmp_path: Path, run_cli) -> None:

    run = tmp_path / "run"
    extra = ["--evaluator", "supernet", "--supernet-examples", "96", "--supernet-epochs", "1", "--rerank-top", "2",
             "--rerank-examples", "64", "--rerank-epochs", "1", "--final", "--final-examples", "64", "--final-epochs", "1"]
    code, out, err = run_cli(*search_args(preds, tiny_teacher, tiny_glue, run, *extra))
    assert code == 0, err
    data = json.loads(out)
    (w,) = data["winners"]
    assert w["rerank"][0]["examples"] == 64 and len(w["rerank"][0]["candidates"]) == 2
    assert len(w["rerank"]) == 1  # a second rung would hold the one survivor: skipped
    assert w["final_init"] == "supernet" and (Path(w["student_dir"]) / "model.safetensors").is_file()
    assert (run / "supernet" / "supernet.json").is_file() and len((run / "rerank.jsonl").read_text().splitlines()) == 2
    evals = [json.loads(x) for x in (run / "evaluations.jsonl").read_text().splitlines()]
    assert all(e["seconds"] < 30 for e in evals)
    code2, out2, _ = run_cli(*search_args(preds, tiny_teacher, tiny_glue, run, *extra))  # resume: nothing redone
    assert code2 == 0 and json.loads(out2)["evaluated_now"] == 0
    # the same supernet folder with another teacher: one line, exit 2
    other = _other_teacher(tmp_path / "other")
    code, out, err = run_cli(*search_args(preds, other, tiny_glue, tmp_path / "run2", "--evaluator", "supernet",
                                    "--supernet", str(run / "supernet")))
    assert code == 2 and "another teacher" in err and len(err.strip().splitlines()) == 1


def test_cli_supernet_bad_input_is_one_line(preds: Path, tiny_teacher: Path, tiny_glue: Path,
                                           tmp_path: Path, run_cli) -> None:
    from .conftest import ROOT

    wide = str(ROOT / "search" / "spaces" / "bert.toml")
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = {"does not fit inside the teacher": ["--evaluator", "supernet", "--space", wide],
             "is not a folder": ["--evaluator", "supernet", "--supernet", str(afile)],
             "needs a GLUE task": ["--evaluator", "supernet", "--table", str(afile)]}
    for message, extra in cases.items():
        code, _, err = run_cli(*search_args(preds, tiny_teacher, tiny_glue, tmp_path / "r", *extra))
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (message, err)
        assert not (tmp_path / "r" / "supernet").exists()
    code, _, err = run_cli("supernet", "train", "--teacher", str(tiny_teacher), "--task", "sst2", "--data-dir",
                           str(tiny_glue), "--out", str(tmp_path / "sn"), "--losses", "logits,attn")
    assert code == 2 and "supernet losses must be" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "sn").exists()


def test_hidden_targets_are_the_teachers_own_channels(parts) -> None:
    """The largest sub-network is the rewired teacher: at the start its layers match their targets (the teacher's
    hidden states in importance order) up to the fp16 cache; a shallower, narrower one does not."""
    from kdnas_bench.distill.cache import cache_teacher
    from kdnas_bench.distill.inherit import measure_importance
    from kdnas_bench.supernet.model import Supernet
    from kdnas_bench.supernet.train import subnet_hidden_loss

    teacher, data, _ = parts
    imp = measure_importance(teacher.model, data.train, examples=32, regression=False, seed=0)
    net = Supernet.from_teacher(teacher.model, imp, regression=False)
    cache = cache_teacher(teacher, data.train, frozenset({"hidden"}))
    batch = next(batches(data.train, 16, shuffle=False))
    t_out = cache.outputs(batch)
    assert not torch.equal(imp.hidden, torch.arange(len(imp.hidden)))  # a real permutation, not the identity
    with torch.no_grad():
        full = Arch(2, 64, 4, 128)
        out = net.forward(full, batch, hidden=True)
        targets = net.teacher_hidden_targets(full, t_out.hidden)
        assert [t.shape[-1] for t in targets] == [64, 64]
        assert float(subnet_hidden_loss(net, full, out.hidden_states, t_out, batch)) < 1e-4
        small = Arch(1, 32, 2, 64)
        out = net.forward(small, batch, hidden=True)
        assert [t.shape[-1] for t in net.teacher_hidden_targets(small, t_out.hidden)] == [32]
        assert float(subnet_hidden_loss(net, small, out.hidden_states, t_out, batch)) > 1e-3


def test_supernet_trained_with_the_hidden_term(parts, trained, tmp_path: Path) -> None:
    teacher, data, space = parts
    net0, _, _ = trained
    cfg = SupernetConfig(examples=96, epochs=1.0, batch_size=16, importance_examples=64, losses="logits,ce,hidden:0.5")
    net, doc = train_supernet(teacher, SST2, space, tmp_path, train_data=data.train, cfg=cfg)  # type: ignore[misc]
    assert doc["complete"] and doc["recipe"]["config"]["losses"] == "logits,ce,hidden:0.5"
    assert any(not torch.equal(net.params[k], net0.params[k]) for k in net.params)  # the term moved the weights
    for bad in ("hidden", "attn,logits"):
        with pytest.raises(Exception, match="supernet losses"):
            SupernetConfig(losses=bad)
