"""What a search is asked to do: :class:`SearchRequest` (with :class:`SupernetOptions` and
:class:`FinalOptions`), typed and frozen, each checking its own values in ``__post_init__``, in the words of
the CLI's options; the reward spec and the distillation recipe (:class:`~.recipe.Recipe`) are built from it once.
:func:`search_request` builds one with the defaults of ``kdnas-bench search`` (the evaluator, its scale, the head
size) and :meth:`FinalOptions.given` the rules between ``--final`` and its options, so the CLI only parses. The
checks that need more than the request (an evaluator's name against the registry, files, the predictor, the
budgets against the space) run once in :func:`~kdnas_bench.search.plan.prepare`. Every refusal is a
:class:`~kdnas_bench.search.domain.SearchError`, one line."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..defaults import DEFAULTS, INITS
from ..distill.data import AGNOSTIC
from ..distill.lengths import AUTO, parse_max_length
from ..keys import DatasetKey
from ..space import Shape
from .baselines import BASELINES, FAMILY_NAMES, parse_baselines
from .domain import SearchError
from .executor import EXECUTORS
from .recipe import Recipe, check_choice, check_positive
from .rerank import RERANK_BY
from .reward import BUDGET_MARGIN, FORMS, MODES, RewardSpec, check_budget_mb
from .strategies import STRATEGIES


def check_study(*, episodes: int, candidates: int, budget_mb: float | None, head_dim: int | str | None) -> None:
    """The values a request and a study's configuration share, checked in one place."""
    check_positive(**{"--episodes": episodes, "--candidates": candidates})
    check_budget_mb(budget_mb)
    if head_dim is not None and head_dim != "teacher" and not (
            isinstance(head_dim, int) and not isinstance(head_dim, bool) and head_dim > 0):
        raise SearchError(f"--head-dim must be a positive integer or 'teacher', got {head_dim!r}")


@dataclass(frozen=True)
class SupernetOptions:
    """The supernet evaluator: its folder (None: ``RUN/supernet``), training size, and the proxy re-ranking of
    the best ``rerank_top`` candidates per budget (0: none)."""

    folder: str | None = None
    examples: int = 4000
    epochs: float = 2.0
    rerank_top: int = 4
    rerank_examples: int = 500
    rerank_epochs: float = 2.0
    rerank_by: str = "metric"  # a rung's order: its dev metric, or "fidelity" (minus the KD loss against the teacher)
    rerank_lr: float | None = None  # the rungs' learning rate (None: distill's)

    def __post_init__(self) -> None:
        check_positive(**{"--supernet-examples": self.examples, "--supernet-epochs": self.epochs,
                          "--rerank-examples": self.rerank_examples, "--rerank-epochs": self.rerank_epochs,
                          "--rerank-lr": self.rerank_lr})
        if self.rerank_top < 0:
            raise SearchError(f"--rerank-top must be 0 or more, got {self.rerank_top}")
        if self.rerank_by not in RERANK_BY:
            raise SearchError(f"--rerank-by must be one of {', '.join(RERANK_BY)}, got {self.rerank_by!r}")


@dataclass(frozen=True)
class FinalOptions:
    """Final distillation of each winner: ``examples`` None is the whole train set. ``baselines``: the
    hand-crafted families (:mod:`~kdnas_bench.search.baselines`) scaled to each budget and distilled with the same
    recipe, ``baseline_seeds`` seeds each (the winner too, for the gap's significance); () turns them off.
    ``max_length`` tokens per example or ``"auto"`` (:mod:`kdnas_bench.distill.lengths`); ``eval_every="epoch"``
    keeps each student's best epoch, stopping after ``early_stopping`` evaluations without improvement
    (:mod:`kdnas_bench.distill.selection`); ``log_to="tensorboard"`` logs each into ``RUN/final/<arch>/logs``."""

    examples: int | None = None
    epochs: float = 3.0
    baselines: tuple[str, ...] = BASELINES
    baseline_seeds: int = 1
    max_length: int | str = "auto"
    eval_every: str = "end"
    early_stopping: int | None = None
    log_to: str | None = None

    def __post_init__(self) -> None:
        check_positive(**{"--final-examples": self.examples, "--final-epochs": self.epochs,
                          "--baseline-seeds": self.baseline_seeds})
        bad = [n for n in self.baselines if n not in FAMILY_NAMES]
        if bad:
            raise SearchError(f"--baselines: unknown {', '.join(bad)} (choose from {', '.join(FAMILY_NAMES)}, or none)")
        Recipe.check_training(self.max_length, self.eval_every, self.early_stopping, self.log_to)

    @classmethod
    def given(cls, final: bool, *, examples: int | None = None, epochs: float = 3.0, baselines: str | None = None,
              baseline_seeds: int = 1, max_length: int | str = "auto", eval_every: str = "end",
              early_stopping: int | None = None, log_to: str | None = None) -> FinalOptions | None:
        """The final's options as ``kdnas-bench search`` takes them: None without ``final``, where an option that
        only the final reads (``baselines`` as typed, ``baseline_seeds``, the training options) is refused."""
        check_positive(**{"--final-examples": examples, "--final-epochs": epochs, "--baseline-seeds": baseline_seeds})
        if not final and (baselines is not None or baseline_seeds != 1):
            raise SearchError("--baselines and --baseline-seeds compare the final students: add --final")
        max_length = parse_max_length(max_length)
        if not final:
            for name, given in (("--max-length", max_length != AUTO), ("--eval-every", eval_every != "end"),
                                ("--early-stopping", early_stopping is not None), ("--log-to", log_to is not None)):
                if given:
                    raise SearchError(f"{name} sets the final distillation: add --final")
            return None
        return cls(examples, epochs, parse_baselines(baselines), baseline_seeds, max_length=max_length,
                   eval_every=eval_every, early_stopping=early_stopping, log_to=log_to)

    def training(self) -> dict[str, Any]:
        """The training options of each final distillation (keyword arguments of ``distill``)."""
        return {"max_length": self.max_length, "eval_every": self.eval_every, "early_stopping": self.early_stopping,
                "log_to": self.log_to}

    def recipe(self, proxy: Recipe) -> Recipe:
        """The final's recipe: the search's (losses, seed, init, learning rate) on this many examples and
        epochs, with these training options."""
        return Recipe(self.examples, self.epochs, proxy.losses, proxy.lr, proxy.seed, proxy.init,
                      **self.training())


@dataclass(frozen=True)
class SearchRequest:
    """Everything a search needs. ``task`` is a GLUE task or ``"agnostic"`` (task-agnostic KD on ``text``);
    ``table`` scores candidates from precomputed accuracies instead of distilling them; ``losses`` None takes
    the default of the task kind (:data:`~kdnas_bench.defaults.DEFAULTS`); ``final`` None skips the final
    distillation. ``evaluator`` names one of :data:`~kdnas_bench.search.evaluators.EVALUATORS`; the default,
    ``"proxy"``, gives way to ``"table"`` with ``table`` and to ``"agnostic"`` with ``task="agnostic"``."""

    key: DatasetKey
    budgets_ms: tuple[float, ...]
    task: Any  # a GLUE name, "agnostic", or a Task of one's own (distill.taskfiles.own_task)
    reward_w: float = DEFAULTS.reward_w
    mode: str = "hard"
    # "hard": R = A within the budget (straddling candidates measured before the pick); "soft": A·(lat/T)^w
    reward_form: str = "hard"
    # the hard reward's check: a measured latency passes at (1 - budget_margin) x the budget or less
    budget_margin: float = BUDGET_MARGIN
    shape: Shape = field(default_factory=lambda: Shape(DEFAULTS.batch, DEFAULTS.seq))
    strategy: str = "kdnas"
    episodes: int = 15
    candidates: int = 20
    seed: int = 0
    evaluator: str = "proxy"
    table: str | None = None
    teacher: str | None = None
    teacher_examples: int = DEFAULTS.teacher_examples
    data_dir: str | None = None
    text: str | None = None
    proxy_examples: int = DEFAULTS.proxy_examples
    proxy_epochs: float = DEFAULTS.proxy_epochs
    losses: str | None = None
    init: str = "inherit"
    supernet: SupernetOptions = field(default_factory=SupernetOptions)
    final: FinalOptions | None = None
    space: str | None = None
    predictors: str | None = None
    run_dir: str | None = None
    executor: str = "local"
    ray_address: str | None = None
    budget_mb: float | None = None  # peak-memory hard constraint (MiB), from the predictor's memory model
    # Only candidates whose head size (hidden / heads) is this: an int, or "teacher" for the teacher's own. With
    # inherited weights such a student keeps whole teacher heads; other sizes merge or split them.
    head_dim: int | str | None = None
    # Where training runs (teacher, supernet, candidates, re-ranking, final): cpu, cuda or auto (the GPU when
    # torch sees one); ``gpus_per_candidate``: each Ray worker's GPU share (None: 1 when training on a GPU, else 0)
    accelerator: str = "cpu"
    gpus_per_candidate: float | None = None
    # "now": predictions (and so the budget checks) at this machine's speed now, the canary timed first; the
    # final check then records the speed factor in the seconds each winner is measured
    speed: str = "reference"
    # go on with a teacher whose recorded dev score does not beat the task's trivial score by 2 points (refused by
    # default: :func:`~kdnas_bench.distill.baseline.check_teacher`); not part of the run's identity
    allow_weak_teacher: bool = False
    # A finished run re-run returns its stored result; "final": re-do only the final step (needs ``final``)
    redo: str | None = None
    # --front K: the winners picked from the accuracy-latency front, K points of it re-scored (None: no front)
    front: int | None = None
    # the evaluator's own options (an instance of its ``Options`` dataclass; a plugin's way in); None: the
    # evaluator reads them from the fields above (proxy_examples, proxy_epochs, init, supernet, table, text)
    evaluator_options: Any = None

    def __post_init__(self) -> None:
        if self.front is not None and self.front < 0:
            raise SearchError(f"--front must be 0 or more, got {self.front}")
        if self.redo is not None and self.redo != "final":
            raise SearchError(f"--redo must be 'final' (the only step a finished search re-does), got {self.redo!r}")
        if self.redo is not None and self.final is None:
            raise SearchError("--redo final re-does the final distillation and measurement: pass --final too")
        check_positive(**{"--threads": self.key.threads, "--proxy-examples": self.proxy_examples,
                          "--proxy-epochs": self.proxy_epochs, "--teacher-examples": self.teacher_examples})
        check_study(episodes=self.episodes, candidates=self.candidates, budget_mb=self.budget_mb,
                    head_dim=self.head_dim)
        for name, value, allowed in (("strategy", self.strategy, tuple(STRATEGIES)), ("init", self.init, INITS),
                                     ("executor", self.executor, tuple(EXECUTORS)), ("mode", self.mode, MODES),
                                     ("reward", self.reward_form, FORMS),
                                     ("speed", self.speed, ("reference", "now"))):
            check_choice(name, value, allowed)
        if not (math.isfinite(self.budget_margin) and 0 <= self.budget_margin < 0.5):
            raise SearchError(f"--budget-margin must be a share of the budget from 0 up to 0.5 (e.g. 0.03), "
                              f"got {self.budget_margin:g}")
        self.reward  # noqa: B018  built (and so checked) once, here: the budgets and w
        self.recipe  # noqa: B018
        self.final_recipe  # noqa: B018

    @cached_property
    def reward(self) -> RewardSpec:
        """The reward spec, built and checked once (with the request)."""
        return RewardSpec(tuple(self.budgets_ms), w=self.reward_w, mode=self.mode, form=self.reward_form)

    @cached_property
    def recipe(self) -> Recipe:
        """The proxy distillation's recipe (the losses resolved to the task kind's default), which the
        evaluators and the re-ranking scale and the final job extends (:attr:`final_recipe`)."""
        return Recipe(self.proxy_examples, self.proxy_epochs, self.losses or DEFAULTS.search_losses_for(self.agnostic),
                      seed=self.seed, init=self.init)

    @cached_property
    def final_recipe(self) -> Recipe | None:
        """The final distillation's recipe (None without ``final``)."""
        return None if self.final is None else self.final.recipe(self.recipe)

    @property
    def agnostic(self) -> bool:
        return is_agnostic(self.task)


def parse_head_dim(text: str | int | None) -> int | str | None:
    """``--head-dim`` as typed: a number becomes an int, ``"any"`` None (no restriction); anything else is passed
    on for :class:`SearchRequest` to accept (``"teacher"``) or refuse in one line."""
    if text is None or isinstance(text, int):
        return text
    t = text.strip().lower()
    if t == "any":
        return None
    return int(t) if t.lstrip("-").isdigit() else t


def is_agnostic(task: Any) -> bool:
    """``task`` names task-agnostic KD (``"agnostic"``, any case)."""
    return isinstance(task, str) and task.strip().lower() == AGNOSTIC
