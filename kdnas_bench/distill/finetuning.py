"""``finetune``: turn a backbone (by default the packaged all-MiniLM-L6-v2) into a task teacher, with the
training loop distillation uses."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .accelerator import AcceleratorSpec, resolve
from .baseline import Baseline, baseline_of, weak_teacher_line
from .data import TaskRef, get_task
from .lengths import length_config, model_positions
from .losses import GroundTruth
from .selection import make_selection
from .teacher import DEFAULT_BACKBONE, PrimaryMetric, default_backbone_path, load_teacher
from .tracking import check_log_to, open_tracker
from .training import TrainConfig, evaluate, prepare_data, save_model, train


@dataclass
class FinetuneResult(PrimaryMetric):
    task: str
    backbone: str
    arch: dict[str, int]
    params: int
    train_examples: int
    epochs: float
    seed: int
    train_seconds: float
    metrics: dict[str, float]
    primary_metric: str
    out: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] | None = None  # a task of one's own: its spec (files, columns, label map, content hash)
    baseline: dict[str, Any] | None = None  # the dev set's trivial scores (:func:`.baseline.baseline_of`)
    selection: dict[str, Any] | None = None  # per-epoch evaluation (:meth:`.selection.Selection.to_dict`)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("data", "baseline", "selection"):
            if d[key] is None:
                d.pop(key)
        if self.baseline is not None:
            d["weak"] = self.weak
        return d

    @property
    def weak(self) -> bool:
        """Whether the teacher does not beat its dev set's trivial score by the margin (2 points)."""
        return self.baseline is not None and not Baseline.from_dict(self.baseline).beaten_by(self.primary)

    def weak_warning(self) -> str | None:
        """One line for the user when the teacher is weak (``distill`` and ``search`` will refuse it)."""
        if not self.weak or self.baseline is None:
            return None
        line = weak_teacher_line(self.out or "(not saved)", self.primary_metric, self.primary,
                                 Baseline.from_dict(self.baseline))
        return f"warning: {line}; distill and search refuse it unless --allow-weak-teacher"


def finetune(
    task: TaskRef,
    *,
    backbone: str | Path | None = None,
    data_dir: str | Path | None = None,
    max_examples: int | None = None,
    epochs: float = 1.0,
    seed: int = 0,
    out: str | Path | None = None,
    lr: float = 2e-4,  # with batch 16: 2,000 SST-2 examples x 1 epoch, seeds 0-2, 81.8 % mean dev accuracy (min 81.0)
    batch_size: int = 16,  # (79.3 % mean at the earlier 1e-4 x 32; benchmarks/bench_teacher_lr.py)
    max_length: int | str = "auto",
    progress: bool = False,
    batching: str = "random",
    accelerator: AcceleratorSpec = None,
    eval_every: str = "end",
    early_stopping: int | None = None,
    log_to: str | None = None,
    log_dir: str | Path | None = None,
) -> FinetuneResult:
    """Fine-tune ``backbone`` on the task's train set (or a stratified ``max_examples`` subset) with
    cross-entropy (MSE for STS-B), evaluate on dev, and save it (HF layout, safetensors, metrics JSON). The dev
    set's trivial baseline is recorded beside the metrics (``baseline``, and ``weak`` when the teacher does not
    beat it by 2 points: :meth:`FinetuneResult.weak_warning`). ``max_length``: tokens per example, or ``"auto"``
    (:mod:`.lengths`); ``eval_every="epoch"`` scores dev after every epoch and keeps the best state, stopping after
    ``early_stopping`` evaluations without improvement (:mod:`.selection`); ``log_to="tensorboard"`` logs into
    ``log_dir`` (:mod:`.tracking`).
    ``accelerator``: ``"cpu"`` (None), ``"cuda"`` or ``"auto"`` (:mod:`.accelerator`)."""
    acc = resolve(accelerator)
    t = get_task(task)
    source = default_backbone_path() if backbone is None else backbone
    torch.manual_seed(seed)  # the fresh classifier head: the same seed gives the same teacher in any process
    teacher = load_teacher(source, num_labels=t.num_labels)
    label_names = list(t.labels) if t.labels else ["score"]
    teacher.model.config.id2label = dict(enumerate(label_names))
    teacher.model.config.label2id = {n: i for i, n in enumerate(label_names)}
    if t.is_regression:
        teacher.model.config.problem_type = "regression"
    selection = make_selection(eval_every, early_stopping, lambda m: evaluate(m, data.dev, t), t.primary_metric)
    check_log_to(log_to)
    data = prepare_data(teacher.tokenizer, t, data_dir=data_dir, max_examples=max_examples, seed=seed,
                        max_length=max_length, positions=model_positions(teacher.model.config))
    tracker = open_tracker(log_to, log_dir)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, batching=batching)
    seconds = train(teacher.model, data.train, [GroundTruth(1.0, t.is_regression)], cfg, seed=seed,
                    progress=progress, description=f"fine-tune {t.name}", accelerator=acc, selection=selection,
                    tracker=tracker)
    metrics = evaluate(teacher.model, data.dev, t)
    teacher.model.cpu()
    result = FinetuneResult(
        task=t.name, backbone=DEFAULT_BACKBONE if backbone is None else str(backbone),
        arch={"layers": teacher.layers, "hidden": teacher.hidden,
              "heads": int(teacher.model.config.num_attention_heads),
              "ffn": int(getattr(teacher.model.config, "intermediate_size", 0))},
        params=sum(p.numel() for p in teacher.model.parameters()), train_examples=len(data.train),
        epochs=epochs, seed=seed, train_seconds=round(seconds, 3), metrics=metrics,
        primary_metric=t.primary_metric, config={"lr": lr, "batch_size": batch_size, **length_config(data.lengths),
                                                    "batching": batching, **(acc.describe() if acc.on_device else {})},
        data=t.spec(), baseline=baseline_of(t, data.dev.labels).to_dict(),
        selection=None if selection is None else selection.to_dict(),
    )
    if tracker is not None:
        tracker.finish(result.config, metrics)
    if out is not None:
        out_dir = Path(out)
        save_model(teacher.model, teacher.tokenizer, out_dir, onnx=False)
        result.out = str(out_dir)
        (out_dir / "metrics.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result
