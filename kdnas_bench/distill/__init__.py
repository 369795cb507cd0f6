"""Distillation: GLUE tasks (data.py), teachers (teacher.py, finetuning.py), KD losses (losses.py), ``distill`` (trainer.py).

Names are imported on first use, so a light submodule (``data``'s task table) can be read without torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:
    from .cache import TeacherCache, cache_teacher
    from .data import TASKS, DataError, Task, get_task, load_split, proxy_indices
    from .finetuning import FinetuneResult, finetune
    from .losses import DEFAULT_LOSSES, KDLoss, build_losses, parse_losses
    from .teacher import Teacher, TeacherError, load_teacher
    from .trainer import (
        DistillOptions,
        DistillResult,
        TaskData,
        TrainConfig,
        distill,
        distill_task,
        distill_text,
        evaluate,
        prepare_data,
    )

__all__ = [
    "DEFAULT_LOSSES",
    "TASKS",
    "DataError",
    "DistillOptions",
    "DistillResult",
    "FinetuneResult",
    "KDLoss",
    "Task",
    "TaskData",
    "Teacher",
    "TeacherCache",
    "TeacherError",
    "TrainConfig",
    "build_losses",
    "cache_teacher",
    "distill",
    "distill_task",
    "distill_text",
    "evaluate",
    "finetune",
    "get_task",
    "load_split",
    "load_teacher",
    "parse_losses",
    "prepare_data",
    "proxy_indices",
]
__getattr__, __dir__ = lazy_exports(__name__, {
    "TeacherCache": "cache", "cache_teacher": "cache",
    "TASKS": "data", "DataError": "data", "Task": "data", "TaskRef": "data", "get_task": "data", "load_split": "data",
    "proxy_indices": "data",
    "DEFAULT_LOSSES": "losses", "KDLoss": "losses", "build_losses": "losses", "parse_losses": "losses",
    "Teacher": "teacher", "TeacherError": "teacher", "load_teacher": "teacher",
    "FinetuneResult": "finetuning", "finetune": "finetuning",
    "DistillOptions": "trainer", "DistillResult": "trainer", "TaskData": "trainer", "TrainConfig": "trainer",
    "distill": "trainer", "distill_task": "trainer", "distill_text": "trainer",
    "evaluate": "trainer", "prepare_data": "trainer",
})
