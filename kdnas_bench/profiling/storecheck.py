"""Checks of a profile store's folders: every dataset folder has a ``_dataset.json`` that names it.

``profiles/<device_id>/<backend>-t<threads>/_dataset.json`` (``dataset.json`` in a schema-1 folder not yet
migrated) must be a JSON object whose ``device_id``,
``backend`` and ``threads`` are the folder's: a copied or renamed folder would otherwise show up as a
phantom empty dataset, and a folder without ``dataset.json`` would be hidden. Both are one-line errors
naming the file and the field; nothing is changed.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import StoreError
from ..keys import DatasetKey


def _key(meta: Path) -> DatasetKey:
    try:
        doc = json.loads(meta.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"corrupt dataset metadata {meta}: {exc}") from None
    if not isinstance(doc, dict):
        raise StoreError(f"corrupt dataset metadata {meta}: not a JSON object")
    for field, kind in (("device_id", str), ("backend", str), ("threads", int)):
        value = doc.get(field)
        if not isinstance(value, kind) or isinstance(value, bool) or value == "":
            raise StoreError(f"corrupt dataset metadata {meta}: field '{field}' must be a "
                             f"{'non-empty string' if kind is str else 'integer'}, got {value!r}")
    key = DatasetKey(doc["device_id"], doc["backend"], doc["threads"])
    if meta.parent != meta.parent.parent.parent / key.relpath:
        raise StoreError(f"{meta} names dataset {key.relpath} but lies in {meta.parent.parent.name}/"
                         f"{meta.parent.name}; nothing was changed: move the folder or fix the file")
    return key


def check_dataset_folders(root: Path) -> list[DatasetKey]:
    """The keys of every dataset under ``root``, in folder order, each checked."""
    keys = []
    for folder in sorted(p for p in Path(root).glob("*/*") if p.is_dir()):
        meta = folder / "_dataset.json"
        if not meta.exists():
            meta = folder / "dataset.json"  # schema 1, renamed by the next writer
        if not meta.exists():
            if any(folder.glob("*.parquet")):
                raise StoreError(f"{folder} holds Parquet files but no _dataset.json: not a kdnas-bench dataset "
                                 "(restore the file or move the folder out of the store)")
            continue
        keys.append(_key(meta))
    return keys
