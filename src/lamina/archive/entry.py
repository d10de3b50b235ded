"""The normalised view of one layer-tar entry, shared by the reader, writer, extractor and the
file index.

Paths are relative, ``/``-separated, without ``./`` or a leading or trailing ``/``; the root itself
is the empty string ``""`` and is never an entry. Non-UTF-8 bytes in names are kept with the
``surrogateescape`` error handler, so ``os.fsencode(path)`` gives the original bytes back.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import TypeAlias

from msgspec import Struct, field


class EntryKind(enum.Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    CHAR = "char"
    BLOCK = "block"
    FIFO = "fifo"
    WHITEOUT = "whiteout"  # ``d/.wh.x`` in a tar: ``path`` is ``d/x``, the deleted path
    OPAQUE = "opaque"  # ``d/.wh..wh..opq`` in a tar: ``path`` is ``d``, the dir made opaque


class Entry(Struct, frozen=True, kw_only=True):
    """One tar entry after normalisation (whiteouts already decoded into WHITEOUT/OPAQUE)."""

    path: str
    kind: EntryKind
    mode: int = 0o644  # permission bits only, setuid/setgid/sticky included (mask 0o7777)
    uid: int = 0
    gid: int = 0
    size: int = 0  # content bytes for FILE, 0 otherwise
    mtime: int = 0  # whole seconds (tar precision Go writers use)
    linkname: str = ""  # SYMLINK: target verbatim; HARDLINK: normalised path of the target entry
    devmajor: int = 0
    devminor: int = 0
    xattrs: Mapping[str, bytes] = field(default_factory=dict)  # as in the image (unescaped)


class IndexEntry(Struct, frozen=True, kw_only=True):
    """One row of the file index: an :class:`Entry` plus what extraction learnt about it."""

    entry: Entry
    sha256: str | None = None  # hex of the content for FILE (and HARDLINK: its target's content)
    position: int = 0  # 0-based order in the tar


# Takes the next file-index rows of a layer, in tar order: apply_layer and the diff writers hand
# them over as they go, so nothing holds a layer's whole index (see store.index.StagedRows).
RowSink: TypeAlias = Callable[[list[IndexEntry]], None]


def is_reserved_name(name: str) -> bool:
    """True for names real files may never have (the ``.wh.`` prefix is reserved by OCI)."""
    return name.startswith(".wh.")
