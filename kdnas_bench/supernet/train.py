"""Train a supernet once per (teacher, task, space): sandwich rule with in-place distillation.

Each step trains the largest and the smallest arch of the space plus ``random_subnets`` random ones on
one batch, every one against the teacher's cached logits (and the labels with ``ce``; with ``hidden`` each
sub-network layer's output also against the teacher layer it inherits, in the teacher's own channels: no
projection), their gradients summed into the shared tensors before one AdamW step. Resumable: a checkpoint
(tensors, optimizer state, step) is written every ``checkpoint_seconds``; the data order, the sampled
sub-networks and dropout are seeded per step, so a killed training resumed from its checkpoint ends with the
same tensors as an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..defaults import DEFAULTS
from ..distill.accelerator import Accelerator, apply_precision_settings, batches_on, resolve
from ..distill.cache import cache_teacher
from ..distill.data import Task, TaskRef, get_task
from ..distill.inherit import TeacherShape, measure_importance
from ..distill.lengths import LEGACY, model_positions, recorded_max_length
from ..distill.losses import Outputs, build_losses, parse_losses
from ..distill.teacher import Teacher, load_teacher
from ..distill.tracking import Tracker
from ..distill.training import prepare_data, progress_bar
from ..errors import KdnasError
from ..models import tensors_hash
from ..outdirs import FolderLock
from ..space import SearchSpace
from . import parallel, store
from .model import Supernet, SupernetError, data_hash, extremes, space_dims, space_fits, space_hash


@dataclass(frozen=True)
class SupernetConfig:
    examples: int | None = 4000  # training examples (a stratified seeded subset); None: the whole train set
    epochs: float = 2.0
    batch_size: int = 32
    lr: float = 1e-4
    warmup: float = 0.1
    weight_decay: float = 0.01
    random_subnets: int = 2
    losses: str = DEFAULTS.search_losses
    seed: int = 0
    importance_examples: int = 256
    freeze_embeddings: bool = True  # the word-embedding table (the teacher's, sliced) dominates the update cost

    def __post_init__(self) -> None:
        if self.examples is not None and self.examples <= 0:
            raise KdnasError(f"supernet examples must be positive, got {self.examples}")
        for name, value in (("epochs", self.epochs), ("batch size", self.batch_size), ("lr", self.lr)):
            if value <= 0:
                raise KdnasError(f"supernet {name} must be positive, got {value}")
        if self.random_subnets < 0:
            raise KdnasError(f"--random-subnets must be 0 or more (random sub-networks per step besides the largest "
                             f"and the smallest), got {self.random_subnets}")
        if not 0 <= self.warmup < 1:
            raise KdnasError(f"warmup must be in [0, 1), got {self.warmup}")
        names = {n for n, _ in parse_losses(self.losses)}
        if not names <= {"logits", "ce", "hidden"} or names == {"hidden"}:
            raise KdnasError(f"supernet losses must be logits and/or ce, plus hidden if wanted, got {self.losses!r}")


def make_recipe(teacher: Teacher, task: Task, space: SearchSpace, train_data: Any, cfg: SupernetConfig,
                max_length: int = LEGACY) -> dict[str, Any]:
    own = {"data": task.spec()} if not task.is_glue else {}  # a task of one's own: its files and content hash
    return {"teacher": teacher.name, "teacher_hash": tensors_hash(teacher.model.state_dict()), "task": task.name,
            **own, "data_hash": data_hash(train_data), "train_examples": len(train_data), "space": space_dims(space),
            "space_hash": space_hash(space), "config": asdict(cfg), "max_length": max_length}


def check_recipe(doc: dict[str, Any], folder: Path, *, teacher: Teacher, task: Task, space: SearchSpace,
                 max_length: int | str | None = None) -> None:
    """One-line errors when the supernet in ``folder`` belongs to another teacher, task or space (or, with a
    number ``max_length``, was trained on examples cut to another length)."""
    rec = doc["recipe"]
    recorded = recorded_max_length(rec)
    if isinstance(max_length, int) and max_length != recorded:
        raise SupernetError(f"supernet {folder} was trained with --max-length {recorded}, not {max_length}; pass "
                            f"--max-length {recorded} (or auto) or another folder")
    if rec.get("task") != task.name:
        raise SupernetError(f"supernet {folder} was trained for task {rec.get('task')}, not {task.name}")
    from ..distill.taskfiles import check_run_data  # noqa: PLC0415  lazy: pandas, pyarrow (via distill.taskfiles)

    check_run_data(rec.get("data"), task, f"supernet {folder}")
    if rec.get("teacher_hash") != tensors_hash(teacher.model.state_dict()):
        raise SupernetError(f"supernet {folder} was trained from another teacher ({rec.get('teacher')}, weights "
                            f"{rec.get('teacher_hash')}), not {teacher.name}")
    if rec.get("space_hash") != space_hash(space):
        raise SupernetError(f"supernet {folder} was trained for another space ({rec.get('space', {}).get('name')}), "
                            f"not '{space.name}'")


def _optimizer(net: Supernet, cfg: SupernetConfig, cuda: bool = False) -> torch.optim.Optimizer:
    named = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    decay = [p for n, p in named if p.ndim > 1 and "LayerNorm" not in n]
    rest = [p for n, p in named if not (p.ndim > 1 and "LayerNorm" not in n)]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, fused=True) if cuda else torch.optim.AdamW(groups, lr=cfg.lr)


def _lr(step: int, total: int, cfg: SupernetConfig) -> float:
    warm = int(cfg.warmup * total)
    factor = (step + 1) / warm if step < warm else max(0.0, (total - step) / max(1, total - warm))
    return cfg.lr * factor


def subnet_hidden_loss(net: Supernet, arch: Any, hidden: tuple[torch.Tensor, ...], teacher: Outputs,
                       batch: dict[str, Any], tokens: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over the sub-network's layers of the MSE (over real tokens) between each layer's output and the
    output of the teacher layer it inherits, cut to its channels (:meth:`Supernet.teacher_hidden_targets`).
    ``tokens``: the real tokens to average over (default the batch's; a data-parallel shard passes the
    global batch's, so the shards' terms add up to the whole batch's)."""
    assert teacher.hidden is not None
    targets = net.teacher_hidden_targets(arch, teacher.hidden)
    mask = batch["attention_mask"].to(hidden[1].dtype)
    count = mask.sum().clamp_min(1.0) if tokens is None else tokens.to(mask.dtype).clamp_min(1.0)
    total = hidden[1].new_zeros(())
    for h, t in zip(hidden[1:], targets, strict=True):
        total = total + ((h - t.to(h.dtype)).pow(2).mean(-1) * mask).sum() / count
    return total / len(targets)


def _start_state(folder: Path, recipe: dict[str, Any], teacher: Teacher, task: Task, train_data: Any,
                 cfg: SupernetConfig) -> tuple[Supernet, Any, int, float, float]:
    """Where training starts: the checkpoint in ``folder`` for this recipe (its supernet, optimizer state, step,
    wall and CPU seconds spent), or a fresh supernet from the teacher's importance-ordered weights at step 0."""
    resumed = store.load_checkpoint(folder, recipe)
    if resumed is not None:
        net, opt_state, ck = resumed
        return net, opt_state, int(ck["step"]), float(ck["seconds"]), float(ck.get("cpu_seconds", 0.0))
    imp = measure_importance(teacher.model, train_data, examples=cfg.importance_examples,
                             regression=task.is_regression, seed=cfg.seed)
    return Supernet.from_teacher(teacher.model, imp, task.is_regression), None, 0, 0.0, 0.0


def train_supernet(teacher: Teacher, task: Task, space: SearchSpace, out: str | Path, *, train_data: Any,
                   cfg: SupernetConfig, progress: bool = False, checkpoint_seconds: float = 60.0,
                   checkpoint_steps: int | None = None, stop_after: int | None = None,
                   on_start: Any = None, accelerator: str | Accelerator | None = None, max_length: int = LEGACY,
                   tracker: Tracker | None = None) -> tuple[Supernet, dict[str, Any]] | None:
    """Train (or resume, or reuse) the supernet in ``out``. ``train_data``: the ``Encoded`` training set.
    Returns (supernet, its JSON document); None when ``stop_after`` steps stopped it early (a test hook).
    ``accelerator`` (None: the CPU): on a GPU the shared tensors, the teacher's cached logits and the batches
    live there and forwards run under its autocast; importance is measured on the CPU teacher, and files and
    the returned supernet are the same format either way. ``max_length``: the tokens ``train_data`` was cut to
    (recorded in the recipe); ``tracker``: log the loss and learning rate (:mod:`kdnas_bench.distill.tracking`).
    Under ``torchrun`` (several processes) it trains
    data-parallel (:mod:`kdnas_bench.supernet.parallel`): rank 0 alone writes ``out`` and reports progress."""
    ranks, acc = parallel.join(resolve(accelerator))
    apply_precision_settings(acc)
    parallel.check_batch(ranks, cfg.batch_size)
    folder = Path(out)
    shape = TeacherShape.of(teacher.model.config)
    space_fits(space, shape)
    recipe = make_recipe(teacher, task, space, train_data, cfg, max_length)
    ranks.same(int((folder / store.RECIPE).is_file()), "finished supernets in --out")
    if (folder / store.RECIPE).is_file():
        doc = store.read_json(folder / store.RECIPE)
        if doc["recipe"] != recipe:
            check_recipe(doc, folder, teacher=teacher, task=task, space=space)
            raise SupernetError(f"{folder} holds a supernet trained with other data or options; pass another "
                                "--supernet folder or the same options")
        return store.load(folder)
    net, opt_state, start, spent, spent_cpu = _start_state(folder, recipe, teacher, task, train_data, cfg)
    net.to(acc.device)
    ranks.same(start, "checkpoint steps in --out")
    ranks.share_start(net)
    if cfg.freeze_embeddings:
        net.params["bert.embeddings.word_embeddings.weight"].requires_grad_(False)
    opt = _optimizer(net, cfg, acc.is_cuda)
    if opt_state is not None:
        opt.load_state_dict(opt_state)
    specs = parse_losses(cfg.losses)
    hidden_w = next((w for n, w in specs if n == "hidden"), 0.0)
    losses = build_losses([(n, w) for n, w in specs if n != "hidden"], student_config=teacher.model.config,
                          teacher_config=teacher.model.config, regression=task.is_regression)
    needs = frozenset({"hidden"}) if hidden_w else frozenset()
    cache = train_data.teacher_cache
    if cache is None or not cache.covers(teacher, needs, acc.name):
        cache = cache_teacher(teacher, train_data, needs, accelerator=acc)
    per_epoch = math.ceil(len(train_data) / cfg.batch_size)
    total = max(1, math.ceil(per_epoch * cfg.epochs))
    big, small = extremes(space)
    archs = list(space.archs)
    if on_start is not None and ranks.writer:
        on_start({"start": start, "total": total, "largest": big, "smallest": small})
    t0, c0, last_ckpt = time.perf_counter(), time.process_time(), time.perf_counter()
    it: Any = None
    it_epoch = -1
    trainable = [p for p in net.parameters() if p.requires_grad]
    with progress_bar(progress and ranks.writer, f"supernet {task.name}", total) as bar:
        job = bar.add_task(f"supernet {task.name}", total=total, completed=start, loss=float("nan"), rate=0.0)
        for step in range(start, total):
            epoch = step // per_epoch
            if epoch != it_epoch:
                it = batches_on(train_data, acc, cfg.batch_size, shuffle=True, seed=cfg.seed * 100_003 + epoch)
                for _ in range(step - epoch * per_epoch):  # resuming mid-epoch: skip the batches already seen
                    next(it)
                it_epoch = epoch
            batch, share = next(it), 1.0
            if ranks.active:
                batch, share = ranks.shard(batch)
            tokens = ranks.total(batch["attention_mask"].sum()) if ranks.active and hidden_w else None
            rng = np.random.default_rng([cfg.seed, step])
            picks = rng.choice(len(archs), size=min(cfg.random_subnets, len(archs)), replace=False)
            torch.manual_seed(cfg.seed * 1_000_003 + step + ranks.rank * 7_919_000_003)  # dropout: each rank its own masks
            opt.zero_grad(set_to_none=True)
            sandwich = [big, small, *(archs[int(i)] for i in picks)] if share > 0 else []  # no rows: no forwards
            t_out: Any = cache.outputs(batch) if sandwich else None  # a rank with no rows of a short last batch
            value: Any = 0.0
            for arch in sandwich:
                with acc.autocast():
                    fwd = net.forward(arch, batch, train=True, hidden=bool(hidden_w))
                    s_out = Outputs(fwd.logits)
                    loss = sum(fn.weight * fn(s_out, t_out, batch) for fn in losses)
                    if ranks.active:
                        loss = loss * share  # the shard's part of the global batch's mean
                    if hidden_w:
                        loss = loss + hidden_w * subnet_hidden_loss(net, arch, fwd.hidden_states, t_out, batch, tokens)
                loss.backward()  # type: ignore[union-attr]
                value = value + (loss.detach() if acc.is_cuda else float(loss.detach()))  # type: ignore[union-attr]
            ranks.sum_gradients(trainable)
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            for group in opt.param_groups:
                group["lr"] = _lr(step, total, cfg)
            opt.step()
            done = step + 1
            if not acc.is_cuda or (progress and done % 50 == 0):  # reading the loss syncs a GPU: rarely
                bar.update(job, advance=0, loss=float(value))
            if tracker is not None and ranks.writer and tracker.wants(done):
                tracker.log_step(done, float(value), _lr(step, total, cfg))
            bar.update(job, advance=1, rate=(done - start) * cfg.batch_size / (time.perf_counter() - t0))
            now = time.perf_counter()
            due = (checkpoint_steps is not None and done % checkpoint_steps == 0) or now - last_ckpt >= checkpoint_seconds
            if ranks.writer and done < total and (due or (stop_after is not None and done >= stop_after)):
                store.save_checkpoint(net, opt, folder, recipe, done, spent + now - t0,
                                      spent_cpu + time.process_time() - c0)
                last_ckpt = now
            if stop_after is not None and done >= stop_after and done < total:
                return None
    acc.synchronize()
    seconds = spent + time.perf_counter() - t0
    info = {"complete": True, "steps": total, "train_seconds": round(seconds, 3), **acc.describe(),
            "train_cpu_seconds": round(spent_cpu + time.process_time() - c0, 3),
            "teacher_cache_seconds": round(cache.seconds, 3), "largest": str(big), "smallest": str(small),
            "resumed_from_step": start or None, **({"processes": ranks.world} if ranks.active else {})}
    if ranks.writer:
        store.save(net, folder, recipe, info)
        store.clear_checkpoint(folder)
        if tracker is not None:
            tracker.finish({**asdict(cfg), "max_length": max_length}, {})
    ranks.barrier()  # the others read what rank 0 wrote
    return store.load(folder)


def ensure_supernet(teacher: str | Teacher, task: TaskRef, space: SearchSpace, folder: str | Path, *,
                    data_dir: str | Path | None, cfg: SupernetConfig, progress: bool = False,
                    on_start: Any = None, accelerator: str | Accelerator | None = None,
                    max_length: int | str | None = None, tracker: Tracker | None = None) -> tuple[Supernet, dict[str, Any]]:
    """Load the supernet in ``folder`` when it was trained for this teacher, task and space (one-line error
    when it belongs to others), else train or resume it there. ``max_length``: tokens per example, ``"auto"``
    (from the data: :mod:`kdnas_bench.distill.lengths`) or None (128); a folder already holding a supernet or a
    checkpoint keeps the length it was trained with (128 when it records none), and a different number is
    refused. ``on_start`` also gets ``lengths``: a line saying the length and how many examples it cuts."""
    t = get_task(task)
    loaded = load_teacher(teacher, task=t)
    space_fits(space, TeacherShape.of(loaded.model.config))
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise SupernetError(f"--supernet must be a folder, {folder} is a file")
    if (folder / store.RECIPE).is_file():
        net, doc = store.load(folder)
        check_recipe(doc, folder, teacher=loaded, task=t, space=space, max_length=max_length)
        return net, doc
    length = _length_for(folder, max_length)
    data = prepare_data(loaded.tokenizer, t, data_dir=data_dir, max_examples=cfg.examples, seed=cfg.seed,
                        max_length=length, positions=model_positions(loaded.model.config))
    assert data.lengths is not None
    lengths = data.lengths

    def started(info: dict[str, Any]) -> None:
        if on_start is not None:
            on_start({**info, "lengths": lengths.describe()})

    with FolderLock(folder, "--supernet"):  # one trainer per supernet folder (two searches sharing --supernet)
        result = train_supernet(loaded, t, space, folder, train_data=data.train, cfg=cfg, progress=progress,
                                on_start=started, accelerator=accelerator, max_length=lengths.max_length, tracker=tracker)
    assert result is not None
    return result


def _length_for(folder: Path, wanted: int | str | None) -> int | str:
    """The length to train with: a checkpoint's recorded one (128 when it records none) unless another number is
    asked for (then its recipe differs and it is refused on resume), else ``wanted`` (None: 128)."""
    if (folder / store.CKPT_META).is_file() and not isinstance(wanted, int):
        try:
            return recorded_max_length(store.read_json(folder / store.CKPT_META)["recipe"])
        except SupernetError:
            pass  # unreadable: training restarts cleanly
    return LEGACY if wanted is None else wanted
