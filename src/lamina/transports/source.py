"""Where a transport reads named files from: a directory or a tar archive, confined.

A :class:`Source` maps relative ``/``-separated names (``blobs/sha256/<hex>``,
``manifest.json``) to readable streams. Names are checked before use: absolute names and ``..``
are refused with :class:`~lamina.errors.UnsafeArchivePathError`. A directory is walked one
component at a time with ``O_NOFOLLOW`` relative to directory fds; an archive is read member by
member from the tar file itself, never extracted to paths the archive chose. Archive symlinks
and hardlinks are followed only when the caller allows it (docker-archive's repeated
``layer.tar``), and only to regular members inside the archive.
"""

from __future__ import annotations

import io
import os
import posixpath
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final, Protocol

from lamina.digest import Digest
from lamina.errors import (
    BlobNotFoundError,
    InvalidArchiveError,
    LimitExceededError,
    UnsafeArchivePathError,
)

MAX_LINK_HOPS: Final = 16
# An image archive holds a few members per layer and image (Docker 20.10's legacy form four
# per layer); the index keeps every member's header in memory (~600 bytes each), so a million
# empty members cost ~600 MB and a minute before anything was refused.
MAX_ARCHIVE_MEMBERS: Final = 100_000
# tarfile reads a PAX or GNU long-name header's payload whole (and a PAX one several times
# over while parsing it): a 64 MiB header cost ~280 MB. A name needs no more than PATH_MAX.
MAX_ARCHIVE_HEADER_BYTES: Final = 1 << 20
_META_TYPES: Final = frozenset(
    {tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
     tarfile.GNUTYPE_LONGLINK}
)  # fmt: skip


def safe_name(name: str) -> str:
    """``name`` normalised (no ``./``, no trailing ``/``), or UnsafeArchivePathError."""
    if not name or "\x00" in name:
        raise UnsafeArchivePathError(name, "empty or contains NUL")
    if name.startswith("/"):
        raise UnsafeArchivePathError(name, "absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchivePathError(name, "path escapes the archive (..)")
    if not parts:
        raise UnsafeArchivePathError(name, "names the archive root")
    return "/".join(parts)


def blob_name(digest: Digest) -> str:
    """The layout path of a blob (``Digest`` guarantees the hex is safe as a name)."""
    return f"blobs/sha256/{digest.hex}"


class Source(Protocol):
    def size(self, name: str) -> int:
        """Size in bytes of the regular file ``name``; BlobNotFoundError if absent."""
        ...

    def open(self, name: str) -> IO[bytes]:
        """A reader of the regular file ``name`` (unverified: callers verify what they read)."""
        ...

    def exists(self, name: str) -> bool: ...


class DirSource:
    """A directory (an OCI layout); symlinks anywhere below it are refused."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _open_fd(self, name: str) -> int:
        parts = safe_name(name).split("/")
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise BlobNotFoundError(f"{self.root} does not exist") from exc
        try:
            for part in parts[:-1]:
                nfd = os.open(part, flags | os.O_DIRECTORY, dir_fd=fd)
                os.close(fd)
                fd = nfd
            leaf = os.open(parts[-1], flags | os.O_NONBLOCK, dir_fd=fd)
        except FileNotFoundError as exc:
            raise BlobNotFoundError(f"{name} not found in {self.root}") from exc
        except (NotADirectoryError, OSError) as exc:
            # ELOOP from O_NOFOLLOW: a symlink where a file or directory was expected.
            raise UnsafeArchivePathError(name, f"cannot open safely: {exc.strerror}") from exc
        finally:
            os.close(fd)
        if not _is_regular(leaf):
            os.close(leaf)
            raise UnsafeArchivePathError(name, "not a regular file")
        os.set_blocking(leaf, True)
        return leaf

    def size(self, name: str) -> int:
        fd = self._open_fd(name)
        try:
            return os.fstat(fd).st_size
        finally:
            os.close(fd)

    def open(self, name: str) -> IO[bytes]:
        return os.fdopen(self._open_fd(name), "rb")

    def exists(self, name: str) -> bool:
        try:
            os.close(self._open_fd(name))
        except BlobNotFoundError:
            return False
        return True


def _is_regular(fd: int) -> bool:
    return stat.S_ISREG(os.fstat(fd).st_mode)


class _MemberReader(io.RawIOBase):
    """Exactly ``size`` bytes from ``offset`` of the archive; short data is a truncated archive."""

    def __init__(self, path: Path, offset: int, size: int, member: str) -> None:
        self._f = path.open("rb")
        self._f.seek(offset)
        self._left = size
        self._member = member

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._left == 0:
            return 0
        n = self._f.readinto(memoryview(b)[: min(len(b), self._left)])
        if not n:
            raise InvalidArchiveError(self._member, "archive is truncated")
        self._left -= n
        return n

    def read(self, size: int = -1) -> bytes:
        # RawIOBase.read would readinto a scratch buffer and copy it out again: for a layer of
        # hundreds of MB that second copy is measurable.
        if self._left == 0:
            return b""
        data = self._f.read(self._left if size is None or size < 0 else min(size, self._left))
        if not data:
            raise InvalidArchiveError(self._member, "archive is truncated")
        self._left -= len(data)
        return data

    def close(self) -> None:
        if not self.closed:
            self._f.close()
        super().close()


class _BoundedTarInfo(tarfile.TarInfo):
    """A TarInfo whose extended headers are refused past :data:`MAX_ARCHIVE_HEADER_BYTES`
    before tarfile reads them (a LaminaError passes through ``TarFile.next`` as it is)."""

    def _proc_member(self, tf: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _META_TYPES and self.size > MAX_ARCHIVE_HEADER_BYTES:
            raise LimitExceededError(
                limit_name="header size", limit=MAX_ARCHIVE_HEADER_BYTES,
                what=f"an extended tar header at offset {self.offset}",
            )  # fmt: skip
        return super()._proc_member(tf)  # type: ignore[misc,no-any-return]


def scan_archive(path: Path) -> Iterator[tarfile.TarInfo]:
    """The members of the uncompressed tar at ``path``, within the limits above; OSError and
    tarfile's errors as they come."""
    with tarfile.open(path, mode="r:", tarinfo=_BoundedTarInfo) as tf:
        for count, info in enumerate(tf, 1):
            if count > MAX_ARCHIVE_MEMBERS:
                raise LimitExceededError(
                    limit_name="member count", limit=MAX_ARCHIVE_MEMBERS, what=str(path)
                )
            yield info


class TarSource:
    """An uncompressed tar archive, indexed once by member name."""

    def __init__(self, path: Path, *, follow_links: bool) -> None:
        self.path = path
        self.follow_links = follow_links
        self._members: dict[str, tarfile.TarInfo] = {}
        self._duplicates: set[str] = set()
        try:
            file_size = path.stat().st_size
            for info in scan_archive(path):
                try:
                    key = safe_name(info.name)
                except UnsafeArchivePathError:
                    continue  # never looked up: lookups only use safe names
                if key in self._members and not info.isdir():
                    self._duplicates.add(key)
                self._members[key] = info
                if info.isreg() and info.offset_data + info.size > file_size:
                    raise InvalidArchiveError(info.name, "archive is truncated")
        except FileNotFoundError as exc:
            raise BlobNotFoundError(f"{path} does not exist") from exc
        except tarfile.TarError as exc:
            raise InvalidArchiveError(None, f"{path} is not a readable tar archive: {exc}") from exc

    def names(self) -> list[str]:
        return list(self._members)

    def _resolve(self, name: str) -> tarfile.TarInfo:
        key = safe_name(name)
        for _ in range(MAX_LINK_HOPS):
            if key in self._duplicates:
                raise InvalidArchiveError(key, "the archive holds this name more than once")
            info = self._members.get(key)
            if info is None:
                raise BlobNotFoundError(f"{key} not found in {self.path}")
            if info.isreg() and not info.issparse():
                return info
            if not (info.issym() or info.islnk()):
                raise UnsafeArchivePathError(key, "not a regular file")
            if not self.follow_links:
                raise UnsafeArchivePathError(key, "is a link")
            target = info.linkname
            if target.startswith("/"):
                raise UnsafeArchivePathError(key, f"links outside the archive ({target})")
            # Symlink targets are relative to the link's directory; hardlinks to the root.
            joined = posixpath.join(posixpath.dirname(key), target) if info.issym() else target
            normal = posixpath.normpath(joined)
            if normal == ".." or normal.startswith("../"):
                raise UnsafeArchivePathError(key, f"links outside the archive ({target})")
            key = safe_name(normal)
        raise UnsafeArchivePathError(name, "too many levels of links")

    def size(self, name: str) -> int:
        return self._resolve(name).size

    def open(self, name: str) -> IO[bytes]:
        info = self._resolve(name)
        raw = _MemberReader(self.path, info.offset_data, info.size, info.name)
        return io.BufferedReader(raw, 1 << 20)

    def exists(self, name: str) -> bool:
        try:
            self._resolve(name)
        except BlobNotFoundError:
            return False
        return True
