"""The predictors' public API in one import (the CLI, the search and the benchmarks use it):

* :mod:`.rows` — a dataset's profile rows and the quiet ones among them;
* :mod:`.fitting` — fitting from scratch or by transfer, and :func:`fit_and_save`;
* :mod:`.io` — a predictor folder's files (each model class owns its state: ``to_state`` / ``from_state``);
* :mod:`.lookup` — finding, loading and listing fitted predictors.

    >>> from kdnas_bench.predictors import load_predictor
    >>> p = load_predictor("intel-xeon-processor-2c-cfff2f", "torch", 1)
    >>> low, mid, high = p.predict_interval(df_with_layers_hidden_heads_ffn_seq_batch)  # ms, numpy arrays
    >>> p.predict_interval([(Arch(4, 312, 12, 1200), Shape(1, 128))]).out_of_range     # array([False])
"""

from __future__ import annotations

from .drift import normalise_rows
from .fitting import MIN_ROWS, fit_and_save, fit_memory_only, fit_scratch, fit_transfer
from .lookup import Predictor, fitted_keys, list_predictors, load_folder, load_predictor, predictor_dir, resolve_key
from .rows import LOAD_MARGIN, MIN_QUIET_ROWS, load_rows, quiet_mask, select_rows

__all__ = [
    "LOAD_MARGIN", "MIN_QUIET_ROWS", "MIN_ROWS", "Predictor", "fit_and_save", "fit_memory_only", "fit_scratch",
    "fit_transfer",
    "fitted_keys", "list_predictors", "load_folder", "load_predictor", "load_rows", "normalise_rows",
    "predictor_dir", "quiet_mask", "resolve_key", "select_rows",
]
