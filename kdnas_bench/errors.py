"""Errors a user can cause. The CLI prints them as one line and exits non-zero."""

from __future__ import annotations


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
