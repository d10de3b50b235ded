"""lamina's own tar header parser against stdlib ``tarfile`` (the reader it replaced) on tars
that ``tarfile`` and lamina's :class:`TarWriter` write, plus the strictness ``tarfile`` lacks."""

from __future__ import annotations

import io
import tarfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from layer_tars import LayerTar

from lamina.archive.entry import Entry, EntryKind
from lamina.archive.tarheader import HeaderReader, RawMember, parse_pax
from lamina.archive.tarstream import Limits, TarStream
from lamina.archive.tarwriter import TarWriter
from lamina.errors import InvalidArchiveError, LimitExceededError

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_TYPES = [
    tarfile.REGTYPE,
    tarfile.DIRTYPE,
    tarfile.SYMTYPE,
    tarfile.LNKTYPE,
    tarfile.CHRTYPE,
    tarfile.BLKTYPE,
    tarfile.FIFOTYPE,
]
_component = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
    min_size=1,
    max_size=40,
) | st.sampled_from(["a", "x" * 99, "y" * 150, "caf\udce9"])
_names = st.lists(_component, min_size=1, max_size=8).map("/".join)


@st.composite
def _members(draw: st.DrawFn, fmt: int) -> tuple[tarfile.TarInfo, bytes]:
    ti = tarfile.TarInfo(draw(_names))
    ti.type = draw(st.sampled_from(_TYPES))
    ti.mode = draw(st.integers(0, 0o7777))
    big = fmt != tarfile.USTAR_FORMAT
    ti.uid = draw(st.integers(0, (1 << 32) - 2 if big else 0o7777777))
    ti.gid = draw(st.integers(0, 0o7777777))
    ti.mtime = draw(st.integers(-(1 << 33) if big else 0, (1 << 34) if big else 0o77777777777))
    data = b""
    if ti.type == tarfile.REGTYPE:
        data = draw(st.binary(max_size=2000))
        ti.size = len(data)
    elif ti.type in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        ti.linkname = draw(_names if big else st.sampled_from(["t", "a/b", "/abs"]))
    elif ti.type in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        ti.devmajor, ti.devminor = draw(st.integers(0, 0o7777777)), draw(st.integers(0, 4095))
    if fmt == tarfile.PAX_FORMAT:
        xattrs = draw(
            st.dictionaries(
                st.sampled_from(["user.a", "security.capability"]), st.binary(max_size=20)
            )
        )
        ti.pax_headers = {
            f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape") for k, v in xattrs.items()
        }
    return ti, data


def _tar(fmt: int, members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(
        fileobj=buf, mode="w", format=fmt, encoding="utf-8", errors="surrogateescape"
    ) as tf:
        for ti, data in members:
            tf.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)
    return buf.getvalue()


def _ours(data: bytes) -> list[tuple[object, ...]]:
    reader = HeaderReader(io.BytesIO(data).read, max_header_bytes=1 << 20)
    out: list[tuple[object, ...]] = []
    while (m := reader.next()) is not None:
        content = b""
        while view := reader.view(1000):  # small reads cross the source's buffer boundaries
            content += view
        out.append(_fields(m.name, m.type, m.mode, m.uid, m.gid, m.mtime, m.linkname, m, content))
    return out


def _fields(*f: object) -> tuple[object, ...]:
    name, typ, mode, uid, gid, mtime, linkname, src, content = f
    dev = (src.devmajor, src.devminor) if typ in (tarfile.CHRTYPE, tarfile.BLKTYPE) else (0, 0)  # type: ignore[attr-defined]
    xattrs = (
        src.xattrs
        if isinstance(src, RawMember)
        else {
            k.removeprefix("SCHILY.xattr."): v.encode("utf-8", "surrogateescape")
            for k, v in src.pax_headers.items()  # type: ignore[attr-defined]
            if k.startswith("SCHILY.xattr.")
        }
    )
    return (name, typ, mode, uid, gid, mtime, linkname, dev, xattrs, content)


def _stdlib(data: bytes) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    with tarfile.open(
        fileobj=io.BytesIO(data), mode="r|", encoding="utf-8", errors="surrogateescape"
    ) as tf:
        for ti in tf:
            f = tf.extractfile(ti) if ti.isreg() else None
            content = f.read() if f is not None else b""
            out.append(
                _fields(
                    ti.name,
                    ti.type,
                    ti.mode,
                    ti.uid,
                    ti.gid,
                    int(ti.mtime),
                    ti.linkname,
                    ti,
                    content,
                )
            )
    return out


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
@SETTINGS
@given(data=st.data())
def test_same_members_as_tarfile(fmt: int, data: st.DataObject) -> None:
    members = data.draw(st.lists(_members(fmt), max_size=6))
    if fmt == tarfile.USTAR_FORMAT:  # ustar cannot hold every name
        members = [
            (ti, d) for ti, d in members if len(ti.name.encode("utf-8", "surrogateescape")) < 100
        ]
    raw = _tar(fmt, members)
    assert _ours(raw) == _stdlib(raw)


_kinds = st.sampled_from([EntryKind.FILE, EntryKind.DIR, EntryKind.SYMLINK, EntryKind.FIFO])


@SETTINGS
@given(
    entries=st.lists(
        st.builds(
            lambda path, kind, mode, uid, mtime, xattrs, data: (
                Entry(
                    path=path,
                    kind=kind,
                    mode=mode,
                    uid=uid,
                    gid=uid // 2,
                    mtime=mtime,
                    size=len(data) if kind is EntryKind.FILE else 0,
                    linkname="/target/" + path if kind is EntryKind.SYMLINK else "",
                    xattrs=xattrs,
                ),
                data if kind is EntryKind.FILE else b"",
            ),
            _names.filter(
                lambda n: not any(p.startswith(".wh.") or p in (".", "..") for p in n.split("/"))
            ),
            _kinds,
            st.integers(0, 0o7777),
            st.integers(0, (1 << 32) - 2),
            st.integers(-(1 << 33), 1 << 34),
            st.dictionaries(st.sampled_from(["user.a", "trusted.b"]), st.binary(max_size=10)),
            st.binary(max_size=1500),
        ),
        max_size=6,
        unique_by=lambda t: t[0].path,
    )
)
def test_tarwriter_round_trip(entries: list[tuple[Entry, bytes]]) -> None:
    buf = io.BytesIO()
    with TarWriter(buf) as w:
        for e, data in entries:
            w.add(e, io.BytesIO(data) if e.kind is EntryKind.FILE else None)
    ts = TarStream(io.BytesIO(buf.getvalue()), limits=Limits())
    got = []
    for m in ts:
        got.append((m.entry, ts.read(1 << 20)))
    assert got == entries


def _reader(data: bytes) -> list[RawMember]:
    reader = HeaderReader(io.BytesIO(data).read, max_header_bytes=1 << 20)
    return list(iter(reader.next, None))


def test_pax_records_are_strict() -> None:
    assert parse_pax(b"9 uid=42\n12 path=a=b\n\x00\x00", 0) == {"uid": b"42", "path": b"a=b"}
    for bad in (
        b"9 uid=42",
        b"8 uid=42\n",
        b"x uid=1\n",
        b"6 =ab\n",
        b"9 uid 42\n",
        b"-9 uid=42\n",
    ):
        with pytest.raises(InvalidArchiveError, match="PAX"):
            parse_pax(bad, 0)


def test_bad_pax_numbers_refused() -> None:
    for key, value in (("uid", "1e3"), ("size", "0x10"), ("mtime", "soon"), ("gid", "")):
        with pytest.raises(InvalidArchiveError, match="PAX"):
            _reader(LayerTar().file("a", pax_headers={key: value}).bytes())


def test_pax_mtime_truncates_toward_zero() -> None:
    assert _reader(LayerTar().file("a", pax_headers={"mtime": "-1.5"}).bytes())[0].mtime == -1
    assert _reader(LayerTar().file("a", pax_headers={"mtime": "17.999"}).bytes())[0].mtime == 17


def test_global_headers_are_ignored() -> None:
    buf = io.BytesIO()
    with tarfile.open(
        fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"path": "g", "uid": "7"}
    ) as tf:
        tf.addfile(tarfile.TarInfo("a"), io.BytesIO())
    [m] = _reader(buf.getvalue())
    assert (m.name, m.uid) == ("a", 0)


def test_non_numeric_octal_refused() -> None:
    data = bytearray(LayerTar(fmt=tarfile.USTAR_FORMAT).file("a", b"1").bytes())
    data[100:108] = b"0000+44\x00"  # tarfile's int() would take "+44"
    data[148:156] = b" " * 8
    data[148:156] = b"%06o\x00 " % sum(data[:512])
    with pytest.raises(InvalidArchiveError, match="invalid number"):
        _reader(bytes(data))


def test_header_only_types_carry_no_data() -> None:
    # A hardlink's size field is not followed by data (tarfile and Go agree); the next member
    # must be read from the very next block.
    data = bytearray(
        LayerTar(fmt=tarfile.USTAR_FORMAT).file("t").hardlink("h", "t").file("n").bytes()
    )
    data[512 + 124 : 512 + 136] = b"00000001000\x00"
    data[512 + 148 : 512 + 156] = b" " * 8
    data[512 + 148 : 512 + 156] = b"%06o\x00 " % sum(data[512:1024])
    assert [m.name for m in _reader(bytes(data))] == ["t", "h", "n"]


def test_meta_header_rules() -> None:
    two = LayerTar(fmt=tarfile.GNU_FORMAT).file("n" * 200, b"1").bytes()
    long_block = two[:1024]  # the L header and its one data block
    with pytest.raises(InvalidArchiveError, match="two GNU long names"):
        _reader(long_block + two)
    with pytest.raises(InvalidArchiveError, match="without a member"):
        _reader(long_block + bytes(1024))
    with pytest.raises(LimitExceededError):
        HeaderReader(io.BytesIO(two).read, max_header_bytes=100).next()
    sparse = LayerTar().file("s", pax_headers={"GNU.sparse.major": "1"}).bytes()
    assert _reader(sparse)[0].sparse


@pytest.mark.parametrize("fill", [0x61, 0x7F, 0x80, 0xFF])
def test_checksum_sums_every_byte(fill: int) -> None:
    # Extreme bytes in every text field (name, linkname, uname, gname, prefix) push both halves
    # of the block to the largest sums the checksum arithmetic must get exactly right.
    block = bytearray(LayerTar(fmt=tarfile.USTAR_FORMAT).file("a").bytes()[:512])
    for start, end in ((0, 100), (157, 257), (265, 329), (345, 500)):
        block[start:end] = bytes([fill]) * (end - start)
    block[148:156] = b" " * 8
    unsigned = sum(block)
    signed = unsigned - 256 * sum(b > 127 for b in block)
    for stored in (unsigned, signed):
        if stored >= 0:  # a negative signed sum has no octal spelling
            block[148:156] = b"%06o\x00 " % stored
            assert len(_reader(bytes(block) + bytes(1024))) == 1
    for stored in (unsigned - 1, unsigned + 1):
        block[148:156] = b"%06o\x00 " % stored
        with pytest.raises(InvalidArchiveError, match="checksum"):
            _reader(bytes(block) + bytes(1024))
