"""ADD's extras over COPY: local archives are extracted, remote URLs are refused.

An archive is recognised by content, as Docker does: a plain tar, gzip, zstd, xz or bzip2
(the last two inflated by the stdlib ``lzma``/``bz2`` modules; no external decompressor is
ever run) whose (decompressed) bytes start with a tar header. Anything else, a gzipped text
file or a truncated stream included, is copied as it is, as Docker's ``isArchivePath``
decides. Extraction goes through lamina's hostile-tar-proof
:func:`~lamina.archive.apply.apply_layer`, confined to the destination dir's fd.
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import re
from pathlib import Path
from typing import IO, Final

from lamina.archive.apply import WhiteoutFormat, apply_layer
from lamina.archive.compression import (
    BZIP2_MAGIC,
    GZIP_MAGIC,
    XZ_MAGIC,
    ZSTD_MAGIC,
    Compression,
    XzReader,
    open_decompressor,
    tar_header_valid,
)
from lamina.errors import BuildError, LaminaError

__all__ = ["extract_archive", "is_archive", "refuse_url"]

_URL: Final = re.compile(r"^(https?|ftp|git)://|^git@", re.IGNORECASE)
_BLOCK: Final = 512


def refuse_url(source: str, *, keyword: str) -> None:
    """Remote sources are not fetched: builds stay offline and reproducible."""
    if _URL.match(source):
        raise BuildError(
            f"{keyword} {source}: remote URLs are not supported by lamina build; "
            "download the file into the build context and COPY it"
        )


def is_archive(fd: int) -> bool:
    """Whether ADD extracts the file open at ``fd``: its bytes, decompressed when they start
    with a compression magic, begin with a valid tar header (docker 20.10 reads the first
    header the same way; a file of zeros, an end-of-archive block alone, is copied)."""
    head = os.pread(fd, _BLOCK, 0)
    if not head.startswith((GZIP_MAGIC, ZSTD_MAGIC, XZ_MAGIC, BZIP2_MAGIC)):
        return _tar_header(head)
    raw = os.fdopen(os.dup(fd), "rb")
    try:
        raw.seek(0)
        with _decompressed(raw, head) as stream:
            block = stream.read(_BLOCK)
    except (OSError, EOFError, ValueError, lzma.LZMAError, LaminaError):
        return False  # not a stream that decompresses: a file to copy
    finally:
        raw.close()
    return _tar_header(block)


def _tar_header(block: bytes) -> bool:
    """A tar header, not an end-of-archive block alone (Docker copies a file of zeros)."""
    return bool(block.strip(b"\x00")) and tar_header_valid(block)


def _decompressed(raw: IO[bytes], head: bytes) -> IO[bytes]:
    if head.startswith(XZ_MAGIC):
        return io.BufferedReader(XzReader(raw))
    if head.startswith(BZIP2_MAGIC):
        return bz2.open(raw)
    kind = Compression.GZIP if head.startswith(GZIP_MAGIC) else Compression.ZSTD
    return open_decompressor(raw, kind)


def extract_archive(fd: int, dest_fd: int, *, name: str) -> None:
    """Extract the archive open at ``fd`` into the directory open at ``dest_fd``."""
    head = os.pread(fd, 8, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    raw: IO[bytes] = os.fdopen(os.dup(fd), "rb")
    stream: IO[bytes] = raw
    if head.startswith(XZ_MAGIC):
        stream = io.BufferedReader(XzReader(raw))
    elif head.startswith(BZIP2_MAGIC):
        stream = bz2.open(raw)  # noqa: SIM115  # closed in the finally below
    try:
        # The dir was resolved in-root through fds; its real path is what the kernel says it
        # is. The rootfs is this build's own work layer, so nothing renames it meanwhile.
        apply_layer(stream, Path(os.readlink(f"/proc/self/fd/{dest_fd}")), fmt=WhiteoutFormat.APPLY)
    except LaminaError as exc:
        exc.add_note(f"while extracting {name} (ADD)")
        raise
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise BuildError(f"ADD {name}: cannot extract the archive: {exc}") from exc
    finally:
        stream.close()
        raw.close()
