"""Well-known students by name, accepted wherever an arch is (``--arch tinybert-4l``, ``--students``): the
table lives beside the one arch parser, :func:`kdnas_bench.models.parse_arch`."""

from __future__ import annotations

from ..models import NAMED

__all__ = ["NAMED"]
