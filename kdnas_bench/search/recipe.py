"""The distillation recipe of a search, one object: how each student is distilled (examples, epochs, KD losses,
learning rate, seed, init, and the training options of the final: max length, per-epoch selection, logging).
The request holds the proxy recipe (:attr:`~.request.SearchRequest.recipe`), the evaluators and the re-ranking
scale it (:meth:`Recipe.scaled`), and the final job distils with the final's (:attr:`~.request.SearchRequest.
final_recipe`); :meth:`Recipe.distill_kwargs` is what :func:`~kdnas_bench.distill.trainer.distill` takes.

A recipe checks its values once, where it is made, in the words of the CLI's options."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from ..defaults import DEFAULTS, INITS
from ..distill.lengths import parse_max_length
from ..distill.selection import make_selection
from ..distill.tracking import check_log_to
from .domain import SearchError


def check_positive(**values: int | float | None) -> None:
    """Each given value (None: not set) is a finite positive number, else a one-line :class:`SearchError`
    naming it as given (the option's name, e.g. ``--episodes``)."""
    for name, value in values.items():
        if value is not None and not (math.isfinite(value) and value > 0):
            raise SearchError(f"{name} must be positive, got {value}")


def check_choice(name: str, value: str, allowed: tuple[str, ...] | list[str]) -> None:
    if value not in allowed:
        raise SearchError(f"unknown {name} '{value}' (choose from {', '.join(allowed)})")


@dataclass(frozen=True)
class Recipe:
    """How one student is distilled. ``examples`` None: the whole train set; ``losses`` None: the flow's
    default (:data:`~kdnas_bench.defaults.DEFAULTS`); ``max_length`` tokens per example or ``"auto"``
    (:mod:`kdnas_bench.distill.lengths`); ``eval_every="epoch"`` keeps the best epoch, stopping after
    ``early_stopping`` evaluations without improvement (:mod:`kdnas_bench.distill.selection`); ``log_to``
    ``"tensorboard"`` logs into the student's ``logs`` folder."""

    examples: int | None = DEFAULTS.proxy_examples
    epochs: float = DEFAULTS.proxy_epochs
    losses: str | None = None
    lr: float = DEFAULTS.distill_lr
    seed: int = 0
    init: str = "inherit"
    max_length: int | str = "auto"
    eval_every: str = "end"
    early_stopping: int | None = None
    log_to: str | None = None

    def __post_init__(self) -> None:
        check_positive(examples=self.examples, epochs=self.epochs, lr=self.lr)
        check_choice("init", self.init, INITS)
        self.check_training(self.max_length, self.eval_every, self.early_stopping, self.log_to)

    @staticmethod
    def check_training(max_length: int | str, eval_every: str, early_stopping: int | None, log_to: str | None) -> None:
        """The training options' own checks (``--max-length``, ``--eval-every``, ``--early-stopping``,
        ``--log-to``), each in its module's one wording."""
        parse_max_length(max_length)
        make_selection(eval_every, early_stopping, dict, "")
        check_log_to(log_to)

    def scaled(self, examples: int | None, epochs: float) -> Recipe:
        """The same recipe on another number of examples and epochs (a re-ranking rung, the final)."""
        return replace(self, examples=examples, epochs=epochs)

    def training(self) -> dict[str, Any]:
        """The training options (keyword arguments of ``distill``): max length, selection and logging."""
        return {"max_length": self.max_length, "eval_every": self.eval_every, "early_stopping": self.early_stopping,
                "log_to": self.log_to}

    def distill_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments of :func:`~kdnas_bench.distill.trainer.distill` for this recipe (``overrides``
        replace any of them, e.g. another ``seed``)."""
        return {"max_examples": self.examples, "epochs": self.epochs, "losses": self.losses, "seed": self.seed,
                "init": self.init, "lr": self.lr, **self.training(), **overrides}


__all__ = ["Recipe", "check_choice", "check_positive"]
