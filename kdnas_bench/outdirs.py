"""Output folders handled like a careful tool does, checked before any work:

* :func:`check_out_folder`: ``--out`` refuses an existing non-empty folder unless ``--overwrite`` (a folder the verb
  itself resumes is let through by the caller), and an output folder may never be one of the inputs (a teacher,
  a data file, a supernet) nor hold one.
* :class:`FolderLock`: one writer per run or output folder. ``FOLDER/.kdnas.lock`` is created with
  ``O_CREAT | O_EXCL`` and holds the owner's pid and host; a second live writer is refused in one line naming
  the pid; a lock left by a dead process on this host (a kill) is taken over with a note. The lock file goes when
  the writer ends, and so does a folder the lock itself created that stayed empty (a refused run leaves nothing).
  A process that holds a folder's lock may lock it again (a no-op: the outer holder releases it). Under
  ``torchrun`` process 0 takes the locks for the group; the other processes take none.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

from .errors import KdnasError
from .validate import check_writable

LOCK_FILE = ".kdnas.lock"


def _resolved(path: str | os.PathLike[str]) -> Path:
    return Path(path).expanduser().resolve()


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_not_an_input(out_name: str, out: str | os.PathLike[str],
                       inputs: Iterable[tuple[str, str | os.PathLike[str] | None]]) -> None:
    """The output folder ``out`` is none of the local ``inputs`` ((option, path) pairs; a hub name or None is
    skipped) and holds none of them: writing there would replace what the run reads."""
    target = _resolved(out)
    for name, value in inputs:
        if value is None or str(value) == "" or not Path(value).expanduser().exists():
            continue
        source = _resolved(value)
        if source == target:
            raise KdnasError(f"{out_name} {out} is the {name} folder: the output would replace the input it reads; "
                             "pass another folder")
        if _inside(source, target):
            raise KdnasError(f"{out_name} {out} holds the {name} {value}: the output folder may not hold an input; "
                             "pass another folder")


def folder_entries(folder: Path) -> list[str]:
    """The names in ``folder`` (empty when it does not exist), a stale lock file left out."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name != LOCK_FILE)


def check_out_folder(out_name: str, out: str | os.PathLike[str], *, overwrite: bool,
                     inputs: Iterable[tuple[str, str | os.PathLike[str] | None]] = ()) -> None:
    """``out`` may be written: not an input (:func:`check_not_an_input`), and new or empty unless ``overwrite``."""
    check_writable(out_name, out)
    check_not_an_input(out_name, out, inputs)
    names = folder_entries(Path(out))
    if names and not overwrite:
        shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
        raise KdnasError(f"{out_name} {out} exists and is not empty ({shown}): pass --overwrite to replace its files, "
                         "or another folder")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _read_owner(path: Path) -> dict[str, object] | None:
    """The lock's owner ({"pid", "host"}), or None when the file is gone or unreadable (a torn write)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _follower() -> bool:
    """A process ``torchrun`` started besides process 0 (they share process 0's folders and its lock)."""
    return os.environ.get("LOCAL_RANK") is not None and os.environ.get("RANK", "0") != "0"


class FolderLock:
    """``with FolderLock(folder, "--out"):`` one writer at a time (see the module docstring). ``note`` receives
    the line said when a stale lock is taken over."""

    def __init__(self, folder: str | os.PathLike[str], what: str = "folder",
                 note: Callable[[str], None] | None = None) -> None:
        self.folder = Path(folder)
        self.what = what
        self.note = note or (lambda text: None)
        self.path = self.folder / LOCK_FILE
        self._created: list[Path] = []
        self._held = False

    def _make_folder(self) -> None:
        missing = [p for p in (self.folder, *self.folder.parents) if not p.exists()]
        self.folder.mkdir(parents=True, exist_ok=True)
        self._created = missing  # deepest first: removed again, when empty, on release

    def _try_create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"pid": os.getpid(), "host": socket.gethostname()}, fh)
        return True

    def acquire(self) -> FolderLock:
        if _follower():
            return self  # torchrun's process 0 holds the lock for the whole group
        self._make_folder()
        for _ in range(3):  # a stale lock removed between two tries: try again
            if self._try_create():
                self._held = True
                return self
            owner = _read_owner(self.path)
            if owner is None:
                continue
            if owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
                return self  # this process holds it already (a verb that locks a folder its library call locks too)
            self._refuse_or_take(owner)
        raise KdnasError(f"{self.what} {self.folder} is being locked and unlocked by other processes; try again")

    def _refuse_or_take(self, owner: dict[str, object]) -> None:
        pid, host = owner.get("pid"), owner.get("host")
        here = socket.gethostname()
        if isinstance(pid, int) and host not in (None, here):
            self.release_created()
            raise KdnasError(f"{self.what} {self.folder} is in use by pid {pid} on host {host} ({self.path}); "
                             "wait for it, or delete that file if it is gone")
        if isinstance(pid, int) and _alive(pid):
            self.release_created()
            raise KdnasError(f"{self.what} {self.folder} is in use by another kdnas-bench process (pid {pid}): one "
                             "writer at a time; wait for it or pass another folder")
        self.note(f"{self.path}: took over a stale lock (pid {pid if isinstance(pid, int) else '?'} is gone)")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def release_created(self) -> None:
        """Remove the folders this lock created, when they stayed empty."""
        for folder in self._created:
            try:
                folder.rmdir()
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                    raise
                break
        self._created = []

    def release(self) -> None:
        if self._held:
            self._held = False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        self.release_created()

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


__all__ = ["LOCK_FILE", "FolderLock", "check_not_an_input", "check_out_folder", "folder_entries"]
