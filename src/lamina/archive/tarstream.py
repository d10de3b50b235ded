"""Streaming layer-tar reader: tar members in, normalised :class:`~lamina.archive.entry.Entry`
values out, with lamina's own limits.

The parser is stdlib ``tarfile`` in stream mode (``r|``) over a reader lamina controls (the
apply pipeline hands it already-inflated, already-hashed bytes): it handles ustar, PAX and GNU
long names, and ``tarfile.TarFile.next()`` is used only as a header parser. lamina never calls
``extract``/``extractall``. The per-entry policy lives here:

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
  type; GNU ``D``/``M``/``V`` and unknown types would otherwise be read as files by tarfile), a
  char device 0:0 (it *is* an overlayfs whiteout; layers say ``.wh.x``), uid/gid that do not fit
  a ``uid_t`` other than -1, device numbers beyond 32 bits, absurd mtimes.
- The archive must end with an end-of-archive block; a truncated stream or a corrupt header is
  refused instead of being read as a shorter layer (``tarfile`` alone treats both as "end").
- Limits: entry count, path bytes and depth, xattr bytes per entry, size of one PAX/GNU header.
  The uncompressed-bytes limit is enforced by whoever inflates (see ``apply``).
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, ClassVar, Final, Self

from lamina.archive.entry import Entry, EntryKind
from lamina.archive.whiteout import NameClass, classify
from lamina.errors import InvalidArchiveError, LimitExceededError, UnsafeArchivePathError

_UID_MAX: Final = (1 << 32) - 2  # (uid_t)-1 means "unchanged" to chown(2)
_DEV_MAX: Final = (1 << 32) - 1
_MTIME_MAX: Final = 1 << 40  # ~35,000 years either way; keeps utime's nanoseconds in range
_XATTR_PREFIX: Final = "SCHILY.xattr."
_HEADER_TYPES: Final = frozenset(
    {tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE}
    | {tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK}
)
_KINDS: Final = {
    tarfile.REGTYPE: EntryKind.FILE,
    tarfile.AREGTYPE: EntryKind.FILE,
    tarfile.CONTTYPE: EntryKind.FILE,
    tarfile.DIRTYPE: EntryKind.DIR,
    tarfile.SYMTYPE: EntryKind.SYMLINK,
    tarfile.LNKTYPE: EntryKind.HARDLINK,
    tarfile.CHRTYPE: EntryKind.CHAR,
    tarfile.BLKTYPE: EntryKind.BLOCK,
    tarfile.FIFOTYPE: EntryKind.FIFO,
}
_STREAM_BUFSIZE: Final = 64 << 10
# tarfile's header errors are not in its __all__ (nor in typeshed), but they are how
# TarInfo.fromtarfile reports a short or corrupt header.
_EOF_HEADER: Final[type[Exception]] = tarfile.EOFHeaderError  # type: ignore[attr-defined]
# A stream that stops cleanly at a block boundary, without the two zero blocks, is a complete
# archive for GNU tar and Go's reader alike, and umoci writes layers that way: tarfile reports
# it as EmptyHeaderError and ends the iteration. Only a short block is truncation.
_EMPTY_HEADER: Final[type[Exception]] = tarfile.EmptyHeaderError  # type: ignore[attr-defined]
_SHORT_HEADER: Final[tuple[type[Exception], ...]] = (
    tarfile.TruncatedHeaderError,  # type: ignore[attr-defined]
)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
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


class _TarInfo(tarfile.TarInfo):
    """Turns every header problem except a clean end-of-archive block into an error, and
    caps header sizes before tarfile reads them into memory."""

    max_header_bytes: ClassVar[int] = 1 << 20

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
        obj = super().frombuf(buf, encoding, errors)
        if obj.size < 0:
            raise InvalidArchiveError(obj.name or None, f"negative size {obj.size}")
        if obj.type in _HEADER_TYPES and obj.size > cls.max_header_bytes:
            raise LimitExceededError(
                limit_name="max_header_bytes", limit=cls.max_header_bytes, what="tar header"
            )
        return obj

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> Self:
        try:
            obj = super().fromtarfile(tarfile_)
        except (_EOF_HEADER, _EMPTY_HEADER):
            raise  # TarFile.next() reports the end of the archive
        except _SHORT_HEADER as exc:
            raise InvalidArchiveError(
                None, "truncated: the stream ends without an end-of-archive block"
            ) from exc
        except tarfile.HeaderError as exc:
            raise InvalidArchiveError(
                None, f"corrupt tar header at offset {tarfile_.offset}: {exc}"
            ) from exc
        if obj.size < 0:  # a PAX "size" record can be negative too
            raise InvalidArchiveError(obj.name or None, f"negative size {obj.size}")
        return obj


@dataclass(frozen=True, slots=True)
class Member:
    entry: Entry
    name: str  # the member name as the tar spells it, for messages
    position: int  # 0-based index among the tar's members


class TarStream:
    """Iterate a layer tar once. While a FILE member is current, :meth:`read` returns its
    content; whatever is not read is skipped when iteration continues."""

    def __init__(self, stream: IO[bytes], *, limits: Limits) -> None:
        self._stream = stream
        self._limits = limits
        self._tarinfo = type(
            "_BoundTarInfo", (_TarInfo,), {"max_header_bytes": limits.max_header_bytes}
        )
        self._tf: tarfile.TarFile | None = None
        self._remaining = 0
        self._current = ""
        self._seen: set[str] = set()

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes of the current FILE member's content; ``b""`` at its end."""
        want = min(n, self._remaining)
        if want <= 0 or self._tf is None:
            return b""
        data: bytes = self._tf.fileobj.read(want)
        if len(data) != want:
            raise InvalidArchiveError(self._current, "truncated: file content is cut short")
        self._remaining -= want
        return data

    def __iter__(self) -> Iterator[Member]:
        try:
            # Not a context manager: the TarFile lives as long as this generator.
            self._tf = tarfile.open(  # noqa: SIM115
                fileobj=self._stream,
                mode="r|",
                tarinfo=self._tarinfo,
                encoding="utf-8",
                errors="surrogateescape",
                bufsize=_STREAM_BUFSIZE,
            )
        except (tarfile.ReadError, tarfile.StreamError) as exc:
            raise InvalidArchiveError(None, f"not a readable tar: {exc}") from exc
        tf = self._tf
        position = 0
        while True:
            self._remaining = 0
            try:
                ti = tf.next()
            except (tarfile.ReadError, tarfile.StreamError) as exc:
                raise InvalidArchiveError(None, f"truncated or corrupt tar: {exc}") from exc
            if ti is None:
                return
            tf.members.clear()  # type: ignore[attr-defined]  # stream mode keeps every TarInfo
            if position >= self._limits.max_entries:
                raise LimitExceededError(
                    limit_name="max_entries", limit=self._limits.max_entries, what="layer"
                )
            member = self._member(ti, position)
            position += 1
            if member is None:
                continue
            self._current = member.name
            self._remaining = member.entry.size
            yield member

    def _member(self, ti: tarfile.TarInfo, position: int) -> Member | None:
        raw = ti.name
        limits = self._limits
        name = normalise_name(raw, member=raw)
        if not name:
            return None  # the root itself: lamina never changes the layer root's attributes
        # A UTF-8 character is at most 4 bytes: encode only names that could be too long.
        if len(name) * 4 > limits.max_path_bytes and len(os.fsencode(name)) > limits.max_path_bytes:
            raise LimitExceededError(
                limit_name="max_path_bytes", limit=limits.max_path_bytes, what=f"member {raw!r}"
            )
        if name in self._seen:
            raise UnsafeArchivePathError(raw, "duplicate path in one layer")
        self._seen.add(name)
        if name.count("/") >= limits.max_depth:
            raise LimitExceededError(
                limit_name="max_depth", limit=limits.max_depth, what=f"member {raw!r}"
            )
        parent, _, base = name.rpartition("/")
        if ".wh." not in name:  # the common case: no component can be reserved
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
        uid, gid = self._id(ti.uid, raw), self._id(ti.gid, raw)
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

    def _entry(self, ti: tarfile.TarInfo, name: str, raw: str, *, uid: int, gid: int) -> Entry:
        kind = _KINDS.get(ti.type)
        if kind is None:
            raise InvalidArchiveError(raw, f"unsupported tar entry type {ti.type!r}")
        if ti.sparse is not None or ti.type == tarfile.GNUTYPE_SPARSE:
            raise InvalidArchiveError(raw, "sparse files are not supported in layers")
        linkname = ""
        if kind is EntryKind.HARDLINK:
            linkname = normalise_name(ti.linkname, member=raw)
            if not linkname or linkname == name:
                raise UnsafeArchivePathError(raw, f"hardlink to {ti.linkname!r}")
        elif kind is EntryKind.SYMLINK:
            linkname = ti.linkname
            if not linkname or "\x00" in linkname:
                raise UnsafeArchivePathError(raw, "empty symlink target or NUL in it")
        if len(os.fsencode(linkname)) > self._limits.max_path_bytes:
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
        mtime = int(ti.mtime)
        if not -_MTIME_MAX < mtime < _MTIME_MAX:
            raise InvalidArchiveError(raw, f"mtime {mtime} out of range")
        return Entry(
            path=name,
            kind=kind,
            mode=stat.S_IMODE(ti.mode),
            size=ti.size if kind is EntryKind.FILE else 0,
            mtime=mtime,
            linkname=linkname,
            devmajor=devmajor,
            devminor=devminor,
            xattrs=self._xattrs(ti, raw),
            uid=uid,
            gid=gid,
        )

    def _xattrs(self, ti: tarfile.TarInfo, raw: str) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        total = 0
        for key, value in ti.pax_headers.items():
            if not key.startswith(_XATTR_PREFIX):
                continue
            xname = key[len(_XATTR_PREFIX) :]
            if not xname or "\x00" in xname:
                raise InvalidArchiveError(raw, f"invalid xattr name {xname!r}")
            # tarfile decoded the value as UTF-8 with surrogateescape; this restores the bytes.
            data = value.encode("utf-8", "surrogateescape")
            total += len(xname) + len(data)
            out[xname] = data
        if total > self._limits.max_xattr_bytes:
            raise LimitExceededError(
                limit_name="max_xattr_bytes",
                limit=self._limits.max_xattr_bytes,
                what=f"member {raw!r}",
            )
        return out

    @staticmethod
    def _id(value: int, raw: str) -> int:
        if not 0 <= value <= _UID_MAX:
            raise InvalidArchiveError(raw, f"uid/gid {value} out of range")
        return value
