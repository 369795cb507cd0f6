"""Distillation: GLUE tasks (data.py), teachers (teacher.py, finetuning.py), KD losses (losses.py), ``distill`` (trainer.py).

Names are imported on first use, so a light submodule (``data``'s task table) can be read without torch."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "TeacherCache": "cache", "cache_teacher": "cache",
    "TASKS": "data", "DataError": "data", "Task": "data", "TaskRef": "data", "get_task": "data", "load_split": "data",
    "proxy_indices": "data",
    "DEFAULT_LOSSES": "losses", "KDLoss": "losses", "build_losses": "losses", "parse_losses": "losses",
    "Teacher": "teacher", "TeacherError": "teacher", "load_teacher": "teacher",
    "FinetuneResult": "finetuning", "finetune": "finetuning",
    "DistillOptions": "trainer", "DistillResult": "trainer", "TaskData": "trainer", "TrainConfig": "trainer",
    "distill": "trainer", "distill_task": "trainer", "distill_text": "trainer",
    "evaluate": "trainer", "prepare_data": "trainer",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)


__all__ = sorted(_WHERE)
