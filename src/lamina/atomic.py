"""Crash-safe file writes: temp file in the same dir -> fsync -> rename -> fsync dir; and
removing trees of any depth."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from lamina.errors import FileError, shorten


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: Path, *, mode: int = 0o644, durable: bool = True) -> Iterator[IO[bytes]]:
    """Yield a binary file; on clean exit it replaces ``path`` atomically, else it vanishes.
    FileError when the file cannot be made there (no such dir, a name too long, no space)."""
    if not path.name:
        raise FileError(f"cannot write {str(path)!r}: not a file name")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    except OSError as exc:
        raise FileError(f"cannot write {shorten(str(path))}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        try:
            os.replace(tmp, path)
        except OSError as exc:  # a dir in the way (-o ..), a busy mount point
            raise FileError(f"cannot write {shorten(str(path))}: {exc.strerror}") from exc
        if durable:
            fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644, durable: bool = True) -> None:
    with atomic_writer(path, mode=mode, durable=durable) as f:
        f.write(data)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_tree(path: str | Path, *, ignore_errors: bool = False) -> None:
    """``rm -rf path``: symlinks are removed, never followed; a missing ``path`` is fine.

    Python 3.11's ``shutil.rmtree`` recurses once per level and holds an fd per level: a tree
    a container made a few thousand dirs deep raised RecursionError (exit 70) from ``rm`` and,
    once its layer was renamed aside, from every later ``Store.open``'s recovery. This walk is
    iterative and holds one directory fd, moving up by ``..`` and checking it reaches the dir
    it came from. With ``ignore_errors`` what cannot be removed is left and the rest goes;
    otherwise the first OSError is raised."""
    try:
        _remove_tree(path, ignore_errors=ignore_errors)
    except FileNotFoundError:
        pass
    except OSError:
        if not ignore_errors:
            raise


def _clear(fd: int, *, ignore_errors: bool) -> list[str]:
    """Unlink every non-directory in the dir ``fd``; return the names of its subdirs."""
    subdirs: list[str] = []
    with os.scandir(fd) as entries:
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(entry.name)
                else:
                    os.unlink(entry.name, dir_fd=fd)
            except FileNotFoundError:
                pass
            except OSError:
                if not ignore_errors:
                    raise
    return subdirs


def _remove_tree(path: str | Path, *, ignore_errors: bool) -> None:
    first = os.lstat(path)
    if not stat.S_ISDIR(first.st_mode):
        os.unlink(path)
        return
    fd = os.open(path, _DIR_FLAGS)
    try:
        # One frame per level from ``path`` down to the dir ``fd`` is: its (dev, ino), its name
        # in its parent, and the subdirs still to remove.
        top = os.fstat(fd)
        frames: list[tuple[tuple[int, int], str, list[str]]] = [
            ((top.st_dev, top.st_ino), "", _clear(fd, ignore_errors=ignore_errors))
        ]
        while frames:
            _ident, name, pending = frames[-1]
            if pending:
                child = pending.pop()
                try:
                    cfd = os.open(child, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    continue
                except OSError:
                    if not ignore_errors:
                        raise
                    continue
                os.close(fd)
                fd = cfd
                st = os.fstat(fd)
                frames.append(
                    ((st.st_dev, st.st_ino), child, _clear(fd, ignore_errors=ignore_errors))
                )
                continue
            frames.pop()
            if not frames:
                break
            pfd = os.open("..", _DIR_FLAGS & ~os.O_NOFOLLOW, dir_fd=fd)
            st = os.fstat(pfd)
            if (st.st_dev, st.st_ino) != frames[-1][0]:
                os.close(pfd)
                raise OSError(errno.ESTALE, f"a directory under {path} moved while it was removed")
            os.close(fd)
            fd = pfd
            try:
                os.rmdir(name, dir_fd=fd)
            except FileNotFoundError:
                pass
            except OSError:
                if not ignore_errors:
                    raise
    finally:
        os.close(fd)
    os.rmdir(path)
