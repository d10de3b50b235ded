"""Streaming layer-tar reader: tar members in, normalised :class:`~lamina.archive.entry.Entry`
values out, with lamina's own limits.

The parser is :mod:`lamina.archive.tarheader` (ustar, PAX and GNU long names, strict checksums
and numbers) over a reader lamina controls (the apply pipeline hands it already-inflated,
already-hashed bytes). It replaced stdlib ``tarfile``, whose generic header code was the largest
cost of applying a layer; nothing here ever extracts. The per-entry policy lives here:

- Names: ``./`` and leading ``/`` are stripped (absolute names land under the root), empty and
  ``.`` components dropped, a ``..`` component or a NUL byte refused. Names that are not UTF-8
  are kept with ``surrogateescape``. The root itself (``./``, ``/``) is accepted as a no-op.
- ``mode`` keeps the permission bits with setuid/setgid/sticky (``& 0o7777``): Go writers put
  ``S_IFMT`` bits in it (``040755``). uid/gid are numeric; names are ignored.
- PAX ``SCHILY.xattr.<name>`` records become ``xattrs`` with their exact bytes.
- Whiteouts are decoded (:mod:`lamina.archive.whiteout`): ``d/.wh.x`` -> WHITEOUT ``d/x``,
  ``d/.wh..wh..opq`` -> OPAQUE ``d``; ``.wh.``/``.wh..``/``.wh...`` and a ``.wh.`` name used as a
  directory are refused; other ``.wh..wh.*`` (AUFS metadata) entries are dropped.
- Refused: duplicate paths in one layer (peers disagree on which copy wins, so an image that
  relies on either is ambiguous), GNU sparse members, tar types outside 0-7 (tar has no socket
  type; GNU ``D``/``M``/``V`` and unknown types are refused, not read as files), a
  char device 0:0 (it *is* an overlayfs whiteout; layers say ``.wh.x``), uid/gid that do not fit
  a ``uid_t`` other than -1, device numbers beyond 32 bits, absurd mtimes.
- The archive must end with an end-of-archive block; a truncated stream or a corrupt header is
  refused instead of being read as a shorter layer; a clean stop at a block boundary without
  end blocks is complete (GNU tar and Go agree, and umoci writes layers that way).
- Limits: entry count, path bytes and depth, xattr bytes per entry, size of one PAX/GNU header.
  The uncompressed-bytes limit is enforced by whoever inflates (see ``apply``).

A plain archive (``layer=False``: what ``docker cp - CONTAINER:DEST`` reads) is no layer, and
three rules change, as Docker's ``archive.Untar`` has them: ``.wh.*`` names are ordinary files;
a name repeated later wins (each copy replaces the one before); and ``..`` is cleaned by the
string (``a/../b`` is ``b``), refused only when it climbs above the root (``../x``: "outside of
the destination"). Hardlink targets are cleaned the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import IO, Final

from msgspec import Struct

from lamina.archive.entry import Entry, EntryKind
from lamina.archive.tarheader import HeaderReader, RawMember
from lamina.archive.whiteout import NameClass, classify
from lamina.errors import InvalidArchiveError, LimitExceededError, UnsafeArchivePathError

_UID_MAX: Final = (1 << 32) - 2  # (uid_t)-1 means "unchanged" to chown(2)
_DEV_MAX: Final = (1 << 32) - 1
_MTIME_MAX: Final = 1 << 40  # ~35,000 years either way; keeps utime's nanoseconds in range
_KINDS: Final = {
    b"0": EntryKind.FILE,
    b"\x00": EntryKind.FILE,
    b"7": EntryKind.FILE,  # contiguous file: a plain file everywhere but on old Masscomp
    b"5": EntryKind.DIR,
    b"2": EntryKind.SYMLINK,
    b"1": EntryKind.HARDLINK,
    b"3": EntryKind.CHAR,
    b"4": EntryKind.BLOCK,
    b"6": EntryKind.FIFO,
}
_SPARSE: Final = b"S"
_DIRTYPE: Final = b"5"
_NO_DATA: Final = memoryview(b"")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


class Limits(Struct, frozen=True, kw_only=True):
    """Caps on what one layer may make lamina do."""

    max_uncompressed_bytes: int = 64 << 30
    max_entries: int = 4_000_000
    max_path_bytes: int = 4096  # PATH_MAX
    max_depth: int = 256  # components; bounds recursion when a tree is later removed
    max_xattr_bytes: int = 1 << 20  # names + values of one entry
    max_header_bytes: int = 1 << 20  # one PAX extended or GNU long-name header


def limits_from_env() -> Limits:
    """Defaults, with ``max_uncompressed_bytes`` from ``LAMINA_MAX_LAYER_BYTES`` if set."""
    return Limits(max_uncompressed_bytes=_env_int("LAMINA_MAX_LAYER_BYTES", 64 << 30))


def normalise_name(raw: str, *, member: str) -> str:
    """``raw`` as a relative path with no ``.``/empty components; ``""`` is the root."""
    if "\x00" in raw:
        raise UnsafeArchivePathError(member, "NUL byte in name")
    parts = [p for p in raw.split("/") if p and p != "."]
    if ".." in parts:
        raise UnsafeArchivePathError(member, "'..' path component")
    return "/".join(parts)


def clean_name(raw: str, *, member: str) -> str:
    """A plain archive's name: like :func:`normalise_name`, but ``..`` steps back by the string
    (Go's ``filepath.Clean``, as Docker's ``Untar``); one that climbs above the root is refused."""
    if "\x00" in raw:
        raise UnsafeArchivePathError(member, "NUL byte in name")
    parts: list[str] = []
    for p in raw.split("/"):
        if p == "..":
            if not parts:
                raise UnsafeArchivePathError(member, "outside of the destination")
            parts.pop()
        elif p and p != ".":
            parts.append(p)
    return "/".join(parts)


class Member(Struct, frozen=True):
    entry: Entry
    name: str  # the member name as the tar spells it, for messages
    position: int  # 0-based index among the tar's members


class TarStream:
    """Iterate a layer tar once. While a FILE member is current, :meth:`read` returns its
    content; whatever is not read is skipped when iteration continues."""

    def __init__(self, stream: IO[bytes], *, limits: Limits, layer: bool = True) -> None:
        """``layer=False``: a plain archive (see the module doc)."""
        self._limits = limits
        self._layer = layer
        self._normalise = normalise_name if layer else clean_name
        self._reader = HeaderReader(stream.read, max_header_bytes=limits.max_header_bytes)
        self._remaining = 0
        self._current = ""
        self._seen: dict[str, bool] = {}

    @property
    def names(self) -> Mapping[str, bool]:
        """Every name of the layer so far, the current member's included, as normalised (so
        whiteouts and opaque markers as the tar spells them: ``d/.wh.x``), mapped to whether
        its member is a directory. The duplicate rule needs them all; an extractor that must
        know what its layer wrote asks here instead of keeping a second map of every name.
        Empty for a plain archive."""
        return self._seen

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes of the current FILE member's content; ``b""`` at its end."""
        return bytes(self.read_view(n))

    def read_view(self, n: int) -> memoryview:
        """Like :meth:`read`, without copying: a view of the parser's buffer (fewer than ``n``
        bytes at buffer boundaries; empty at the member's end)."""
        want = min(n, self._remaining)
        if want <= 0:
            return _NO_DATA
        try:
            view = self._reader.view(want)
        except InvalidArchiveError as exc:
            raise InvalidArchiveError(self._current, exc.reason) from None
        self._remaining -= len(view)
        return view

    def __iter__(self) -> Iterator[Member]:
        reader = self._reader
        max_entries = self._limits.max_entries
        position = 0
        while True:
            self._remaining = 0
            raw = reader.next()
            if raw is None:
                return
            if position >= max_entries:
                raise LimitExceededError(limit_name="max_entries", limit=max_entries, what="layer")
            member = self._member(raw, position)
            position += 1
            if member is None:
                continue
            self._current = member.name
            self._remaining = member.entry.size
            yield member

    def _member(self, ti: RawMember, position: int) -> Member | None:
        raw = ti.name
        limits = self._limits
        name = self._normalise(raw, member=raw)
        if not name:
            return None  # the root itself: lamina never changes the layer root's attributes
        # A UTF-8 character is at most 4 bytes: encode only names that could be too long.
        if len(name) * 4 > limits.max_path_bytes and len(os.fsencode(name)) > limits.max_path_bytes:
            raise LimitExceededError(
                limit_name="max_path_bytes", limit=limits.max_path_bytes, what=f"member {raw!r}"
            )
        if self._layer:
            if name in self._seen:
                raise UnsafeArchivePathError(raw, "duplicate path in one layer")
            self._seen[name] = ti.type == _DIRTYPE
        if name.count("/") >= limits.max_depth:
            raise LimitExceededError(
                limit_name="max_depth", limit=limits.max_depth, what=f"member {raw!r}"
            )
        parent, _, base = name.rpartition("/")
        if ".wh." not in name or not self._layer:  # the common case: no component can be reserved
            cls, target = NameClass.NORMAL, base
        else:
            for part in parent.split("/") if parent else ():
                pcls, _ = classify(part)
                if pcls is NameClass.META:
                    return None  # inside AUFS metadata (.wh..wh.plnk/...)
                if pcls is not NameClass.NORMAL:
                    raise UnsafeArchivePathError(
                        raw, f"reserved whiteout name {part!r} as a directory"
                    )
            cls, target = classify(base)
        if cls is NameClass.META:
            return None
        if cls is NameClass.INVALID:
            raise UnsafeArchivePathError(raw, "invalid whiteout name (no file named)")
        uid, gid = ti.uid, ti.gid
        if not (0 <= uid <= _UID_MAX and 0 <= gid <= _UID_MAX):
            raise InvalidArchiveError(raw, f"uid/gid {uid}/{gid} out of range")
        if cls is NameClass.OPAQUE:
            entry = Entry(
                path=parent, kind=EntryKind.OPAQUE, mode=ti.mode & 0o7777, uid=uid, gid=gid
            )
            return Member(entry, raw, position)
        if cls is NameClass.WHITEOUT:
            path = f"{parent}/{target}" if parent else target
            entry = Entry(
                path=path, kind=EntryKind.WHITEOUT, mode=ti.mode & 0o7777, uid=uid, gid=gid
            )
            return Member(entry, raw, position)
        return Member(self._entry(ti, name, raw, uid=uid, gid=gid), raw, position)

    def _entry(self, ti: RawMember, name: str, raw: str, *, uid: int, gid: int) -> Entry:
        if ti.sparse or ti.type == _SPARSE:
            raise InvalidArchiveError(raw, "sparse files are not supported in layers")
        kind = _KINDS.get(ti.type)
        if kind is None:
            raise InvalidArchiveError(raw, f"unsupported tar entry type {ti.type!r}")
        linkname = ""
        if kind is EntryKind.HARDLINK:
            linkname = self._normalise(ti.linkname, member=raw)
            if not linkname or linkname == name:
                raise UnsafeArchivePathError(raw, f"hardlink to {ti.linkname!r}")
        elif kind is EntryKind.SYMLINK:
            linkname = ti.linkname
            if not linkname or "\x00" in linkname:
                raise UnsafeArchivePathError(raw, "empty symlink target or NUL in it")
        if linkname and len(os.fsencode(linkname)) > self._limits.max_path_bytes:
            raise LimitExceededError(
                limit_name="max_path_bytes",
                limit=self._limits.max_path_bytes,
                what=f"link target of {raw!r}",
            )
        devmajor = devminor = 0
        if kind in (EntryKind.CHAR, EntryKind.BLOCK):
            devmajor, devminor = ti.devmajor, ti.devminor
            if not (0 <= devmajor <= _DEV_MAX and 0 <= devminor <= _DEV_MAX):
                raise InvalidArchiveError(raw, f"device number {devmajor}:{devminor} out of range")
            if kind is EntryKind.CHAR and devmajor == devminor == 0:
                raise InvalidArchiveError(
                    raw, "char device 0:0 is the overlayfs whiteout; layers must use .wh. names"
                )
        mtime = ti.mtime
        if not -_MTIME_MAX < mtime < _MTIME_MAX:
            raise InvalidArchiveError(raw, f"mtime {mtime} out of range")
        return Entry(
            path=name,
            kind=kind,
            mode=ti.mode & 0o7777,  # stat.S_IMODE
            size=ti.size if kind is EntryKind.FILE else 0,
            mtime=mtime,
            linkname=linkname,
            devmajor=devmajor,
            devminor=devminor,
            xattrs=self._xattrs(ti, raw) if ti.xattrs else {},
            uid=uid,
            gid=gid,
        )

    def _xattrs(self, ti: RawMember, raw: str) -> dict[str, bytes]:
        if not ti.xattrs:
            return {}
        total = 0
        for xname, data in ti.xattrs.items():
            if not xname or "\x00" in xname:
                raise InvalidArchiveError(raw, f"invalid xattr name {xname!r}")
            total += len(xname) + len(data)
        if total > self._limits.max_xattr_bytes:
            raise LimitExceededError(
                limit_name="max_xattr_bytes",
                limit=self._limits.max_xattr_bytes,
                what=f"member {raw!r}",
            )
        return ti.xattrs
