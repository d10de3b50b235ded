"""ADD's extras over COPY: local archives are extracted, remote URLs are refused.

An archive is recognised by content, as Docker does: a plain tar (``ustar`` magic), gzip,
zstd, xz and bzip2 (the last two inflated by the stdlib ``lzma``/``bz2`` modules; no external
decompressor is ever run). Extraction goes through lamina's hostile-tar-proof
:func:`~lamina.archive.apply.apply_layer`, confined to the destination dir's fd.
"""

from __future__ import annotations

import bz2
import lzma
import os
import re
from pathlib import Path
from typing import IO, Final

from lamina.archive.apply import WhiteoutFormat, apply_layer
from lamina.archive.compression import BZIP2_MAGIC, GZIP_MAGIC, XZ_MAGIC, ZSTD_MAGIC
from lamina.errors import BuildError, LaminaError

__all__ = ["extract_archive", "is_archive", "refuse_url"]

_URL: Final = re.compile(r"^(https?|ftp|git)://|^git@", re.IGNORECASE)
_TAR_MAGIC_OFFSET: Final = 257


def refuse_url(source: str, *, keyword: str) -> None:
    """Remote sources are not fetched: builds stay offline and reproducible."""
    if _URL.match(source):
        raise BuildError(
            f"{keyword} {source}: remote URLs are not supported by lamina build; "
            "download the file into the build context and COPY it"
        )


def is_archive(fd: int) -> bool:
    head = os.pread(fd, 512, 0)
    if head.startswith((GZIP_MAGIC, ZSTD_MAGIC, XZ_MAGIC, BZIP2_MAGIC)):
        return True
    return head[_TAR_MAGIC_OFFSET : _TAR_MAGIC_OFFSET + 5] == b"ustar"


def extract_archive(fd: int, dest_fd: int, *, name: str) -> None:
    """Extract the archive open at ``fd`` into the directory open at ``dest_fd``."""
    head = os.pread(fd, 8, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    raw: IO[bytes] = os.fdopen(os.dup(fd), "rb")
    stream: IO[bytes] = raw
    if head.startswith(XZ_MAGIC):
        stream = lzma.open(raw)  # noqa: SIM115  # closed in the finally below
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
