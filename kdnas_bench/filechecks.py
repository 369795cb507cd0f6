"""Checks of the small input files a user hands to a verb, before the verb does any work.

* ``predict --configs FILE.json``: at most ``MAX_CONFIG_BYTES`` on disk and ``MAX_CONFIGS`` configs (so
  memory stays bounded: 2,000,000 configs used to take 2.1 GB), a regular file (a FIFO would block the read),
  UTF-8 JSON, a list. Each config's keys and integer values are checked by the predictor's feature code,
  which names the config and the field.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from .errors import KdnasError

MAX_CONFIGS = 500_000
MAX_CONFIG_BYTES = 48 * 2**20


def read_json_bytes(path: Path, what: str, max_bytes: int) -> Any:
    """Parse a JSON file of at most ``max_bytes``; one-line errors naming ``what`` and the file."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
            raise KdnasError(f"{what} {path} is not a regular file (a pipe or a device); give a file")
        size = st.st_size
        if size > max_bytes:
            raise KdnasError(f"{what} {path} is {size / 2**20:.0f} MiB, more than the {max_bytes // 2**20} MiB "
                             "this verb reads; split it")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise KdnasError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise KdnasError(f"{what} {path} is a folder, not a file") from None
    except OSError as exc:
        raise KdnasError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise KdnasError(f"{what} {path}:{line}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise KdnasError(f"{what} {path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise KdnasError(f"{what} {path} nests too deeply to be a configs file") from None


def read_configs_file(path: Path) -> list[Any]:
    doc = read_json_bytes(path, "configs file", MAX_CONFIG_BYTES)
    if not isinstance(doc, list):
        raise KdnasError(f"configs file {path} must hold a JSON list of objects with layers, hidden, heads, ffn, "
                         "seq, batch")
    if len(doc) > MAX_CONFIGS:
        raise KdnasError(f"configs file {path} holds {len(doc):,} configs, more than {MAX_CONFIGS:,}; split it")
    return doc
