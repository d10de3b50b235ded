"""Inter-process coordination: the store lock, live-process tokens and held temp files.

* :class:`StoreLock` — an exclusive ``flock`` on ``<root>/lamina.lock``, re-entrant inside one
  :class:`StoreLock` object. Held only for short metadata sections (see store/store.py).
* :class:`ProcessToken` — ``(pid, start time)`` of a process, so a staging row or a layer hold
  left by a dead process is recognised even after its pid was reused.
* :func:`held_temp` — a file in ``<root>/tmp`` that carries a ``flock`` for as long as its
  writer lives; :func:`sweep_temp` deletes only entries nobody holds, so it can run at any time.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from _thread import RLock  # see lamina.store.db
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from msgspec import Struct

from lamina.atomic import remove_tree
from lamina.errors import StoreError

_CLK_TCK: Final = os.sysconf("SC_CLK_TCK")


class StoreLock:
    """Exclusive store-wide lock; re-entrant within this object (any thread of it waits)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None
        self._depth = 0
        self._mutex = RLock()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        with self._mutex:
            if self._depth == 0:
                fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
                self._fd = fd
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    # Closing the descriptor drops the flock.
                    os.close(self._fd)
                    self._fd = None

    @property
    def held(self) -> bool:
        return self._depth > 0


class ProcessToken(Struct, frozen=True, kw_only=True):
    """A process identity that survives pid reuse: pid plus its start time in clock ticks."""

    pid: int
    start: int

    @classmethod
    def current(cls) -> ProcessToken:
        return cls(pid=os.getpid(), start=_start_time(os.getpid()) or 0)

    def alive(self) -> bool:
        start = _start_time(self.pid)
        return start is not None and start == self.start


def _start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (after the parenthesised comm, which may hold spaces)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError as exc:
        if exc.errno in (errno.ESRCH, errno.ENOENT):
            return None
        raise
    fields = data[data.rindex(b")") + 2 :].split()
    # fields[0] is field 3 (state); field 22 is fields[19]. A zombie counts as dead.
    if fields[0] == b"Z":
        return None
    return int(fields[19])


class HeldTemp(Struct):
    """A temp file under ``<root>/tmp`` whose flock marks its writer alive."""

    path: Path
    fd: int


@contextlib.contextmanager
def held_temp(tmp_dir: Path, *, prefix: str) -> Iterator[HeldTemp]:
    """Create and flock a new temp file; on exit close it and delete it if it is still there
    (a caller that renamed it away keeps it)."""
    while True:
        path = tmp_dir / f"{prefix}{os.getpid()}-{os.urandom(8).hex()}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        # A sweeper may have locked and unlinked the file between open and flock: then it has
        # no name any more and we start over (sweep_temp unlinks only while holding the lock).
        if os.fstat(fd).st_nlink > 0:
            break
        os.close(fd)
    temp = HeldTemp(path=path, fd=fd)
    try:
        yield temp
    finally:
        with contextlib.suppress(FileNotFoundError):
            if os.fstat(temp.fd).st_nlink > 0 and _same_file(temp.path, temp.fd):
                os.unlink(temp.path)
        os.close(temp.fd)


@contextlib.contextmanager
def held_temp_dir(tmp_dir: Path, *, prefix: str) -> Iterator[Path]:
    """Create and flock a new private dir (0700); on exit remove it with what it holds.
    Another process's :func:`sweep_temp` keeps it (and everything under it) while it is
    held."""
    while True:
        path = tmp_dir / f"{prefix}{os.getpid()}-{os.urandom(8).hex()}"
        os.mkdir(path, 0o700)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink > 0:
            break
        os.close(fd)  # a sweeper removed it between mkdir and flock: start over
    try:
        yield path
    finally:
        remove_tree(path, ignore_errors=True)
        os.close(fd)


def _same_file(path: Path, fd: int) -> bool:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    fst = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)


def sweep_temp(tmp_dir: Path) -> list[str]:
    """Delete entries of ``tmp_dir`` whose writer is gone (nobody holds their flock); return
    their names. Safe to run while other processes write temps."""
    removed: list[str] = []
    try:
        names = os.listdir(tmp_dir)
    except FileNotFoundError:
        return removed
    for name in names:
        path = tmp_dir / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            continue
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise StoreError(f"cannot inspect temp entry {path}: {exc}") from exc
            os.unlink(path)  # a symlink is never ours to keep
            removed.append(name)
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live writer holds it
            if os.path.isdir(path) and not os.path.islink(path):
                remove_tree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            removed.append(name)
        finally:
            os.close(fd)
    return removed
