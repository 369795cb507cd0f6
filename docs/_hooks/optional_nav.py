"""MkDocs hook: drop nav entries whose page is not in docs/ (yet), so the site builds with --strict while
pages that other branches add are still on their way. A missing page is reported as an INFO line."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.optional_nav")

# pages the nav lists before they exist; any other missing page stays an error (mkdocs --strict fails on it)
OPTIONAL = {
    "howto/own-task.md", "howto/own-teacher.md", "howto/gpu.md", "concepts/speed-now.md",
    "results/latency.md", "results/claims.md", "extend.md",
}


def _prune(items: list[Any], docs: Path) -> list[Any]:
    kept: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            (title, value), = item.items()
            if isinstance(value, list):
                value = _prune(value, docs)
                if value:
                    kept.append({title: value})
                continue
            item_path = value
        else:
            item_path = item
        if isinstance(item_path, str) and item_path in OPTIONAL and not (docs / item_path).is_file():
            log.info("nav: %s is not in docs/ yet; left out", item_path)
            continue
        kept.append(item)
    return kept


def on_config(config: Any, **_: Any) -> Any:
    if config.nav:
        config.nav = _prune(config.nav, Path(config.docs_dir))
    return config
