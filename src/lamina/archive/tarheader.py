"""A strict, streaming tar header parser: ustar, PAX (``x``) and GNU long names (``L``/``K``).

Why not stdlib ``tarfile``: its generic header code (``frombuf``, ``_proc_pax``, ``nts``/``nti``)
cost about 0.1 ms per member, the largest single cost of applying a layer, and it is lenient
where a layer reader must not be (a bad PAX record or an unparsable number silently becomes
"end of the records" or ``0``). This module only splits the byte stream into members and decodes
their headers; what is *allowed* (names, types, ids, whiteouts) is decided in
:mod:`lamina.archive.tarstream`.

What it enforces:

- every header's checksum (unsigned or signed sum, as the writers disagree), strict octal or
  base-256 numbers, PAX records of the exact ``"<len> <key>=<value>\\n"`` shape;
- a member's data length is its size for regular files and for types the reader does not know
  (so the stream stays in step until the policy refuses them), and 0 for links, directories and
  devices (``tarfile`` and Go agree);
- one PAX header and at most one GNU ``L`` and ``K`` per member, each capped in size; a PAX
  ``path`` and a GNU long name that disagree are refused (readers differ on which wins);
- PAX *global* headers (``g``) are skipped, as containerd and moby do when applying layers;
- the stream ends at a zero block, or cleanly at a block boundary with no end blocks (umoci
  writes layers that way); anything shorter is truncation.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from typing import Final

from lamina.errors import InvalidArchiveError, LimitExceededError

BLOCK: Final = 512
_ZERO_BLOCK: Final = bytes(BLOCK)
_NO_DATA: Final = memoryview(b"")
_READ_SIZE: Final = 1 << 20
# name mode uid gid size mtime chksum type linkname magic version uname gname devmajor devminor
# prefix, at offsets 0 100 108 116 124 136 148 156 157 257 263 265 297 329 337 345 (the hot path
# slices the block at these directly); the struct only slices, numbers are parsed below.
_HEADER: Final = struct.Struct("100s8s8s8s12s12s8sc100s6s2s32s32s8s8s155s12x")
_POSIX_MAGIC: Final = b"ustar\x00"  # prefix field is a path prefix only in POSIX ustar/PAX
_META_TYPES: Final = frozenset({b"x", b"g", b"X", b"L", b"K"})
# Types whose size field says nothing about data that follows (tarfile and Go agree).
_HEADER_ONLY: Final = frozenset({b"1", b"2", b"3", b"4", b"5", b"6"})
_DEC: Final = re.compile(rb"-?[0-9]+")
# mode, uid, gid, size and mtime as nearly every writer spells them ("0000644\0"): one match
# instead of five general parses (the per-member cost that matters on 10k-file layers).
_CANONICAL: Final = re.compile(
    rb"([0-7]{7})\x00([0-7]{7})\x00([0-7]{7})\x00([0-7]{11})\x00([0-7]{11})\x00"
)
_PAX_TIME: Final = re.compile(rb"(-?[0-9]+)(?:\.[0-9]*)?")
_CHKSUM: Final = re.compile(rb"[0-7]{6}\x00 ")
_EIGHTS: Final = (8,) * 5  # int()'s base for each _CANONICAL group
_HIGH_BYTES: Final = bytes(range(128))  # deleted by translate() to count bytes > 127
_XATTR: Final = "SCHILY.xattr."
# PAX keys with nothing for a layer (Go and containers/storage write atime and ctime for every
# member); anything not named here or handled in _apply_pax is ignored as well.
_PAX_UNUSED: Final = frozenset({"atime", "ctime", "uname", "gname", "comment", "charset"})
_adler32: Final = zlib.adler32


class RawMember:
    """One member as its headers spell it: names decoded as UTF-8 with ``surrogateescape``,
    numbers as found (the policy checks ranges)."""

    __slots__ = (
        "devmajor",
        "devminor",
        "gid",
        "linkname",
        "mode",
        "mtime",
        "name",
        "size",
        "sparse",
        "type",
        "uid",
        "xattrs",
    )

    def __init__(self) -> None:
        self.name = ""
        self.linkname = ""
        self.type = b"0"
        self.mode = 0
        self.uid = 0
        self.gid = 0
        self.size = 0  # bytes of data that follow the header (0 for header-only types)
        self.mtime = 0
        self.devmajor = 0
        self.devminor = 0
        self.sparse = False
        self.xattrs: dict[str, bytes] = {}


def _corrupt(offset: int, why: str) -> InvalidArchiveError:
    return InvalidArchiveError(None, f"corrupt tar header at offset {offset}: {why}")


def _number(field: bytes, offset: int) -> int:
    """An octal (NUL/space padded) or base-256 header number."""
    first = field[0]
    if first & 0x80:
        # GNU base-256: 0x80 marks a positive number, 0xff a negative one (two's complement).
        value = int.from_bytes(field[1:], "big")
        if first == 0x80:
            return value
        if first == 0xFF:
            return value - (1 << (8 * (len(field) - 1)))
        raise _corrupt(offset, f"invalid number {field!r}")
    digits = field.strip(b" \x00").partition(b"\x00")[0]
    if not digits:
        return 0
    if not digits.isdigit():
        raise _corrupt(offset, f"invalid number {field!r}")
    try:
        return int(digits, 8)
    except ValueError:  # 8 or 9
        raise _corrupt(offset, f"invalid number {field!r}") from None


def _text(data: bytes, start: int = 0, end: int | None = None) -> str:
    """The NUL-terminated string in ``data[start:end]``."""
    stop = data.find(0, start, end)
    return data[start : stop if stop >= 0 else end].decode("utf-8", "surrogateescape")


def _check_sum(block: bytes, offset: int) -> None:
    field = block[148:156]
    # "dddddd\0 " is how tarfile, Go and GNU tar write it; anything else takes the general path.
    stored = int(field[:6], 8) if _CHKSUM.fullmatch(field) else _number(field, offset)
    # The byte sum at C speed (sum() over a block was a fifth of parsing): the low half of an
    # Adler-32 is 1 + the byte sum mod 65521, and 256 bytes sum to at most 65280, so each half
    # block's is exact.
    total = (_adler32(block[:256]) & 0xFFFF) + (_adler32(block[256:]) & 0xFFFF) - 2
    unsigned = total - sum(field) + 8 * 0x20
    if stored == unsigned:
        return
    # Old writers summed signed chars; tarfile and GNU tar accept both.
    high = len(block.translate(None, _HIGH_BYTES)) - len(field.translate(None, _HIGH_BYTES))
    if stored != unsigned - 256 * high:
        raise _corrupt(offset, "bad checksum")


def parse_pax(data: bytes, offset: int) -> dict[str, bytes]:
    """Records of a PAX extended header: ``{key: raw value}``; a malformed record is an error
    (``tarfile`` stops at it silently, Go refuses it)."""
    out: dict[str, bytes] = {}
    pos, end = 0, len(data)
    while pos < end:
        if data[pos] == 0 and data.count(0, pos) == end - pos:
            break  # NUL padding after the last record
        space = data.find(b" ", pos, pos + 21)
        length_s = data[pos:space]
        if space < 0 or not length_s.isdigit():
            raise _corrupt(offset, "malformed PAX record length")
        stop = pos + int(length_s)
        equals = data.find(b"=", space + 1, stop)
        if stop > end or equals <= space + 1 or data[stop - 1] != 0x0A:
            raise _corrupt(offset, "malformed PAX record")
        out[data[space + 1 : equals].decode("utf-8", "surrogateescape")] = data[
            equals + 1 : stop - 1
        ]
        pos = stop
    return out


def _pax_int(value: bytes, key: str, offset: int) -> int:
    if _DEC.fullmatch(value) is None:
        raise _corrupt(offset, f"PAX {key} {value!r} is not a number")
    return int(value)


class HeaderReader:
    """Splits a tar byte stream into members. ``read`` is the source's ``read(n)`` (short reads
    allowed, ``b""`` at its end). After :meth:`next` returns a member, :meth:`view` and
    :meth:`skip_data` consume its data; :meth:`next` skips whatever was left of it."""

    def __init__(self, read: Callable[[int], bytes], *, max_header_bytes: int) -> None:
        self._read = read
        self._max_header = max_header_bytes
        self._buf = b""
        self._pos = 0
        self._eof = False
        self.offset = 0  # stream offset of the next unread byte
        self.remaining = 0  # data bytes of the current member not yet consumed
        self._pad = 0  # padding after the current member's data

    # -- bytes --------------------------------------------------------------------------------

    def _fill(self) -> bool:
        """Make unread bytes available; False at the end of the source."""
        if self._pos < len(self._buf):
            return True
        if self._eof:
            return False
        data = self._read(_READ_SIZE)
        if not data:
            self._eof = True
            return False
        self._buf, self._pos = bytes(data), 0
        return True

    def _exact(self, n: int) -> bytes | None:
        """``n`` bytes; None if the source ends before the first; truncation error if it ends
        after it."""
        pos = self._pos
        if len(self._buf) - pos >= n:
            self._pos = pos + n
            self.offset += n
            return self._buf[pos : pos + n]
        parts: list[bytes] = []
        need = n
        while need:
            if not self._fill():
                if need == n:
                    return None
                raise InvalidArchiveError(
                    None, "truncated: the stream ends without an end-of-archive block"
                )
            take = min(need, len(self._buf) - self._pos)
            parts.append(self._buf[self._pos : self._pos + take])
            self._pos += take
            need -= take
        self.offset += n
        return b"".join(parts)

    def view(self, n: int) -> memoryview:
        """Up to ``n`` bytes of the current member's data without copying; empty at its end."""
        want = min(n, self.remaining)
        if want <= 0:
            return _NO_DATA
        if not self._fill():
            raise InvalidArchiveError(None, "truncated: file content is cut short")
        pos = self._pos
        take = min(want, len(self._buf) - pos)
        self._pos = pos + take
        self.offset += take
        self.remaining -= take
        return memoryview(self._buf)[pos : pos + take]

    def skip_data(self) -> None:
        """Consume the rest of the current member's data and its padding."""
        left = self.remaining + self._pad
        self.remaining = self._pad = 0
        while left:
            if not self._fill():
                raise InvalidArchiveError(None, "truncated: file content is cut short")
            take = min(left, len(self._buf) - self._pos)
            self._pos += take
            self.offset += take
            left -= take

    # -- headers ------------------------------------------------------------------------------

    def _block(self) -> bytes | None:
        block = self._exact(BLOCK)
        if block is None or block == _ZERO_BLOCK:
            return None
        _check_sum(block, self.offset - BLOCK)
        return block

    def _meta_data(self, size: int, offset: int) -> bytes:
        if size < 0:
            raise InvalidArchiveError(None, f"negative size {size}")
        if size > self._max_header:
            raise LimitExceededError(
                limit_name="max_header_bytes", limit=self._max_header, what="tar header"
            )
        if not size:
            return b""
        data = self._exact(size + -size % BLOCK)  # with its padding
        if data is None:
            raise _corrupt(offset, "missing data of an extended header")
        return data[:size]

    def next(self) -> RawMember | None:
        """The next member, or None at the end of the archive."""
        if self.remaining or self._pad:
            self.skip_data()
        pax: dict[str, bytes] | None = None
        longname: str | None = None
        longlink: str | None = None
        while True:
            start = self.offset
            block = self._block()
            if block is None:
                if pax is not None or longname is not None or longlink is not None:
                    raise _corrupt(start, "extended header without a member")
                if start == 0 and self._eof and not self._buf:
                    raise InvalidArchiveError(None, "not a readable tar: empty file")
                return None
            typ = block[156:157]
            if typ not in _META_TYPES:
                break
            data = self._meta_data(_number(block[124:136], start), start)
            if typ == b"g":
                continue  # ignored, as containerd and moby do
            if typ in (b"x", b"X"):
                if pax is not None:
                    raise _corrupt(start, "two PAX headers for one member")
                pax = parse_pax(data, start)
            elif typ == b"L":
                if longname is not None:
                    raise _corrupt(start, "two GNU long names for one member")
                longname = _text(data)
            else:
                if longlink is not None:
                    raise _corrupt(start, "two GNU long link names for one member")
                longlink = _text(data)
        return self._member(block, typ, start, pax, longname, longlink)

    def _member(
        self,
        block: bytes,
        typ: bytes,
        start: int,
        pax: dict[str, bytes] | None,
        longname: str | None,
        longlink: str | None,
    ) -> RawMember:
        m = RawMember()
        m.type = typ
        canonical = _CANONICAL.match(block, 100)
        if canonical is not None:
            m.mode, m.uid, m.gid, m.size, m.mtime = map(int, canonical.groups(), _EIGHTS)
        else:
            (_, mode, uid, gid, size, mtime, *_) = _HEADER.unpack(block)
            m.mode = _number(mode, start)
            m.uid = _number(uid, start)
            m.gid = _number(gid, start)
            m.size = _number(size, start)
            m.mtime = _number(mtime, start)
        if typ in (b"3", b"4"):
            m.devmajor, m.devminor = _number(block[329:337], start), _number(block[337:345], start)
        m.name = _text(block, 0, 100)
        if block[257:263] == _POSIX_MAGIC and block[345]:
            m.name = _text(block, 345, 500) + "/" + m.name
        m.linkname = _text(block, 157, 257) if block[157] else ""
        if pax is not None:
            self._apply_pax(m, pax, start)
        if longname is not None:
            if pax is not None and "path" in pax and m.name != longname:
                raise _corrupt(start, "PAX path and GNU long name disagree")
            m.name = longname
        if longlink is not None:
            if pax is not None and "linkpath" in pax and m.linkname != longlink:
                raise _corrupt(start, "PAX linkpath and GNU long link name disagree")
            m.linkname = longlink
        if typ == b"\x00" and m.name.endswith("/"):
            m.type = typ = b"5"  # pre-POSIX writers mark directories with a trailing slash
        if typ == b"5":
            m.name = m.name.rstrip("/")
        if m.size < 0:
            raise InvalidArchiveError(m.name or None, f"negative size {m.size}")
        if typ in _HEADER_ONLY:
            m.size = 0
        self.remaining = m.size
        self._pad = -m.size % BLOCK
        return m

    @staticmethod
    def _apply_pax(m: RawMember, pax: dict[str, bytes], start: int) -> None:
        for key, value in pax.items():
            if key in _PAX_UNUSED:
                continue
            if key == "path":
                m.name = value.decode("utf-8", "surrogateescape")
            elif key == "linkpath":
                m.linkname = value.decode("utf-8", "surrogateescape")
            elif key == "size":
                m.size = _pax_int(value, key, start)
            elif key == "uid":
                m.uid = _pax_int(value, key, start)
            elif key == "gid":
                m.gid = _pax_int(value, key, start)
            elif key == "mtime":
                match = _PAX_TIME.fullmatch(value)
                if match is None:
                    raise _corrupt(start, f"PAX mtime {value!r} is not a time")
                m.mtime = int(match.group(1))  # whole seconds, truncated toward zero
            elif key.startswith(_XATTR):
                m.xattrs[key[len(_XATTR) :]] = value
            elif key.startswith("GNU.sparse."):
                m.sparse = True
