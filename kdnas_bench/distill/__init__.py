"""Distillation: GLUE tasks (data.py), teachers (teacher.py), KD losses (losses.py), ``distill`` (trainer.py)."""

from __future__ import annotations

from .cache import TeacherCache, cache_teacher
from .data import TASKS, DataError, Task, get_task, load_split, proxy_indices
from .losses import DEFAULT_LOSSES, KDLoss, build_losses, parse_losses
from .teacher import Teacher, TeacherError, finetune, load_teacher
from .trainer import DistillResult, TaskData, TrainConfig, distill, evaluate, prepare_data

__all__ = [
    "DEFAULT_LOSSES", "TASKS", "DataError", "DistillResult", "KDLoss", "Task", "TaskData", "Teacher",
    "TeacherCache", "TeacherError", "TrainConfig", "build_losses", "cache_teacher", "distill", "evaluate", "finetune",
    "get_task", "load_split", "load_teacher", "parse_losses", "prepare_data", "proxy_indices",
]
