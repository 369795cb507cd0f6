"""Supernet files: ``DIR/supernet.safetensors`` (shared tensors + importance orders) and ``DIR/supernet.json``
(the recipe: teacher, task, space and data hashes, training options, time). Training checkpoints go to
``DIR/checkpoint.safetensors`` (+ optimizer state) and ``DIR/checkpoint.json``; every write is atomic."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ..distill.inherit import Importance, TeacherShape
from ..distill.lengths import LEGACY
from .model import Supernet, SupernetError, TaskHead

SCHEMA = 1
WEIGHTS, RECIPE = "supernet.safetensors", "supernet.json"
CKPT_WEIGHTS, CKPT_META = "checkpoint.safetensors", "checkpoint.json"


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save_file  # noqa: PLC0415  lazy: safetensors

    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SupernetError(f"cannot read {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or not isinstance(doc.get("recipe"), dict):
        raise SupernetError(f"{path} is not a kdnas-bench supernet file (schema {SCHEMA})")
    doc["recipe"].setdefault("max_length", LEGACY)  # written before --max-length: the fixed 128 tokens
    return doc


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    import safetensors.torch  # noqa: PLC0415  lazy: safetensors

    try:
        return safetensors.torch.load_file(str(path))
    except (OSError, safetensors.SafetensorError) as exc:
        raise SupernetError(f"cannot read {path}: {exc}") from None


def _pack(net: Supernet) -> dict[str, torch.Tensor]:
    return {**{f"param.{k}": v for k, v in net.state().items()}, **net.importance.to_tensors()}


def _meta(net: Supernet) -> dict[str, Any]:
    t, h = net.teacher, net.head
    return {"teacher_shape": [t.layers, t.hidden, t.heads, t.ffn], "vocab_size": h.vocab_size,
            "max_position": h.max_position, "num_labels": h.num_labels, "labels": list(h.labels),
            "regression": h.regression, "importance_examples": net.importance.examples,
            "student_config": dict(h.extras)}


def _unpack(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Supernet:
    try:
        shape = TeacherShape(*(int(v) for v in meta["teacher_shape"]))
        head = TaskHead(int(meta["vocab_size"]), int(meta["max_position"]), int(meta["num_labels"]),
                        tuple(str(x) for x in meta["labels"]), bool(meta["regression"]),
                        tuple(sorted(dict(meta.get("student_config", {})).items())))  # absent in older files
        imp = Importance.from_tensors(tensors, int(meta["importance_examples"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise SupernetError(f"supernet metadata is incomplete: {exc}") from None
    params = {k[len("param."):]: v for k, v in tensors.items() if k.startswith("param.")}
    return Supernet(params, shape, head, imp)


def save(net: Supernet, folder: Path, recipe: dict[str, Any], info: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _write_tensors(folder / WEIGHTS, _pack(net))
    _write_json(folder / RECIPE, {"schema": SCHEMA, "recipe": recipe, "meta": _meta(net), **info})


def load(folder: str | Path) -> tuple[Supernet, dict[str, Any]]:
    """A finished supernet and its JSON document (``recipe``, ``meta``, training figures)."""
    folder = Path(folder)
    if not (folder / RECIPE).is_file() or not (folder / WEIGHTS).is_file():
        raise SupernetError(f"no trained supernet in {folder} (expected {RECIPE} and {WEIGHTS})")
    doc = read_json(folder / RECIPE)
    return _unpack(_read_tensors(folder / WEIGHTS), doc["meta"]), doc


def save_checkpoint(net: Supernet, optimizer: torch.optim.Optimizer, folder: Path, recipe: dict[str, Any],
                    step: int, seconds: float, cpu_seconds: float = 0.0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    state = optimizer.state_dict()
    tensors = _pack(net)
    for idx, st in state["state"].items():
        for key, value in st.items():
            tensors[f"opt.{idx}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    _write_tensors(folder / CKPT_WEIGHTS, tensors, {"step": str(step)})  # a kill between the two writes: they disagree
    _write_json(folder / CKPT_META, {"schema": SCHEMA, "recipe": recipe, "meta": _meta(net), "step": step,
                                      "seconds": seconds, "cpu_seconds": cpu_seconds, "param_groups": state["param_groups"]})


def load_checkpoint(folder: Path, recipe: dict[str, Any]) -> tuple[Supernet, dict[str, Any], dict[str, Any]] | None:
    """(supernet, optimizer state dict, checkpoint doc) of an unfinished training with this recipe; None when
    there is none or it is unreadable (a kill during the first write): training then restarts cleanly."""
    if not (folder / CKPT_META).is_file() or not (folder / CKPT_WEIGHTS).is_file():
        return None
    try:
        doc = read_json(folder / CKPT_META)
        tensors = _read_tensors(folder / CKPT_WEIGHTS)
    except SupernetError:
        return None
    if _tensors_step(folder / CKPT_WEIGHTS) not in (None, str(doc.get("step"))):
        return None  # killed between writing the tensors and the JSON of a checkpoint: restart cleanly
    if doc["recipe"] != recipe:
        raise SupernetError(f"{folder} holds the checkpoint of another supernet training (teacher, task, space or "
                            "options differ); pass another --supernet folder or delete it")
    net = _unpack(tensors, doc["meta"])
    opt_state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, idx, name = key.split(".", 2)
            opt_state.setdefault(int(idx), {})[name] = value
    return net, {"state": opt_state, "param_groups": doc["param_groups"]}, doc


def _tensors_step(path: Path) -> str | None:
    """The step a checkpoint's tensors were written at (None in files from before it was recorded)."""
    from safetensors import safe_open  # noqa: PLC0415  lazy: safetensors

    with safe_open(str(path), framework="pt") as f:
        return (f.metadata() or {}).get("step")


def clear_checkpoint(folder: Path) -> None:
    for name in (CKPT_WEIGHTS, CKPT_META):
        (folder / name).unlink(missing_ok=True)
