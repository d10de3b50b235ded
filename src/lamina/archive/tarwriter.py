"""Deterministic OCI layer tars, byte for byte as Go's ``archive/tar`` writes them for Docker.

Docker (go-archive ``FileInfoHeader`` + ``tar.Writer`` with ``Format = FormatPAX``) writes:

- a plain ustar block when every field fits, splitting a long ASCII name into ustar's
  ``prefix``/``name`` fields; a PAX extended header (``x``, named ``<dir>/PaxHeaders.0/<base>``)
  only when something does not fit: a non-ASCII or unsplittable name, a long or non-ASCII
  linkname, a uid/gid >= 8**7, a size >= 8**11, an mtime outside [0, 8**11), or any xattr
  (``SCHILY.xattr.<name>``); records sorted by key;
- numbers as zero-padded octal with a NUL terminator; the checksum as 6 octal digits, NUL, space;
  devmajor/devminor as octal on every ustar block (zeros for non-devices); uname/gname empty;
  mtime in whole seconds, no atime/ctime;
- names relative without ``./``, directories with a trailing ``/``;
- no record padding: the archive ends with exactly two zero blocks, so an empty layer is
  :data:`EMPTY_LAYER_TAR` (diff_id ``sha256:5f70bf18…``).

One deliberate difference from Docker 20.10 and containers/storage: the mode field holds only
the permission bits (setuid/setgid/sticky included) — those writers add the S_IFMT bits
(``0100644``), newer go-archive and the OCI spec do not.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import IO, Final

from msgspec.structs import replace

from lamina.archive.entry import Entry, EntryKind, IndexEntry, is_reserved_name
from lamina.digest import Hasher
from lamina.errors import SizeMismatchError, UnsafeArchivePathError

BLOCK_SIZE: Final = 512
EMPTY_LAYER_TAR: Final = bytes(2 * BLOCK_SIZE)

# The OCI whiteout spellings (also defined by archive.whiteout for the reader side).
_WHITEOUT_PREFIX: Final = ".wh."
_OPAQUE_MARKER: Final = ".wh..wh..opq"

_NAME_SIZE: Final = 100
_PREFIX_SIZE: Final = 155
_CHUNK: Final = 1 << 20

_TYPEFLAG: Final[dict[EntryKind, bytes]] = {
    EntryKind.FILE: b"0",
    EntryKind.HARDLINK: b"1",
    EntryKind.SYMLINK: b"2",
    EntryKind.CHAR: b"3",
    EntryKind.BLOCK: b"4",
    EntryKind.DIR: b"5",
    EntryKind.FIFO: b"6",
    EntryKind.WHITEOUT: b"0",
    EntryKind.OPAQUE: b"0",
}


_NOT_ASCII: Final = bytes([0, *range(0x80, 0x100)])


def _is_ascii(b: bytes) -> bool:
    # Go's isASCII: every rune < 0x80 and no NUL. (C-speed tests: a per-byte loop made a
    # 3,000-level-deep tree's paths, ~6 KB each, cost seconds.)
    return b.isascii() and b"\0" not in b


def _to_ascii(b: bytes) -> bytes:
    # Go's toASCII drops every non-ASCII rune; an ASCII byte is always its own rune in UTF-8, so
    # dropping bytes >= 0x80 (and NUL) is the same thing.
    return b.translate(None, _NOT_ASCII)


def _fits_octal(n: int, width: int) -> bool:
    return 0 <= n < 1 << (3 * (width - 1))


def _put_str(block: bytearray, offset: int, width: int, s: bytes) -> None:
    """Go's formatter.formatString: copy, NUL-terminate if room, and never leave a truncated
    name ending in ``/`` (some readers would take a file for a dir)."""
    field = bytearray(s[:width])
    if len(s) < width:
        field += bytes(width - len(s))
    elif len(s) > width and field[-1] == ord("/"):
        field[len(bytes(field).rstrip(b"/"))] = 0
    block[offset : offset + width] = field


def _put_octal(block: bytearray, offset: int, width: int, n: int) -> None:
    if not _fits_octal(n, width):
        n = 0  # Go's last resort; the real value travels in a PAX record
    _put_str(block, offset, width, b"%0*o" % (width - 1, n))


def _finish(block: bytearray) -> bytes:
    block[257:265] = b"ustar\x0000"
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\x00 " % sum(block)
    return bytes(block)


def _split_ustar(name: bytes) -> tuple[bytes, bytes] | None:
    """Go's splitUSTARPath."""
    length = len(name)
    if length <= _NAME_SIZE or not _is_ascii(name):
        return None
    if length > _PREFIX_SIZE + 1:
        length = _PREFIX_SIZE + 1
    elif name[length - 1] == ord("/"):
        length -= 1
    i = name.rfind(b"/", 0, length)
    nlen = len(name) - i - 1
    if i <= 0 or nlen > _NAME_SIZE or nlen == 0 or i > _PREFIX_SIZE:
        return None
    return name[:i], name[i + 1 :]


def _pax_record(key: bytes, value: bytes) -> bytes:
    body = b" " + key + b"=" + value + b"\n"
    size = len(body) + len(str(len(body)))
    if len(str(size)) + len(body) != size:
        size = len(str(size)) + len(body)
    return str(size).encode("ascii") + body


def _pax_header_name(name: bytes) -> bytes:
    # path.Join(dir, "PaxHeaders.0", file); our names are already clean, so Join only has to
    # drop the dir's trailing slash.
    i = name.rfind(b"/")
    head, base = name[: i + 1], name[i + 1 :]
    parts = [p for p in (head.rstrip(b"/"), b"PaxHeaders.0", base) if p]
    return _to_ascii(b"/".join(parts))[:_NAME_SIZE].rstrip(b"/")


def encode_header(
    *,
    name: bytes,
    typeflag: bytes,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime: int,
    linkname: bytes = b"",
    devmajor: int = 0,
    devminor: int = 0,
    xattrs: dict[bytes, bytes] | None = None,
) -> bytes:
    """The header block(s) Go's tar.Writer emits for one entry (PAX header + data included)."""
    pax: dict[bytes, bytes] = {}
    ustar_ok = True
    if not _is_ascii(name) or len(name) > _NAME_SIZE:
        pax[b"path"] = name
        ustar_ok = ustar_ok and _split_ustar(name) is not None
    if not _is_ascii(linkname) or len(linkname) > _NAME_SIZE:
        pax[b"linkpath"] = linkname
        ustar_ok = False
    for key, value, width in ((b"uid", uid, 8), (b"gid", gid, 8), (b"size", size, 12)):
        if not _fits_octal(value, width):
            pax[key] = str(value).encode("ascii")
            ustar_ok = False
    if not _fits_octal(mtime, 12):
        pax[b"mtime"] = str(mtime).encode("ascii")
        ustar_ok = False
    if not (_fits_octal(devmajor, 8) and _fits_octal(devminor, 8)):
        raise ValueError(f"device number {devmajor}:{devminor} does not fit a tar header")
    for xname, xvalue in (xattrs or {}).items():
        pax[b"SCHILY.xattr." + xname] = xvalue
        ustar_ok = False

    out = bytearray()
    prefix = b""
    if ustar_ok:
        split = _split_ustar(name)
        if split is not None:
            prefix, name = split
    else:
        data = b"".join(_pax_record(k, pax[k]) for k in sorted(pax))
        raw = bytearray(BLOCK_SIZE)
        _put_str(raw, 0, 100, _pax_header_name(name))
        for off, width, value in ((100, 8, 0), (108, 8, 0), (116, 8, 0), (124, 12, len(data))):
            _put_octal(raw, off, width, value)
        _put_octal(raw, 136, 12, 0)
        raw[156:157] = b"x"
        out += _finish(raw)
        out += data + bytes(-len(data) % BLOCK_SIZE)
        name, linkname = _to_ascii(name), _to_ascii(linkname)

    block = bytearray(BLOCK_SIZE)
    _put_str(block, 0, 100, name)
    _put_octal(block, 100, 8, mode)
    _put_octal(block, 108, 8, uid)
    _put_octal(block, 116, 8, gid)
    _put_octal(block, 124, 12, size)
    _put_octal(block, 136, 12, mtime)
    block[156:157] = typeflag
    _put_str(block, 157, 100, linkname)
    _put_octal(block, 329, 8, devmajor)
    _put_octal(block, 337, 8, devminor)
    _put_str(block, 345, 155, prefix)
    out += _finish(block)
    return bytes(out)


def _check_path(path: str, *, layer: bool = True) -> None:
    parts = path.split("/")
    if not path or "\0" in path or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"not a normalised entry path: {path!r}")
    for part in parts if layer else ():
        if is_reserved_name(part):
            # A real file called .wh.x would read back as a whiteout.
            raise UnsafeArchivePathError(path, "names starting with .wh. are reserved by OCI")


def tar_name(entry: Entry) -> str:
    """The member name an entry is written under (whiteouts spelt the OCI way)."""
    if entry.kind is EntryKind.WHITEOUT:
        head, _, base = entry.path.rpartition("/")
        return f"{head}/{_WHITEOUT_PREFIX}{base}" if head else _WHITEOUT_PREFIX + base
    if entry.kind is EntryKind.OPAQUE:
        return f"{entry.path}/{_OPAQUE_MARKER}"
    if entry.kind is EntryKind.DIR:
        return entry.path + "/"
    return entry.path


class TarWriter:
    """Writes entries in the order given; returns each entry's file-index row as it goes.

    ``mtime_clamp`` (SOURCE_DATE_EPOCH semantics) lowers every later mtime to it. Refuses
    duplicate paths (OCI forbids them) and, in a ``layer`` (the default), real names with the
    reserved ``.wh.`` prefix; a plain archive of files (``cp C:SRC -``) holds them as they are.
    """

    def __init__(
        self, out: IO[bytes], *, mtime_clamp: int | None = None, layer: bool = True
    ) -> None:
        self._out = out
        self._clamp = mtime_clamp
        self._layer = layer
        self._seen: set[str] = set()
        self._file_sha: dict[str, str] = {}
        self._position = 0
        self._closed = False
        self.bytes_written = 0

    def __enter__(self) -> TarWriter:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        # A half-written archive must not look complete, so the trailer goes only on success.
        if et is None:
            self.close()

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self.bytes_written += len(data)

    def add(self, entry: Entry, content: IO[bytes] | None = None) -> IndexEntry:
        """Write one entry; ``content`` must yield exactly ``entry.size`` bytes for a FILE."""
        if self._closed:
            raise ValueError("TarWriter is closed")
        kind = entry.kind
        _check_path(entry.path, layer=self._layer)
        name = tar_name(entry)
        if name in self._seen:
            raise ValueError(f"duplicate tar entry {name!r}")
        if self._clamp is not None and entry.mtime > self._clamp:
            entry = replace(entry, mtime=self._clamp)
        size = entry.size if kind is EntryKind.FILE else 0
        linkname = ""
        if kind in (EntryKind.SYMLINK, EntryKind.HARDLINK):
            linkname = entry.linkname
            if kind is EntryKind.HARDLINK:
                _check_path(linkname, layer=self._layer)
                if linkname not in self._file_sha and linkname not in self._seen:
                    raise ValueError(f"hardlink {entry.path!r} to {linkname!r} written before it")
        is_dev = kind in (EntryKind.CHAR, EntryKind.BLOCK)
        header = encode_header(
            name=os.fsencode(name),
            typeflag=_TYPEFLAG[kind],
            mode=entry.mode & 0o7777,
            uid=entry.uid,
            gid=entry.gid,
            size=size,
            mtime=entry.mtime,
            linkname=os.fsencode(linkname),
            devmajor=entry.devmajor if is_dev else 0,
            devminor=entry.devminor if is_dev else 0,
            xattrs={os.fsencode(k): v for k, v in entry.xattrs.items()},
        )
        self._write(header)
        sha: str | None = None
        if kind is EntryKind.FILE:
            sha = self._copy(entry, content)
            self._file_sha[entry.path] = sha
        elif kind is EntryKind.HARDLINK:
            sha = self._file_sha.get(linkname)
        if size == 0 and kind is not EntryKind.FILE:
            entry = replace(entry, size=0)
        self._seen.add(name)
        row = IndexEntry(entry=entry, sha256=sha, position=self._position)
        self._position += 1
        return row

    def _copy(self, entry: Entry, content: IO[bytes] | None) -> str:
        h = Hasher(expected_size=entry.size)  # small files: no libcrypto (lamina.digest)
        remaining = entry.size
        if remaining and content is None:
            raise ValueError(f"{entry.path!r}: content missing for a {entry.size}-byte file")
        while remaining:
            assert content is not None
            chunk = content.read(min(_CHUNK, remaining))
            if not chunk:
                raise SizeMismatchError(
                    expected=entry.size, actual=entry.size - remaining, what=entry.path
                )
            h.update(chunk)
            self._write(chunk)
            remaining -= len(chunk)
        if content is not None and content.read(1):
            # The file grew while it was being written (a running container); Go's writer
            # fails the same way (ErrWriteTooLong).
            raise SizeMismatchError(expected=entry.size, actual=entry.size + 1, what=entry.path)
        self._write(bytes(-entry.size % BLOCK_SIZE))
        return h.digest().hex

    def close(self) -> None:
        """Write the two zero blocks that end the archive. Idempotent."""
        if not self._closed:
            self._write(EMPTY_LAYER_TAR)
            self._closed = True
