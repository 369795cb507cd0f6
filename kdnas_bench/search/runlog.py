"""Reading a search run's files safely: ``evaluations.jsonl``, ``run.json`` and ``result.json``.

``evaluations.jsonl`` is appended one fsynced line per evaluation, so a crash can leave at most one torn
*last* line (no newline at its end). :func:`read_log` with ``heal=True`` (the search, which owns the run)
moves such a fragment to ``evaluations.jsonl.torn`` and cuts the log back to its last full line, so the
next append starts on a fresh line and that one evaluation is redone once. With ``heal=False`` (``report``,
which only reads) the fragment is counted as skipped. A full line that is not JSON (an older torn line
with a record appended onto it) is skipped and counted. A record that *is* JSON but has wrong types,
and bytes that are not UTF-8, are errors naming the file, the line and the field: nothing is guessed.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..space import Arch
from .domain import SearchError

LOG_FILE = "evaluations.jsonl"
TORN_SUFFIX = ".torn"


@dataclass
class LogRead:
    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0  # full lines that are not JSON, plus a torn last line left in place
    torn: bytes | None = None  # the torn last line found (set aside when healed)
    notes: list[str] = field(default_factory=list)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _number(rec: dict[str, Any], key: str, where: str, *, positive: bool = False, optional: bool = False) -> None:
    """``rec[key]`` is a number: positive and finite with ``positive`` (latencies, budgets); a metric may be
    NaN (a degenerate student's correlation), which JSON logs write as NaN."""
    v: Any = rec.get(key)
    if v is None and optional:
        return
    if not _is_number(v) or (positive and not (math.isfinite(v) and v > 0)):
        kind = "a positive finite number" if positive else "a number"
        raise SearchError(f"{where}: field '{key}' must be {kind}, got {v!r}")


def check_record(rec: Any, where: str) -> dict[str, Any]:
    """One evaluation record, type-checked; a SearchError naming ``where`` and the field otherwise."""
    if not isinstance(rec, dict):
        raise SearchError(f"{where}: a record must be a JSON object, got {type(rec).__name__}")
    arch = rec.get("arch")
    if not isinstance(arch, dict):
        raise SearchError(f"{where}: field 'arch' must be an object with layers, hidden, heads, ffn, got {arch!r}")
    try:
        Arch.from_dict(arch)
    except SearchError:
        raise
    except Exception as exc:  # SpaceError: a user error already worded
        raise SearchError(f"{where}: field 'arch': {exc}") from None
    ep = rec.get("episode")
    if isinstance(ep, bool) or not isinstance(ep, int) or ep < 0:
        raise SearchError(f"{where}: field 'episode' must be a non-negative integer, got {ep!r}")
    _number(rec, "metric", where)
    for key in ("latency_ms", "latency_ms_high"):
        _number(rec, key, where, positive=True)
    _number(rec, "latency_ms_low", where, positive=True, optional=True)
    _number(rec, "seconds", where, optional=True)
    _number(rec, "secondary", where, optional=True)
    if rec.get("metric_name") is not None and not isinstance(rec["metric_name"], str):
        raise SearchError(f"{where}: field 'metric_name' must be a string, got {rec['metric_name']!r}")
    rewards = rec.get("rewards")
    if not isinstance(rewards, dict):
        raise SearchError(f"{where}: field 'rewards' must be an object of budget -> reward, got {rewards!r}")
    for k, v in rewards.items():
        if v is not None and not _is_number(v):
            raise SearchError(f"{where}: field 'rewards.{k}' must be a number or null, got {v!r}")
    return rec


def read_log(path: Path, *, heal: bool) -> LogRead:
    """The records of a run log (see the module docstring for torn and bad lines)."""
    out = LogRead()
    if not path.is_file():
        return out
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SearchError(f"cannot read {path}: {exc.strerror}") from None
    body, sep, tail = data.rpartition(b"\n")
    if not sep:
        body, tail = b"", data
    if tail.strip():
        out.torn = tail
        if heal:
            with open(path.with_name(path.name + TORN_SUFFIX), "ab") as fh:
                fh.write(tail + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.truncate(path, len(body) + len(sep))
            out.notes.append(f"{path}: set aside a torn last line ({len(tail)} bytes, a crash mid-write) in "
                             f"{path.name}{TORN_SUFFIX}; that evaluation is redone")
        else:
            out.skipped += 1
    for n, raw in enumerate(body.split(b"\n") if body else [], start=1):
        if not raw.strip():
            continue
        where = f"{path}:{n}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SearchError(f"{where}: not UTF-8 text (byte {exc.start + 1} of the line)") from None
        try:
            rec = json.loads(text)
        except json.JSONDecodeError:
            out.skipped += 1  # e.g. an old torn line with a record appended onto it: redone by the search
            continue
        out.records.append(check_record(rec, where))
    if out.skipped and heal:
        out.notes.append(f"{path}: skipped {out.skipped} line(s) that are not JSON; those evaluations are redone")
    return out


def append_line(path: Path, rec: dict[str, Any]) -> None:
    """Append ``rec`` to the JSON Lines file ``path``, one fsynced line (a kill tears at most the last line)."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(rec) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def keyed_lines(path: Path, key: Callable[[dict[str, Any]], Any]) -> dict[Any, dict[str, Any]]:
    """The records of the JSON Lines file ``path`` (none when it is missing) by ``key(record)``, the last one of
    a key kept; a line torn by a kill, or one ``key`` cannot read, is left out (its work is done again)."""
    done: dict[Any, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
                done[key(rec)] = rec
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
    return done


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from ``path``, or a SearchError naming the file."""
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise SearchError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise SearchError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SearchError(f"cannot read {what} {path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise SearchError(f"cannot read {what} {path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise SearchError(f"cannot read {what} {path}: it must hold a JSON object, got {type(doc).__name__}")
    return doc


def check_run_config(config: Any, where: str) -> dict[str, Any]:
    """The ``config`` of ``run.json``: the fields ``report`` reads, type-checked."""
    if not isinstance(config, dict):
        raise SearchError(f"{where}: field 'config' must be an object")
    reward = config.get("reward")
    if not isinstance(reward, dict):
        raise SearchError(f"{where}: field 'config.reward' must be an object")
    budgets = reward.get("budgets_ms")
    if not isinstance(budgets, list) or not budgets:
        raise SearchError(f"{where}: field 'config.reward.budgets_ms' must be a non-empty list of numbers")
    for b in budgets:
        if not _is_number(b) or not math.isfinite(b) or b <= 0:
            raise SearchError(f"{where}: field 'config.reward.budgets_ms' holds {b!r}, not a positive number")
    for key in ("shape", "evaluator"):
        if config.get(key) is not None and not isinstance(config[key], dict):
            raise SearchError(f"{where}: field 'config.{key}' must be an object")
    return config


def check_result(doc: dict[str, Any], where: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(winners, history) of ``result.json``, type-checked."""
    winners, history = doc.get("winners") or [], doc.get("history") or []
    if not isinstance(winners, list) or not isinstance(history, list):
        raise SearchError(f"{where}: fields 'winners' and 'history' must be lists")
    for i, w in enumerate(winners):
        if not isinstance(w, dict) or not isinstance(w.get("arch"), dict):
            raise SearchError(f"{where}: winners[{i}] must be an object with an 'arch' object")
        try:
            Arch.from_dict(w["arch"])
        except Exception as exc:
            raise SearchError(f"{where}: winners[{i}].arch: {exc}") from None
        for key in ("budget_ms", "predicted_latency_ms", "predicted_latency_ms_high"):
            _number(w, key, f"{where}: winners[{i}]", positive=True)
        for key in ("proxy_metric", "reward", "final_metric", "measured_latency_ms"):
            _number(w, key, f"{where}: winners[{i}]", optional=True)
    return winners, history
