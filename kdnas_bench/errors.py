"""Errors a user can cause. The CLI prints them as one line and exits non-zero."""

from __future__ import annotations

import difflib


class KdnasError(Exception):
    """Base class for user-facing errors (bad input, corrupt files, unknown ids)."""


class SpaceError(KdnasError):
    """An invalid search space file or architecture."""


class StoreError(KdnasError):
    """A profile store that cannot be read or written safely."""


class PredictorError(KdnasError):
    """A missing, corrupt or incompatible predictor."""


class BackendError(KdnasError):
    """An unknown or unavailable backend."""


def did_you_mean(name: str, known: list[str] | tuple[str, ...]) -> str:
    """``" (did you mean 'x'?)"`` for the closest known names to a mistyped one (difflib), else ``""``."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
