"""Writing the outer tar of an archive transport (not layer tars: those are archive's job).

Members get fixed metadata (uid/gid 0, mtime 0 unless given, 0644 files, 0755 dirs) so the
same image gives the same archive. A stream of unknown length is written by reserving its
header, copying, then seeking back to fill the size in: the output must be seekable, which a
temp file next to the destination always is.
"""

from __future__ import annotations

import shutil
import tarfile
from typing import IO, Final, Literal

BLOCK: Final = 512
_USTAR_MAX_SIZE: Final = 0o77777777777  # 11 octal digits; larger sizes need GNU base-256


def _header(name: str, *, size: int, mtime: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.type = kind
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    # GNU format only when the size does not fit ustar; both are one 512-byte block for the
    # short names lamina writes, which lets a header be rewritten in place.
    fmt: Literal[0, 1, 2] = tarfile.GNU_FORMAT if size > _USTAR_MAX_SIZE else tarfile.USTAR_FORMAT
    buf = info.tobuf(format=fmt, encoding="utf-8", errors="strict")
    if len(buf) != BLOCK:
        raise ValueError(f"tar member name too long for a single header: {name!r}")
    return buf


class TarOut:
    """A minimal tar writer over a seekable binary file."""

    def __init__(self, out: IO[bytes], *, mtime: int = 0) -> None:
        self._out = out
        self._mtime = mtime

    def _pad(self, size: int) -> None:
        if size % BLOCK:
            self._out.write(bytes(BLOCK - size % BLOCK))

    def add_dir(self, name: str) -> None:
        self._out.write(
            _header(name.rstrip("/") + "/", size=0, mtime=self._mtime, kind=tarfile.DIRTYPE)
        )

    def add_bytes(self, name: str, data: bytes) -> None:
        self._out.write(_header(name, size=len(data), mtime=self._mtime))
        self._out.write(data)
        self._pad(len(data))

    def add_stream(self, name: str, src: IO[bytes], size: int | None = None) -> int:
        """Copy ``src`` to EOF as member ``name``; returns the size. ``src`` is read to EOF even
        when ``size`` is known, so a verifying reader gets to check what it gave."""
        start = self._out.tell()
        self._out.write(_header(name, size=size or 0, mtime=self._mtime))
        data_start = self._out.tell()
        shutil.copyfileobj(src, self._out, 1 << 20)
        written = self._out.tell() - data_start
        if size is None or written != size:
            end = self._out.tell()
            self._out.seek(start)
            self._out.write(_header(name, size=written, mtime=self._mtime))
            self._out.seek(end)
        self._pad(written)
        return written

    def close(self) -> None:
        """Write the end-of-archive marker (two zero blocks)."""
        self._out.write(bytes(2 * BLOCK))
