"""Bad-input cases: predictor folders, compare, search (tables, run logs), report (run folders), distill and
teacher finetune (checkpoints, TSVs)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .bad_input_support import (
    DEV,
    DISTILL,
    FINETUNE,
    GOOD_TSV,
    PRED,
    PREDICT,
    PREDICT_ARCH,
    SEARCH,
    SHAPES,
    Case,
    _cut,
    _nonutf8_log,
    _same_run,
    _set,
    _torn_only,
    _tsv,
    both,
    edit_json,
    edit_log,
    edit_model,
    meta_field,
    opt,
    record_field,
    space,
    write,
)

# a saved model folder as export reads it before loading any weights (config.json, safetensors, a tokenizer)
MODEL_CONFIG = {"model_type": "bert", "num_hidden_layers": 1, "hidden_size": 64, "num_attention_heads": 2,
                "intermediate_size": 128, "architectures": ["BertForSequenceClassification"]}


def _saved_model(ws: Path) -> None:
    for name, data in (("config.json", json.dumps(MODEL_CONFIG)), ("model.safetensors", "weights"), ("vocab.txt", "[PAD]")):
        write(f"m/{name}", data)(ws)


FOLDER_CASES: list[Case] = [
    # predictor folders
    Case(
        "predict-unknown-device",
        ("predict", "--device", "nowhere", "--predictors", "{ws}/preds", "--arch", "1,64,2,128", "--seq", "8", "--batch", "1"),
        "unknown device id 'nowhere'",
    ),
    Case(
        "predict-no-such-threads",
        ("predict", "--device", DEV, "--predictors", "{ws}/preds", "--arch", "1,64,2,128", "--threads", "3"),
        "no predictor for",
    ),
    Case("model-truncated-was-segfault", PREDICT_ARCH, "corrupt predictor model", edit_model(_cut(95)), subprocess=True),
    Case(
        "model-cut-in-parameters",
        PREDICT_ARCH,
        "corrupt predictor model",
        edit_model(lambda t: t[: t.index("[boosting") + 200]),
        subprocess=True,
    ),
    Case("model-cut-mid-tree", PREDICT_ARCH, "corrupt predictor model", edit_model(_cut(50)), subprocess=True),
    Case("model-cut-early", PREDICT_ARCH, "corrupt predictor model", edit_model(_cut(1))),
    Case("model-empty", PREDICT_ARCH, "the file is empty", edit_model(lambda t: "")),
    Case("model-not-lightgbm", PREDICT_ARCH, "not a LightGBM text model", edit_model(lambda t: "hello\n")),
    Case(
        "model-tree-sizes",
        PREDICT_ARCH,
        "tree_sizes does not match",
        edit_model(lambda t: t.replace("tree_sizes=7", "tree_sizes=9", 1)),
    ),
    Case(
        "model-child-out-of-tree",
        PREDICT_ARCH,
        "points outside the tree",
        edit_model(lambda t: re.sub(r"left_child=-?\d+", "left_child=99", t, count=1)),  # the first tree's first child
    ),
    Case("model-no-num-cat", PREDICT_ARCH, "num_cat must be 0", edit_model(lambda t: t.replace("num_cat=0\n", "", 1))),
    Case("model-checksum", PREDICT_ARCH, "checksum does not match", write(f"{PRED}/model.txt", "tree\n")),
    Case("model-not-utf8", PREDICT_ARCH, "cannot read predictor model", write(f"{PRED}/model.txt", b"tree\n\xff\n")),
    Case("model-missing", PREDICT_ARCH, "cannot read predictor model", lambda ws: (ws / PRED / "model.txt").unlink()),
    Case(
        "meta-coef-short",
        PREDICT_ARCH,
        "field 'model.base_coef' must list 9 numbers, got 8 values",
        edit_json(f"{PRED}/meta.json", lambda d: d["model"]["base_coef"].pop()),
    ),
    Case(
        "meta-coef-text",
        PREDICT_ARCH,
        "model.base_coef' holds a non-number",
        edit_json(f"{PRED}/meta.json", lambda d: d["model"]["base_coef"].__setitem__(0, "x")),
    ),
    Case(
        "meta-range-text",
        PREDICT_ARCH,
        "field 'model.ranges.layers' must be [low, high]",
        meta_field("model.ranges.layers", "12"),
    ),
    Case("meta-range-reversed", PREDICT_ARCH, "field 'model.ranges.seq'", meta_field("model.ranges.seq", [256, 16])),
    Case(
        "meta-range-missing",
        PREDICT_ARCH,
        "field 'model.ranges.tokens'",
        edit_json(f"{PRED}/meta.json", lambda d: d["model"]["ranges"].pop("tokens")),
    ),
    Case("meta-halfwidth-text", PREDICT_ARCH, "model.log_halfwidth", meta_field("model.log_halfwidth", "wide")),
    Case("meta-params-list", PREDICT_ARCH, "model.params' must be an object", meta_field("model.params", [])),
    Case("meta-not-json", PREDICT_ARCH, "corrupt predictor metadata", write(f"{PRED}/meta.json", "{")),
    Case("meta-not-utf8", PREDICT_ARCH, "corrupt predictor metadata", write(f"{PRED}/meta.json", b'{"kind": "\xff"}')),
    Case("meta-list", PREDICT_ARCH, "is not a kdnas-bench latency predictor", write(f"{PRED}/meta.json", "[]")),
    Case("meta-kind", PREDICT_ARCH, "is not a kdnas-bench latency predictor", meta_field("kind", "other")),
    Case("meta-format", PREDICT_ARCH, "predictor format 99", meta_field("format_version", 99)),
    Case("meta-feature-schema", PREDICT_ARCH, "feature schema 99", meta_field("feature_schema", 99)),
    Case("meta-no-files", PREDICT_ARCH, "no model files listed", meta_field("files", None)),
    Case(
        "compare-corrupt-model",
        ("compare", "--no-measure", "--predictors", "{ws}/preds", "--students", "bert-mini"),
        "corrupt predictor model",
        edit_model(_cut(95)),
        subprocess=True,
    ),
    Case(
        "compare-coef-short",
        ("compare", "--no-measure", "--predictors", "{ws}/preds", "--students", "bert-mini"),
        "must list 9 numbers",
        edit_json(f"{PRED}/meta.json", lambda d: d["model"]["base_coef"].pop()),
    ),
    Case(
        "search-corrupt-model", (*SEARCH, "--budget-ms", "10"), "corrupt predictor model", edit_model(_cut(30)), subprocess=True
    ),
    # compare options
    Case("compare-seq-zero", ("compare", "--no-measure", "--predictors", "{ws}/preds", "--seq", "0"), "--seq must be positive"),
    Case("compare-unknown-student", ("compare", "--no-measure", "--predictors", "{ws}/preds", "--students", "gpt-17"), "gpt-17"),
    Case(
        "compare-bad-arch",
        ("compare", "--no-measure", "--predictors", "{ws}/preds", "--students", "4,310,12,1200"),
        "must divide",
    ),
    Case(
        "compare-run-bad-json",
        ("compare", "--no-measure", "--predictors", "{ws}/preds", "--students", "{ws}/run"),
        "{ws}/run",
        write("run/result.json", "{oops"),
    ),
    # search options and files
    Case("search-budget-inf", (*SEARCH, "--budget-ms", "inf"), "must be positive finite numbers"),
    Case("search-budget-nan", (*SEARCH, "--budget-ms", "10,nan"), "must be positive finite numbers"),
    Case("search-budget-negative", (*SEARCH, "--budget-ms", "-5"), "must be positive finite numbers"),
    Case("search-budget-text", (*SEARCH, "--budget-ms", "fast"), "--budget-ms must be numbers"),
    Case("search-budget-repeat", (*SEARCH, "--budget-ms", "5,5"), "repeat"),
    Case("search-budget-too-low", (*SEARCH, "--budget-ms", "0.001"), "below the fastest arch"),
    Case("search-reward-w-nan", (*SEARCH, "--budget-ms", "10", "--reward-w", "nan"), "--reward-w must be a finite number"),
    Case("search-reward-w-positive", (*SEARCH, "--budget-ms", "10", "--reward-w", "0.5"), "must be <= 0"),
    Case("search-proxy-epochs-nan", (*SEARCH, "--budget-ms", "10", "--proxy-epochs", "nan"), "--proxy-epochs must be a finite"),
    Case("search-final-epochs-inf", (*SEARCH, "--budget-ms", "10", "--final-epochs", "inf"), "--final-epochs must be a finite"),
    Case("search-episodes-zero", (*SEARCH, "--budget-ms", "10", "--episodes", "0"), "--episodes must be positive"),
    Case("search-seq-int64", (*SEARCH, "--budget-ms", "10", "--seq", str(2**64)), "64-bit"),
    Case("search-unknown-task", (*opt(SEARCH, "--task", "nosuchtask"), "--budget-ms", "10"), "nosuchtask"),
    Case("search-text-with-glue", (*SEARCH, "--budget-ms", "10", "--text", "{ws}/afile"), "--text is for --task agnostic"),
    Case(
        "search-space-huge",
        (*opt(SEARCH, "--space", "{ws}/bad.toml"), "--budget-ms", "10"),
        "100,000,000 values",
        space("[arch]\nlayers = {min = 1, max = 100000000}\nhidden = [64]\nheads = [2]\nffn = [128]\n" + SHAPES),
    ),
    Case("table-missing", (*opt(SEARCH, "--table", "{ws}/nope.json"), "--budget-ms", "10"), "table not found"),
    Case("table-not-utf8", (*SEARCH, "--budget-ms", "10"), "cannot read table", write("table.json", b'[{"layers": "\xff"}]')),
    Case(
        "table-metric-nan",
        (*SEARCH, "--budget-ms", "10"),
        "metric must be a finite number",
        write("table.json", '[{"layers": 1, "hidden": 128, "heads": 2, "ffn": 256, "metric": NaN}]'),
    ),
    Case(
        "table-arch-text",
        (*SEARCH, "--budget-ms", "10"),
        "must be integers",
        write("table.json", '[{"layers": "one", "hidden": 128, "heads": 2, "ffn": 256, "metric": 0.8}]'),
    ),
    Case(
        "table-no-metric",
        (*SEARCH, "--budget-ms", "10"),
        "lacks columns metric",
        write("table.json", '[{"layers": 1, "hidden": 128, "heads": 2, "ffn": 256}]'),
    ),
    Case(
        "search-log-wrong-type",
        (*SEARCH, "--budget-ms", "5,10"),
        "evaluations.jsonl:2: field 'latency_ms' must be a positive finite number",
        record_field("latency_ms", "fast"),
    ),
    Case("search-log-arch-bad", (*SEARCH, "--budget-ms", "5,10"), "field 'arch'", record_field("arch", {"layers": 1})),
    Case(
        "search-log-not-utf8",
        (*SEARCH, "--budget-ms", "5,10"),
        "evaluations.jsonl:2: not UTF-8 text",
        both(_same_run, edit_log(_nonutf8_log)),
    ),
    Case("search-log-rewards-list", (*SEARCH, "--budget-ms", "5,10"), "field 'rewards'", record_field("rewards", [1])),
    Case("search-run-json-not-json", (*SEARCH, "--budget-ms", "5,10"), "cannot read run metadata", write("run/run.json", "{")),
    Case("search-run-different", (*SEARCH, "--budget-ms", "7"), "holds a different search", _same_run),
    # report: run folders
    Case("report-not-a-run", ("report", "{ws}/preds"), "is not a search run"),
    Case("report-run-json-not-json", ("report", "{ws}/run"), "cannot read run metadata", write("run/run.json", "{")),
    Case("report-run-json-list", ("report", "{ws}/run"), "must hold a JSON object", write("run/run.json", "[]")),
    Case(
        "report-budgets-text",
        ("report", "{ws}/run"),
        "field 'config.reward.budgets_ms'",
        edit_json("run/run.json", lambda d: _set(d, "config.reward.budgets_ms", ["five"])),
    ),
    Case("report-log-wrong-type", ("report", "{ws}/run"), "field 'metric' must be a number", record_field("metric", "high")),
    Case("report-log-episode-negative", ("report", "{ws}/run"), "field 'episode'", record_field("episode", -1)),
    Case("report-log-not-utf8", ("report", "{ws}/run"), "not UTF-8 text", edit_log(_nonutf8_log)),
    Case(
        "report-log-only-torn",
        ("report", "{ws}/run"),
        "has no evaluations yet (1 unreadable line(s) skipped)",
        edit_log(_torn_only),
    ),
    Case("report-result-not-json", ("report", "{ws}/run"), "cannot read run result", write("run/result.json", "{")),
    Case(
        "report-result-winner-arch",
        ("report", "{ws}/run"),
        "winners[0].arch",
        edit_json("run/result.json", lambda d: _set(d, "winners", [{"arch": {"layers": 1}}])),
    ),
    Case(
        "report-result-winner-budget",
        ("report", "{ws}/run"),
        "winners[0]: field 'budget_ms'",
        edit_json("run/result.json", lambda d: d["winners"][0].update(budget_ms="x")),
    ),
    # distill and teacher finetune (all fail before any model is loaded or trained)
    Case("distill-epochs-nan", (*DISTILL, "--epochs", "nan"), "--epochs must be a finite number"),
    Case("distill-lr-inf", (*DISTILL, "--lr", "inf"), "--lr must be a finite number"),
    Case("distill-temperature-nan", (*DISTILL, "--temperature", "nan"), "--temperature must be a finite number"),
    Case("distill-batch-size-zero", (*DISTILL, "--batch-size", "0"), "--batch-size must be positive"),
    Case("distill-bad-arch", opt(DISTILL, "--arch", "1,64,3,128"), "must divide"),
    Case("distill-bad-losses", (*DISTILL, "--losses", "telepathy"), "telepathy"),
    Case("distill-unknown-task", opt(DISTILL, "--task", "nosuchtask"), "nosuchtask"),
    Case("supernet-train-epochs-nan", ("supernet", "train", "--teacher", "{ws}/t", "--task", "sst2", "--space",
                                       "{ws}/s.toml", "--out", "{ws}/sn", "--epochs", "nan"),
         "--epochs must be a finite number"),
    Case("supernet-evaluate-missing", ("supernet", "evaluate", "--supernet", "{ws}/nosupernet", "--arch", "1,64,2,128"),
         "no trained supernet in"),
    Case("finetune-epochs-nan", (*FINETUNE, "--epochs", "nan"), "--epochs must be a finite number"),
    Case("finetune-lr-nan", (*FINETUNE, "--lr", "nan"), "--lr must be a finite number"),
    Case("finetune-max-examples-zero", (*FINETUNE, "--max-examples", "0"), "--max-examples must be positive"),
    Case("finetune-seed-int64", (*FINETUNE, "--seed", str(2**63)), "64-bit"),
    Case("finetune-data-dir-missing", opt(FINETUNE, "--data-dir", "{ws}/noglue"), "--data-dir not found"),
    Case(
        "tsv-not-utf8",
        FINETUNE,
        "train.tsv:3: not utf-8 text",
        write("glue/SST-2/train.tsv", _tsv(GOOD_TSV).replace(b"number 1\t", b"numb\xe9r 1\t")),
    ),
    Case(
        "tsv-bad-label", FINETUNE, "label 'maybe' is not one of", write("glue/SST-2/train.tsv", _tsv([*GOOD_TSV, "odd\tmaybe"]))
    ),
    Case("tsv-missing-column", FINETUNE, "missing column(s)", write("glue/SST-2/train.tsv", b"text\tlabel\nhello\t1\n")),
    # export (a saved model folder) and a model folder given as --arch: checked before any weights load
    Case("export-no-model", ("export", "--model", "{ws}/nomodel", "--out", "{ws}/onnx"), "no such folder"),
    Case("export-model-is-file", ("export", "--model", "{ws}/afile", "--out", "{ws}/onnx"), "is a file"),
    Case("export-no-config", ("export", "--model", "{ws}/glue", "--out", "{ws}/onnx"), "has no config.json"),
    Case("export-not-bert", ("export", "--model", "{ws}/m", "--out", "{ws}/onnx"), "not a BERT-style encoder config",
         write("m/config.json", '{"model_type": "gpt2", "n_layer": 2}')),
    Case("export-no-weights", ("export", "--model", "{ws}/m", "--out", "{ws}/onnx"), "has no model.safetensors",
         write("m/config.json", json.dumps(MODEL_CONFIG))),
    Case("export-out-not-empty", ("export", "--model", "{ws}/m", "--out", "{ws}/preds"), "pass --overwrite",
         _saved_model),
    Case("export-out-is-model", ("export", "--model", "{ws}/m", "--out", "{ws}", "--overwrite"),
         "holds the model folder", _saved_model),
    Case("predict-arch-folder-no-config", (*PREDICT, "--arch", "{ws}/glue", "--seq", "16", "--batch", "1"),
         "a folder without config.json"),
    Case("predict-arch-folder-missing", (*PREDICT, "--arch", "{ws}/nomodel/", "--seq", "16", "--batch", "1"),
         "no such model folder"),
]
