"""Evaluation per epoch, the best checkpoint kept, early stopping (``--eval-every epoch``,
``--early-stopping N``), as the ``transformers`` Trainer's ``load_best_model_at_end`` and its early-stopping
callback do.

After every pass over the training data (and after the last, partial one) the model is scored on dev; the
state with the best primary metric (higher is better; the first of equals) is kept in memory and put back
when training ends. With ``patience`` N, training stops after N evaluations in a row without a better score.
Evaluation runs without dropout or data-order draws, so it does not change the training itself: without early
stopping the last epoch's weights are those of an unevaluated run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import KdnasError

EVAL_EVERY = ("epoch", "end")  # end: only once, after training (the old behaviour)


@dataclass
class Selection:
    """Per-epoch scores of one training and its best state; ``score(model)`` gives the dev metrics."""

    score: Callable[[Any], dict[str, float]]
    primary: str
    patience: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    best_index: int | None = None
    _best_state: dict[str, Any] | None = field(default=None, repr=False)
    stopped_early: bool = False

    def __post_init__(self) -> None:
        if self.patience is not None and self.patience <= 0:
            raise KdnasError(f"--early-stopping must be a positive number of evaluations, got {self.patience}")

    def after_epoch(self, model: Any, epoch: float, step: int) -> bool:
        """Score ``model`` after ``epoch`` epochs (``step`` steps), keep its state when best; True: stop now."""
        metrics = self.score(model)
        model.train()
        value = float(metrics[self.primary])
        self.history.append({"epoch": round(epoch, 4), "step": step, "metrics": metrics})
        if self.best_index is None or value > self._best_value():
            self.best_index = len(self.history) - 1
            self._best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        waited = len(self.history) - 1 - self.best_index
        self.stopped_early = self.patience is not None and waited >= self.patience
        return self.stopped_early

    def _best_value(self) -> float:
        assert self.best_index is not None
        return float(self.history[self.best_index]["metrics"][self.primary])

    def restore(self, model: Any) -> None:
        """Put the best evaluated state back into ``model`` (nothing when the last one was best)."""
        if self._best_state is not None and self.best_index != len(self.history) - 1:
            model.load_state_dict(self._best_state)
        self._best_state = None

    @property
    def best(self) -> dict[str, Any] | None:
        return None if self.best_index is None else self.history[self.best_index]

    def to_dict(self) -> dict[str, Any]:
        """What metrics.json records: each evaluation, the one kept, and whether training stopped early."""
        best = self.best
        return {"eval_every": "epoch", "early_stopping": self.patience, "history": self.history,
                "best_epoch": None if best is None else best["epoch"], "best_step": None if best is None else best["step"],
                "best_metrics": None if best is None else best["metrics"],
                "restored_best": best is not None and self.best_index != len(self.history) - 1,
                "stopped_early": self.stopped_early}

    def describe(self) -> str:
        """One line for the user: which epoch's weights were kept, and why training ended."""
        best = self.best
        if best is None:
            return "no evaluation ran"
        value = float(best["metrics"][self.primary])
        kept = (f"restored the best checkpoint: epoch {best['epoch']:g} ({self.primary} {value:.4f})"
                if self.best_index != len(self.history) - 1 else
                f"kept the last epoch {best['epoch']:g}, the best ({self.primary} {value:.4f})")
        stop = f"; stopped early after {len(self.history)} evaluations" if self.stopped_early else ""
        return f"{len(self.history)} evaluations, {kept}{stop}"


def make_selection(eval_every: str, patience: int | None, score: Callable[[Any], dict[str, float]],
                   primary: str) -> Selection | None:
    """A :class:`Selection` for ``eval_every="epoch"``; None for ``"end"`` (``patience`` then refused)."""
    if eval_every not in EVAL_EVERY:
        raise KdnasError(f"--eval-every must be one of {', '.join(EVAL_EVERY)}, got {eval_every!r}")
    if eval_every == "end":
        if patience is not None:
            raise KdnasError("--early-stopping needs --eval-every epoch (it counts evaluations without improvement)")
        return None
    return Selection(score, primary, patience)
