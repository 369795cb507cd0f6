"""``kdnas-bench remeasure``: the device's noise floor (stored rows measured again, in a new time window)."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import KdnasError
from ..paths import default_store
from .common import console, err_console, positive, print_json
from .profile_cmds import BACKEND_NAMES, CANARY_MODES, _backend, load_space


def register(cli: click.Group) -> None:
    @cli.command("remeasure")
    @click.option("--backend", type=click.Choice(BACKEND_NAMES), default="torch", show_default=True)
    @click.option("--threads", type=int, default=1, show_default=True)
    @click.option("--samples", type=int, default=50, show_default=True, help="Stored rows to measure again.")
    @click.option("--fresh", type=int, default=0, show_default=True,
                  help="Also measure N configs the profile does not hold (held-out rows from a new time window).")
    @click.option("--canary", type=click.Choice(CANARY_MODES), default="call", show_default=True)
    @click.option("--space", "space_path", type=click.Path(), help="Space TOML for --fresh (default: bert.toml).")
    @click.option("--store", type=click.Path(), help="Profile store folder (default: the checkout's profiles/).")
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--onnx-cache", type=click.Path(), help="Folder for exported ONNX models.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def remeasure_cmd(backend: str, threads: int, samples: int, fresh: int, canary: str, space_path: str | None,
                      store: str | None, seed: int, onnx_cache: str | None, as_json: bool) -> None:
        """Measure stored rows of this device again, now: the device's noise floor.

        Reports the share of re-measured rows within ±5 % / ±10 % of their stored median, raw and
        drift-normalised (config/canary ratio), and writes it to the dataset's _floor.json, which
        `kdnas-bench predictors` shows beside each predictor's held-out accuracy.

        \b
        Example:
          kdnas-bench remeasure --backend torch --threads 1 --samples 60 --fresh 100
        """
        from ..profiling.device import environment
        from ..profiling.floor import remeasure
        from ..profiling.runner import Canary
        from ..profiling.store import ProfileStore

        positive("--threads", threads)
        if samples < 0 or fresh < 0 or samples + fresh == 0:
            raise KdnasError("--samples and --fresh must be >= 0, and one of them positive")
        model_space = load_space(space_path)  # its [model] section: the models the profile measured
        space = model_space if fresh else None
        bk = _backend(backend, threads, onnx_cache, model_space)
        env = environment(bk.name, threads)
        dataset = ProfileStore(Path(store) if store else default_store()).dataset(env["device_id"], bk.name, threads)
        if not dataset.path.exists():
            raise KdnasError(f"no profile of this device ({env['device_id']} {bk.name} t{threads}) in "
                             f"{dataset.path.parent.parent}; run `kdnas-bench profile` first")
        can = Canary(_backend(backend, threads, onnx_cache), canary) if canary != "none" else None
        with (err_console if as_json else console).status(f"re-measuring {samples} stored + {fresh} fresh configs…"):
            doc = remeasure(dataset, bk, samples=samples, fresh=fresh, space=space, canary=can, seed=seed)
        if as_json:
            print_json({k: v for k, v in doc.items() if k not in ("remeasured", "fresh")})
            return
        for name in ("raw", "normalised"):
            a = doc[name]
            if a:
                console.print(f"{name:>10}: {a['rows']} rows re-measured · within ±5 % {a['within_5pct']:.1%} · "
                              f"±10 % {a['within_10pct']:.1%} · median |change| {a['median_abs']:.1%} · "
                              f"median new/stored {a['median_ratio']:.3f}")
        if doc["fresh"]:
            console.print(f"{len(doc['fresh'])} fresh configs measured (held-out rows for `predictors`)")
        console.print(f"saved {dataset.path / '_floor.json'}")
