"""A weight-sharing supernet of a teacher's students (model.py), its files (store.py) and training (train.py).

Names are imported on first use (see :mod:`kdnas_bench.lazy`), so importing the package does not import torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:
    from .model import Supernet, SupernetError, extremes, space_fits
    from .store import load
    from .train import SupernetConfig, check_recipe, train_supernet

__all__ = ["Supernet", "SupernetConfig", "SupernetError", "check_recipe", "extremes", "load", "space_fits",
           "train_supernet"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "Supernet": "model", "SupernetError": "model", "extremes": "model", "space_fits": "model",
    "load": "store",
    "SupernetConfig": "train", "check_recipe": "train", "train_supernet": "train",
})
