"""A weight-sharing supernet of a teacher's students (model.py), its files (store.py) and training (train.py)."""

from __future__ import annotations

from .model import Supernet, SupernetError, extremes, space_fits
from .store import load
from .train import SupernetConfig, check_recipe, train_supernet

__all__ = ["Supernet", "SupernetConfig", "SupernetError", "check_recipe", "extremes", "load", "space_fits",
           "train_supernet"]
