"""Crash-safe file writes: temp file in the same dir -> fsync -> rename -> fsync dir."""

from __future__ import annotations

import contextlib
import os
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
