"""Bad-input cases: options (finite, int64, ranges) and output paths (writable, checked up front)."""

from __future__ import annotations

from .bad_input_support import (
    DISTILL,
    FAST,
    FINETUNE,
    PREDICT_ARCH,
    SEARCH,
    STORE_DEV,
    Case,
    drop,
    opt,
    write,
)

OPTION_CASES: list[Case] = [
    # options: finite numbers, int64, ranges (checked before anything runs)
    Case(
        "profile-min-seconds-nan",
        ("profile", "--min-seconds", "nan", "--store", "{ws}/store"),
        "--min-seconds must be a finite number",
    ),
    Case(
        "profile-max-seconds-inf",
        ("profile", "--max-seconds", "inf", "--store", "{ws}/store"),
        "--max-seconds must be a finite number",
    ),
    Case("profile-min-seconds-neg-inf", ("profile", "--min-seconds", "-inf", "--store", "{ws}/store"), "finite number"),
    Case("profile-minutes-nan", ("profile", "--minutes", "nan", "--store", "{ws}/store"), "--minutes must be a finite"),
    Case("profile-target-above-one", ("profile", "--target", "1.5", "--store", "{ws}/store"), "--target is a share"),
    Case("remeasure-nothing", ("remeasure", "--samples", "0", "--store", "{ws}/store"), "one of them positive"),
    Case("remeasure-no-profile", ("remeasure", "--samples", "5", "--store", "{ws}/store"), "no profile of this device"),
    Case("fit-reference-ms-negative", ("fit", "--device", STORE_DEV, "--backend", "torch", "--store", "{ws}/store",
                                       "--reference-ms", "-1"), "--reference-ms must be positive"),
    Case("profile-seed-negative", ("profile", "--seed", "-1", "--store", "{ws}/store"), "--seed must be non-negative"),
    Case(
        "profile-seed-huge", ("profile", "--seed", str(2**40), "--store", "{ws}/store"), "--seed must be non-negative and at most"
    ),
    Case("profile-threads-zero", ("profile", "--threads", "0", "--store", "{ws}/store"), "--threads must be positive"),
    Case("profile-threads-text", ("profile", "--threads", "abc"), "'abc' is not a valid integer"),
    Case("profile-samples-zero", ("profile", "--samples", "0", "--store", "{ws}/store"), "--samples must be positive"),
    Case(
        "profile-warmup-huge",
        ("profile", "--warmup", str(10**9), "--store", "{ws}/store"),
        "--warmup must be non-negative and at most",
    ),
    Case("profile-sampler-unknown", ("profile", "--sampler", "grid"), "'grid' is not one of"),
    Case("profile-seq-text", ("profile", "--seq", "8,x", "--store", "{ws}/store"), "integers"),
    Case("profile-seq-zero", ("profile", "--seq", "0", "--store", "{ws}/store"), "positive"),
    Case("profile-min-calls-zero", ("profile", "--min-calls", "0", "--store", "{ws}/store"), "--min-calls must be positive"),
    Case(
        "profile-max-below-min",
        ("profile", *FAST[:6], "--max-seconds", "0.001", "--store", "{ws}/store", "--space", "{ws}/tiny.toml"),
        "invalid timing options",
    ),
    Case(
        "measure-seq-int64",
        ("measure", "--arch", "1,64,2,128", "--seq", str(2**64), "--batch", "1"),
        "does not fit in a 64-bit integer",
    ),
    Case(
        "measure-batch-int64-neg",
        ("measure", "--arch", "1,64,2,128", "--seq", "8", "--batch", str(-(2**70))),
        "does not fit in a 64-bit integer",
    ),
    Case("measure-arch-not-divide", ("measure", "--arch", "4,310,12,1200", "--seq", "8", "--batch", "1"), "must divide"),
    Case("measure-arch-three", ("measure", "--arch", "4,312,12", "--seq", "8", "--batch", "1"), "L,H,A,FFN"),
    Case("measure-arch-text", ("measure", "--arch", "a,b,c,d", "--seq", "8", "--batch", "1"), "L,H,A,FFN"),
    Case("measure-arch-huge", ("measure", "--arch", f"1,{2**40},2,128", "--seq", "8", "--batch", "1"), "too large"),
    Case("measure-arch-zero", ("measure", "--arch", "0,64,2,128", "--seq", "8", "--batch", "1"), "must be positive"),
    Case("measure-seq-zero", ("measure", "--arch", "1,64,2,128", "--seq", "0", "--batch", "1"), "--seq must be positive"),
    Case("measure-seq-too-long", ("measure", "--arch", "1,64,2,128", "--seq", "1000", "--batch", "1"), "exceeds BERT's 512"),
    Case(
        "measure-batch-negative", ("measure", "--arch", "1,64,2,128", "--seq", "8", "--batch", "-2"), "--batch must be positive"
    ),
    Case(
        "measure-max-seconds-nan",
        ("measure", "--arch", "1,64,2,128", "--seq", "8", "--batch", "1", "--max-seconds", "nan"),
        "--max-seconds must be a finite",
    ),
    Case(
        "measure-backend-unknown",
        ("measure", "--arch", "1,64,2,128", "--seq", "8", "--batch", "1", "--backend", "tvm"),
        "'tvm' is not one of",
    ),
    # output paths: writable, checked up front
    Case("profile-store-under-file", ("profile", "--store", "{ws}/afile/store"), "is a file, not a folder"),
    Case("profile-store-is-file", ("profile", "--store", "{ws}/afile"), "exists and is not a folder"),
    Case("profile-store-unwritable", ("profile", "--store", "/proc/kdnas-store"), "cannot write in /proc"),
    Case("profile-onnx-cache-under-file", ("profile", "--onnx-cache", "{ws}/afile/x", "--store", "{ws}/store"), "--onnx-cache"),
    Case(
        "measure-onnx-cache-is-file",
        ("measure", "--arch", "1,64,2,128", "--seq", "8", "--batch", "1", "--onnx-cache", "{ws}/afile"),
        "exists and is not a folder",
    ),
    Case(
        "fit-out-under-file",
        ("fit", "--device", STORE_DEV, "--backend", "torch", "--store", "{ws}/store", "--out", "{ws}/afile/p"),
        "--out {ws}/afile/p: {ws}/afile is a file",
    ),
    Case(
        "fit-out-unwritable",
        ("fit", "--device", STORE_DEV, "--backend", "torch", "--store", "{ws}/store", "--out", "/proc/kdnas-preds"),
        "cannot write in /proc",
    ),
    Case("search-run-under-file", (*opt(SEARCH, "--run", "{ws}/afile/run"), "--budget-ms", "10"), "--run"),
    Case("search-run-unwritable", (*opt(SEARCH, "--run", "/proc/kdnas-run"), "--budget-ms", "10"), "cannot write in /proc"),
    Case("distill-out-unwritable", (*DISTILL, "--out", "/proc/kdnas-student"), "--out /proc/kdnas-student: cannot write"),
    Case("distill-out-under-file", (*DISTILL, "--out", "{ws}/afile/s"), "is a file, not a folder"),
    Case("finetune-out-unwritable", opt(FINETUNE, "--out", "/proc/kdnas-teacher"), "--out /proc/kdnas-teacher: cannot write"),
    Case("finetune-out-is-file", opt(FINETUNE, "--out", "{ws}/afile"), "exists and is not a folder"),
    Case("report-html-under-file", ("report", "{ws}/run", "--html", "{ws}/afile/r.html"), "--html"),
    Case("report-html-is-folder", ("report", "{ws}/run", "--html", "{ws}/run"), "is a folder; give a file name"),
    Case("report-md-unwritable", ("report", "{ws}/run", "--md", "/proc/kdnas.md"), "cannot write in /proc"),
    Case("report-png-is-file", ("report", "{ws}/run", "--png", "{ws}/afile"), "exists and is not a folder"),
    Case(
        "compare-html-under-file",
        ("compare", "--no-measure", "--predictors", "{ws}/preds", "--html", "{ws}/afile/c.html"),
        "is a file, not a folder",
    ),
    Case(
        "compare-png-unwritable",
        ("compare", "--no-measure", "--predictors", "{ws}/preds", "--png", "/proc/kdnas-png"),
        "cannot write in /proc",
    ),
    Case("quickstart-out-under-file", ("quickstart", "--out", "{ws}/afile/q"), "is a file, not a folder"),
    Case("quickstart-speedup-nan", ("quickstart", "--out", "{ws}/q", "--speedup", "nan"), "--speedup must be a finite number"),
    Case("predictors-root-is-file", ("predictors", "--predictors", "{ws}/afile"), "--predictors {ws}/afile is not a folder"),
    Case("predict-root-is-file", opt(PREDICT_ARCH, "--predictors", "{ws}/afile"), "is not a folder"),
    Case(
        "fit-store-is-file",
        ("fit", "--device", STORE_DEV, "--backend", "torch", "--store", "{ws}/afile"),
        "--store {ws}/afile is not a folder",
    ),
    Case(
        "compare-store-is-file",
        ("compare", "--no-measure", "--predictors", "{ws}/preds", "--store", "{ws}/afile"),
        "is not a folder",
    ),
    Case("finetune-data-dir-is-file", opt(FINETUNE, "--data-dir", "{ws}/afile"), "--data-dir {ws}/afile is not a folder"),
    Case(
        "measure-threads-huge",
        ("measure", "--arch", "1,64,2,128", "--seq", "8", "--batch", "1", "--threads", "5000"),
        "at most 1024",
    ),
    Case(
        "quickstart-profile-rows-zero",
        ("quickstart", "--out", "{ws}/q", "--profile-rows", "0"),
        "--profile-rows must be positive",
    ),
    Case(
        "search-teacher-missing",
        (*opt(drop(SEARCH, "--table"), "--teacher", "{ws}/noteacher"), "--budget-ms", "10"),
        "teacher path not found",
    ),
    Case(
        "agnostic-text-not-utf8",
        (*opt(opt(SEARCH, "--task", "agnostic"), "--table", ""), "--text", "{ws}/bad.txt", "--budget-ms", "10"),
        "cannot read text file",
        write("bad.txt", b"fine\n\xff\xfe\n"),
    ),
    Case(
        "compare-model-folder-bad-config",
        ("compare", "--no-measure", "--predictors", "{ws}/preds", "--students", "{ws}/badmodel"),
        "is not a BERT-style encoder config",
        write("badmodel/config.json", '{"hidden_size": "x"}'),
    ),
    Case(
        "distill-teacher-config-mistyped",
        opt(DISTILL, "--teacher", "{ws}/badteacher"),
        "cannot load teacher",
        write("badteacher/config.json", '{"model_type": "bert", "hidden_size": "x"}'),
    ),
    Case(
        "distill-teacher-config-not-json",
        opt(DISTILL, "--teacher", "{ws}/badteacher"),
        "cannot load teacher",
        write("badteacher/config.json", "{"),
    ),
    Case("distill-teacher-missing", DISTILL, "teacher path not found"),
    Case(
        "compare-unknown-device",
        ("compare", "--no-measure", "--predictors", "{ws}/preds", "--devices", "nowhere"),
        "no predictor for device nowhere",
    ),
    Case(
        "compare-unknown-reference",
        ("compare", "--no-measure", "--predictors", "{ws}/preds", "--reference", "nobody"),
        "reference 'nobody'",
    ),
    Case("measure-no-gpu", ("measure", "--arch", "1,64,2,128", "--seq", "8", "--batch", "1", "--backend", "torch-cuda"), "CUDA"),
    Case("predict-unknown-backend", opt(PREDICT_ARCH, "--backend", "nope"), "no predictor for"),
    Case("report-html-name-too-long", ("report", "{ws}/run", "--html", "{ws}/" + "x" * 300 + "/r.html"), "File name too long"),
]
