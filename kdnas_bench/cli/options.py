"""One vocabulary for every verb: the options that name the same thing are declared here once, with one name,
type, separator and default, and every verb uses these decorators.

* lists are comma-separated (``--budget-ms 10,20``, ``--device a,b``, ``--seqs 32,128``);
* an arch is ``L,H,A,FFN`` (``4,312,12,1200``), its name ``4L-312H-12A-1200F``, a named student
  (``tinybert-4l``) or a saved model folder (the shape in its config.json) wherever one is taken;
* ``--backend`` is a choice from the backend registry (default torch), ``--threads`` a positive count (default 1);
* an unknown choice gets "did you mean …".

``tests/test_cli_options.py`` walks the click tree and checks that every option has a help line and that options
of the same name agree on type, default and ``multiple`` across verbs (``RECIPE_OPTIONS`` may differ in default:
each verb's default there is its own measured recipe)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import click

from .. import models
from ..defaults import DEFAULTS, INITS
from ..errors import KdnasError, did_you_mean
from ..jobs.common import training_settings as training_settings  # the library's, kept importable from here
from ..paths import data_file
from ..profiling.backends import BACKENDS, BUILT_IN
from ..registry import Registry
from ..space import Arch
from .common import err_console

BACKEND_NAMES = [s.name for s in BUILT_IN]  # this package's backends (``RegistryChoice(BACKENDS)`` adds plugins')

# options whose default is each verb's own recipe (a toy-scale quickstart, a teacher's vs a student's epochs)
RECIPE_OPTIONS = frozenset({"--epochs", "--lr", "--batch-size", "--episodes", "--candidates", "--proxy-examples",
                            "--proxy-epochs", "--final-examples", "--evaluator", "--losses", "--out", "--max-examples"})

# options that some verbs take repeated (several students at once) and others once
MAY_REPEAT = frozenset({"--arch"})

Decorator = Callable[[Any], Any]


class Choice(click.Choice):
    """``click.Choice`` that answers a near miss with "did you mean …"."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            choices = [str(c) for c in self.choices]
            self.fail(f"{value!r} is not one of {', '.join(choices)}{did_you_mean(str(value), choices)}", param, ctx)


class RegistryChoice(Choice):
    """A choice among a registry's names (:mod:`kdnas_bench.registry`), read when click first needs them, so an
    installed plugin is among them; an old spelling (an alias) is accepted and becomes the name. ``keep`` (a
    test on the registered part) narrows the choice; ``extra`` adds choices that are no part (``auto``)."""

    def __init__(self, registry: Registry[Any], keep: Callable[[Any], bool] | None = None,
                 extra: tuple[str, ...] = ()) -> None:
        super().__init__([], case_sensitive=True)
        self.registry, self.keep, self.extra = registry, keep, extra

    @property  # type: ignore[override]
    def choices(self) -> list[str]:
        names = [n for n in self.registry if self.keep is None or self.keep(self.registry[n])]
        return [*names, *self.extra]

    @choices.setter
    def choices(self, _value: Any) -> None:  # click.Choice.__init__ sets it; the registry holds them
        return None

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value not in self.extra and value in self.registry:
            value = self.registry.canonical(value)  # an alias: its name
        return super().convert(value, param, ctx)



def arch_of_folder(text: str) -> Arch | None:
    """The arch of a saved model folder (its config.json), None when ``text`` names no folder
    (:func:`kdnas_bench.models.arch_of_folder`; a module-level name, so a test may stand in for it)."""
    return models.arch_of_folder(text)


def parse_arch_text(text: str) -> Arch:
    """An arch from ``L,H,A,FFN``, ``4L-312H-12A-1200F``, a named student or a saved model folder (the shape in
    its config.json); KdnasError otherwise. The library's one parser, :func:`kdnas_bench.models.parse_arch`."""
    return models.parse_arch(text, folder=lambda raw: arch_of_folder(raw))


class ArchType(click.ParamType):
    name = "arch"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Arch):
            return value
        try:
            return parse_arch_text(value)
        except KdnasError as exc:
            self.fail(str(exc).removeprefix(f"invalid arch {str(value).strip()!r}: "), param, ctx)


class NumberList(click.ParamType):
    """Comma-separated positive numbers (``10,20,40``), as a tuple."""

    def __init__(self, kind: type = float) -> None:
        self.kind = kind
        self.name = "n,n,…" if kind is int else "x,x,…"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        name = max(getattr(param, "opts", None) or ["the list"], key=len)
        try:
            values = tuple(self.kind(v) for v in str(value).replace(" ", "").split(",") if v)
        except ValueError:
            self.fail(f"{name} must be {'integers' if self.kind is int else 'numbers'} separated by commas, got "
                      f"{value!r}", param, ctx)
        if not values:
            self.fail(f"{name} needs at least one value", param, ctx)
        if any(not (v > 0 and math.isfinite(v)) for v in values):
            self.fail(f"{name} values must be positive finite numbers, got {value!r}", param, ctx)
        return values

    def __eq__(self, other: object) -> bool:  # the consistency test compares types across verbs
        return isinstance(other, NumberList) and other.kind is self.kind

    def __hash__(self) -> int:
        return hash((NumberList, self.kind))


ARCH = ArchType()
INIT_CHOICES = [*INITS, "auto"]  # auto: the older name of embeddings
THREADS = int  # checked where used (``positive``), so every verb says "--threads must be positive"


def _opt(*decls: str, **kw: Any) -> Decorator:
    return click.option(*decls, **kw)


def backend_option(help: str = "Backend, from the registry (see `kdnas-bench devices`).") -> Decorator:
    return _opt("--backend", type=RegistryChoice(BACKENDS), default="torch", show_default=True, help=help)


def threads_option(help: str = "Intra-op CPU threads.") -> Decorator:
    return _opt("--threads", type=THREADS, default=1, show_default=True, help=help)


def device_option(help: str = "Device id (see `kdnas-bench predictors`).") -> Decorator:
    return _opt("--device", "device_id", required=True, help=help)


def seed_option(help: str = "Random seed.") -> Decorator:
    return _opt("--seed", type=int, default=0, show_default=True, help=help)


def seq_option(help: str = "Sequence length.") -> Decorator:
    return _opt("--seq", type=int, default=DEFAULTS.seq, show_default=True, help=help)


def batch_option(help: str = "Batch size.") -> Decorator:
    return _opt("--batch", type=int, default=DEFAULTS.batch, show_default=True, help=help)


def arch_option(help: str = "Student: L,H,A,FFN (e.g. 4,312,12,1200), 4L-312H-12A-1200F, a name (tinybert-4l) or a saved "
                "model folder (its config.json).",
                *, required: bool = False, multiple: bool = False) -> Decorator:
    return _opt("--arch", type=ARCH, required=required, multiple=multiple, help=help)


def budget_ms_option(help: str = "Latency budget(s) in ms, comma-separated, e.g. 20 or 10,20,40.", *,
                     required: bool = False, dest: str = "budget_ms") -> Decorator:
    return _opt("--budget-ms", dest, type=NumberList(float), required=required, help=help)


def budget_mb_option(help: str = "Peak-memory budget in MiB (predicted by the predictor's memory model).") -> Decorator:
    return _opt("--budget-mb", type=float, help=help)


def allow_weak_teacher_option() -> Decorator:
    return _opt("--allow-weak-teacher", is_flag=True,
                help="Go on with a teacher whose recorded dev score does not beat the task's trivial answer (majority "
                     "class, or the mean) by 2 points; refused by default, since its students only learn a constant.")


def json_option(help: str = "Print JSON instead of tables.") -> Decorator:
    return _opt("--json", "as_json", is_flag=True, help=help)


def store_option(help: str = "Profile store folder (default: the checkout's profiles/, else the installed one).") -> Decorator:
    return _opt("--store", type=click.Path(), help=help)


def predictors_option(help: str = "Predictor folder (default: the checkout's predictors/, else the installed one).", *,
                      dest: str = "predictors_dir") -> Decorator:
    return _opt("--predictors", dest, type=click.Path(), help=help)


def shipped_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A path option's value; a checkout path such as ``search/spaces/minilm-students.toml`` that is not here
    names the copy shipped in the package (an installed kdnas-bench, run outside a checkout)."""
    if value is None:
        return None
    found = data_file(value)
    return str(found) if found.is_absolute() and not os.path.isabs(value) else value


def space_option(help: str = "Search-space TOML (default: search/spaces/bert.toml).", *, required: bool = False) -> Decorator:
    return _opt("--space", "space_path", type=click.Path(), required=required, callback=shipped_path, help=help)


GLUE_DIR_HELP = ("GLUE TSV folder, e.g. glue/ (one subfolder per task, as in the GLUE download: glue/SST-2/train.tsv, "
                 "dev.tsv)")


def data_dir_option(help: str = GLUE_DIR_HELP + ".") -> Decorator:
    return _opt("--data-dir", type=click.Path(), help=help)


def list_items(text: str | None) -> list[str] | None:
    """A comma-separated list of names (``--device a,b``), blanks dropped; None when not given."""
    if text is None:
        return None
    return [t.strip() for t in str(text).split(",") if t.strip()]


ALIASES_KEY = "kdnas_deprecated_aliases"
DEPRECATED = "is deprecated"  # every deprecation note says this (the docs test fails on an example that prints it)


def deprecation_note(text: str) -> None:
    """One line on stderr: ``note: <text>``, where ``text`` says what is deprecated and what to use instead.
    Every deprecated spelling a verb still accepts goes through here (tests/test_docs.py patches it)."""
    err_console.print(f"note: {text}", highlight=False, markup=False, soft_wrap=True)


def deprecated_alias(old: str, new: str, dest: str, type: Any = None) -> Decorator:
    """A hidden ``old`` option that still works, says it is deprecated and gives its value to ``new``'s ``dest``
    (the command wrapper in :mod:`kdnas_bench.cli` applies it); ``type`` as ``new``'s."""

    def forward(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None:
            return
        deprecation_note(f"{old} {DEPRECATED}; use {new}")
        ctx.meta.setdefault(ALIASES_KEY, {})[dest] = (value, old, new)

    return _opt(old, f"_alias_{dest}", type=type, hidden=True, expose_value=False, callback=forward,
                help=f"Deprecated: use {new}.")


def apply_aliases(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The values given through :func:`deprecated_alias` options, put where the command reads them (both spellings
    at once: one clear line)."""
    ctx = click.get_current_context(silent=True)
    for dest, (value, old, new) in ((ctx.meta.get(ALIASES_KEY) or {}) if ctx is not None else {}).items():
        source = ctx.get_parameter_source(dest) if ctx is not None else None
        if source is click.core.ParameterSource.COMMANDLINE:
            raise KdnasError(f"give {new} or its old spelling {old}, not both")
        kwargs[dest] = value
    return kwargs


# -- training: the Trainer's basics, one group for every verb that trains ---------------------------
EVAL_EVERY_CHOICES = ["end", "epoch"]  # kdnas_bench.distill.selection.EVAL_EVERY
LOG_TO_CHOICES = ["tensorboard"]  # kdnas_bench.distill.tracking.LOG_TO


MAX_LENGTH_HELP = ("Tokens per example: a number, or auto (the longest train or dev example rounded up to a multiple "
                   "of 8, at most the model's positions). The output says how many examples are cut.")
LOG_TO_HELP = ("Log the training loss, learning rate, dev metrics and configuration to this tracker (needs pip install "
               "'kdnas-bench[track]').")
EVAL_EVERY_HELP = ("epoch: score dev after every epoch and keep the best checkpoint (restored at the end); end: once, "
                   "after training.")
EARLY_STOPPING_HELP = "With --eval-every epoch: stop after N evaluations without a better dev score."


def training_options(*, selection: bool = True, final: bool = False) -> Decorator:
    """``--max-length``, ``--log-to``, ``--log-dir`` and, with ``selection``, ``--eval-every`` and
    ``--early-stopping`` (read them with :func:`training_settings`). ``final``: the options of ``search --final``'s
    distillations (each student logs into its own folder: no ``--log-dir``)."""
    said = "--final's distillation: " if final else ""
    decorators = [
        _opt("--max-length", default="auto", show_default=True, metavar="N|auto",
             help=f"In {said}{MAX_LENGTH_HELP[0].lower()}{MAX_LENGTH_HELP[1:]}" if final else MAX_LENGTH_HELP),
        _opt("--log-to", type=Choice(LOG_TO_CHOICES),
             help=LOG_TO_HELP + (" Each --final student logs into RUN/final/<arch>/logs." if final else "")),
    ]
    if not final:
        decorators.append(_opt("--log-dir", type=click.Path(), help="Folder the tracker logs into (default: OUT/logs)."))
    if selection:
        decorators += [
            _opt("--eval-every", type=Choice(EVAL_EVERY_CHOICES), default="end", show_default=True,
                 help=f"In {said}{EVAL_EVERY_HELP}" if final else EVAL_EVERY_HELP),
            _opt("--early-stopping", type=int, metavar="N", help=f"In {said}{EARLY_STOPPING_HELP[0].lower()}"
                 f"{EARLY_STOPPING_HELP[1:]}" if final else EARLY_STOPPING_HELP),
        ]

    def apply(f: Any) -> Any:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply
