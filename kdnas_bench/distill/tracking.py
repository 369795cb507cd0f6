"""Logging a training to an experiment tracker (``--log-to tensorboard``), opt-in.

TensorBoard through ``torch.utils.tensorboard.SummaryWriter`` (needs the ``tensorboard`` package:
``pip install 'kdnas-bench[track]'``): the training loss and learning rate every ``every`` steps
(``train/loss``, ``train/lr``), the dev metrics at each evaluation (``dev/<metric>``), and the run's
configuration as text and as hyper-parameters beside the final metrics.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from ..errors import KdnasError, did_you_mean

LOG_TO = ("tensorboard",)
PACKAGE = {"tensorboard": "tensorboard"}


def check_log_to(name: str | None) -> str | None:
    """``name`` when it is a known tracker whose package is installed; one line otherwise."""
    if name is None:
        return None
    key = name.strip().lower()
    if key not in LOG_TO:
        raise KdnasError(f"--log-to {name!r} is not one of {', '.join(LOG_TO)}{did_you_mean(key, list(LOG_TO))}")
    if importlib.util.find_spec(PACKAGE[key]) is None:
        raise KdnasError(f"--log-to {key} needs the {PACKAGE[key]} package: pip install 'kdnas-bench[track]'")
    return key


def _scalar(value: Any) -> Any:
    return value if isinstance(value, (int, float, str, bool)) else json.dumps(value, default=str)


class Tracker:
    """Scalars of one training into ``log_dir`` (a TensorBoard run folder)."""

    def __init__(self, kind: str, log_dir: str | Path, *, every: int = 10) -> None:
        from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415  lazy: torch

        check_log_to(kind)
        self.log_dir = Path(log_dir)
        self.every = max(1, every)
        self.writer = SummaryWriter(log_dir=str(self.log_dir))

    def wants(self, step: int) -> bool:
        """Whether step ``step`` (1-based) is logged (reading the loss syncs a GPU: not every step)."""
        return step == 1 or step % self.every == 0

    def log_step(self, step: int, loss: float, lr: float) -> None:
        self.writer.add_scalar("train/loss", loss, step)
        self.writer.add_scalar("train/lr", lr, step)

    def log_eval(self, step: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(f"dev/{name}", float(value), step)

    def finish(self, config: dict[str, Any], metrics: dict[str, float]) -> None:
        """The configuration (text and hyper-parameters, with the final dev metrics), then close."""
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=2, default=str) + "\n```")
        hparams = {k: _scalar(v) for k, v in config.items() if v is not None}
        self.writer.add_hparams(hparams, {f"hparam/{k}": float(v) for k, v in metrics.items()}, run_name=".")
        self.close()

    def close(self) -> None:
        """Flush and close the event file (again: nothing)."""
        self.writer.close()


def open_tracker(kind: str | None, log_dir: str | Path | None) -> Tracker | None:
    """A :class:`Tracker` for ``--log-to`` (None: no logging); ``log_dir`` is needed with one."""
    if kind is None:
        return None
    if log_dir is None:
        raise KdnasError("--log-to needs a folder to log into: pass --log-dir (or --out, which logs into OUT/logs)")
    return Tracker(kind, log_dir)
