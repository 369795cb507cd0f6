"""The defaults of ``kdnas-bench search`` as a library call: :func:`search_request` builds a
:class:`~.request.SearchRequest` whose evaluator, scale and head size are the command's defaults where they are not
given. It reads the evaluator registry (one-shot evaluators search more candidates), so it sits above
:mod:`.evaluators`, which import :mod:`.request`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..defaults import DEFAULTS
from ..keys import DatasetKey
from ..space import Shape
from .evaluators import EVALUATORS
from .recipe import check_positive
from .request import SearchRequest, SupernetOptions, is_agnostic, parse_head_dim


def default_evaluator(task: Any, table: str | None) -> str:
    """The evaluator of ``kdnas-bench search`` without ``--evaluator``: the measured best recipe (the supernet),
    except that a table or unlabeled text has no supernet (``proxy``, which gives way to them)."""
    return "proxy" if table or is_agnostic(task) else DEFAULTS.search_evaluator


def is_oneshot(evaluator: str) -> bool:
    """Whether the evaluator named ``evaluator`` (a name or an alias of the registry) scores candidates one-shot
    (a supernet's sub-networks), which sets a search's scale and head size."""
    return evaluator in EVALUATORS and bool(EVALUATORS[evaluator].oneshot)


def default_head_dim(task: Any, table: str | None, evaluator: str, init: str) -> str:
    """The head size of ``kdnas-bench search`` without ``--head-dim``: inherited students (the supernet's, or
    ``init="inherit"``) keep whole teacher heads only at the teacher's head size, so ``"teacher"`` there; ``"any"``
    with a table, unlabeled text, or students that inherit nothing."""
    inherits = is_oneshot(evaluator) or init == "inherit"
    return "teacher" if not table and not is_agnostic(task) and inherits else "any"


def default_supernet(folder: str | None = None) -> SupernetOptions:
    """The supernet evaluator's options of ``kdnas-bench search`` (:data:`~kdnas_bench.defaults.DEFAULTS`): its
    training size and the re-ranking (places per budget, rung size, epochs, order, learning rate)."""
    d = DEFAULTS
    return SupernetOptions(folder, d.supernet_examples, d.supernet_epochs, d.rerank_top, d.rerank_examples,
                           d.rerank_epochs, d.rerank_by, d.rerank_lr)


def search_request(key: DatasetKey, budgets_ms: Sequence[float], task: Any, *, evaluator: str | None = None,
                   episodes: int | None = None, candidates: int | None = None, head_dim: int | str | None = None,
                   init: str = "inherit", seq: int = DEFAULTS.seq, batch: int = DEFAULTS.batch,
                   **fields: Any) -> SearchRequest:
    """A :class:`SearchRequest` with the defaults of ``kdnas-bench search`` for what is None: the evaluator
    (:func:`default_evaluator`), episodes and candidates at that evaluator's scale (:data:`~kdnas_bench.defaults.
    DEFAULTS`), the supernet and its re-ranking (:func:`default_supernet`, unless ``supernet`` is given), the head
    size (:func:`default_head_dim`; ``head_dim`` as typed: a number, ``"teacher"`` or
    ``"any"``). ``init="auto"`` is ``"embeddings"``; ``seq`` and ``batch`` make the shape. ``fields`` are the
    request's other fields, as they are. (:class:`SearchRequest` itself keeps the paper's explicit defaults.)"""
    table = fields.get("table")
    evaluator = evaluator or default_evaluator(task, table)
    oneshot = is_oneshot(evaluator)
    if episodes is None:
        episodes = DEFAULTS.oneshot_episodes if oneshot else DEFAULTS.proxy_episodes
    if candidates is None:
        candidates = DEFAULTS.oneshot_candidates if oneshot else DEFAULTS.proxy_candidates
    if head_dim is None:
        head_dim = default_head_dim(task, table, evaluator, init)
    check_positive(**{"--threads": key.threads, "--seq": seq, "--batch": batch})
    if oneshot:
        fields.setdefault("supernet", default_supernet())
    return SearchRequest(key=key, budgets_ms=tuple(budgets_ms), task=task, evaluator=evaluator, episodes=episodes,
                         candidates=candidates, head_dim=parse_head_dim(head_dim), shape=Shape(batch, seq),
                         init="embeddings" if init == "auto" else init, **fields)
