"""TarWriter against Go's archive/tar: a real Go-written layer re-written byte for byte, and the
PAX rules of Go's Header.allowedFormats / Writer.writePAXHeader checked field by field."""

from __future__ import annotations

import hashlib
import io
import stat
import tarfile
from pathlib import Path

import pytest

from lamina.archive.entry import Entry, EntryKind
from lamina.archive.tarwriter import EMPTY_LAYER_TAR, TarWriter, encode_header
from lamina.digest import EMPTY_TAR_DIFF_ID, Digest
from lamina.errors import SizeMismatchError, UnsafeArchivePathError

FIXTURE = (
    Path(__file__).resolve().parents[4]
    / "shared/fixtures/busybox/busybox.docker-archive.podman.tar"
)


def _tar(*entries: tuple[Entry, bytes | None], clamp: int | None = None) -> bytes:
    out = io.BytesIO()
    with TarWriter(out, mtime_clamp=clamp) as w:
        for e, data in entries:
            w.add(e, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def _blocks(data: bytes) -> list[bytes]:
    return [data[i : i + 512] for i in range(0, len(data), 512)]


def test_empty_layer_is_1024_zero_bytes() -> None:
    assert _tar() == EMPTY_LAYER_TAR == bytes(1024)
    assert Digest.of(EMPTY_LAYER_TAR) == EMPTY_TAR_DIFF_ID
    assert EMPTY_TAR_DIFF_ID == (
        "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
    )


def _strip_ifmt(header: bytes) -> bytes:
    """containers/storage (Go) puts S_IFMT bits in the mode field; lamina, like current
    go-archive and the OCI spec, writes permission bits only. Undo that one difference."""
    h = bytearray(header)
    mode = int(h[100:107], 8) & 0o7777
    h[100:108] = b"%07o\x00" % mode
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\x00 " % sum(h)
    return bytes(h)


@pytest.mark.skipif(not FIXTURE.exists(), reason="shared fixtures not present")
def test_rewrites_a_go_written_layer_byte_for_byte() -> None:
    with tarfile.open(FIXTURE) as outer:
        member = next(m for m in outer if m.name.endswith(".tar"))
        f = outer.extractfile(member)
        assert f is not None
        go_bytes = f.read()
    # Expected bytes: the Go-written layer with only the S_IFMT bits taken out of each header.
    expected = bytearray()
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(go_bytes)) as t, TarWriter(out) as w:
        for m in t:
            expected += _strip_ifmt(go_bytes[m.offset : m.offset + 512])
            data = t.extractfile(m).read() if m.isreg() else b""  # type: ignore[union-attr]
            expected += go_bytes[m.offset_data : m.offset_data + len(data)]
            expected += bytes(-len(data) % 512)
            kind = {
                tarfile.DIRTYPE: EntryKind.DIR,
                tarfile.SYMTYPE: EntryKind.SYMLINK,
                tarfile.REGTYPE: EntryKind.FILE,
            }[m.type]
            entry = Entry(
                path=m.name.rstrip("/"), kind=kind, mode=stat.S_IMODE(m.mode), uid=m.uid,
                gid=m.gid, size=len(data), mtime=int(m.mtime), linkname=m.linkname,
            )  # fmt: skip
            w.add(entry, io.BytesIO(data))
    expected += bytes(1024)
    assert out.getvalue() == bytes(expected)
    assert len(go_bytes) == len(expected)  # Go writes no record padding either


def test_long_ascii_name_uses_the_ustar_prefix_not_pax() -> None:
    name = "d" * 60 + "/" + "e" * 60 + "/f.txt"
    data = _tar((Entry(path=name, kind=EntryKind.FILE), b""))
    header = _blocks(data)[0]
    assert header[156:157] == b"0"
    assert header[345:500].rstrip(b"\0") == ("d" * 60 + "/" + "e" * 60).encode()
    assert header[0:100].rstrip(b"\0") == b"f.txt"


def test_non_ascii_name_gets_a_pax_path_record_named_like_go() -> None:
    data = _tar((Entry(path="dir/é.txt", kind=EntryKind.FILE), b""))
    pax, main = _blocks(data)[0], _blocks(data)[2]
    assert pax[156:157] == b"x"
    assert pax[0:100].rstrip(b"\0") == b"dir/PaxHeaders.0/.txt"  # toASCII drops "é"
    assert pax[100:108] == b"0000000\0" and pax[136:148] == b"00000000000\0"
    assert pax[329:345] == bytes(16)  # writeRawFile leaves devmajor/devminor empty
    record = "19 path=dir/é.txt\n".encode()
    assert _blocks(data)[1].rstrip(b"\0") == record
    assert int(pax[124:135], 8) == len(record)
    assert main[0:100].rstrip(b"\0") == b"dir/.txt"
    assert main[329:345] == b"0000000\x000000000\x00"


def test_dir_pax_header_name_and_truncated_slash() -> None:
    # toASCII("é" + 99*a + "/b/") is 99*a + "/b/": cut at 100 it ends in "/", which Go's
    # formatString turns into a NUL so no reader mistakes it for a directory marker.
    path = "é" + "a" * 99 + "/b"
    data = _tar((Entry(path=path, kind=EntryKind.DIR, mode=0o755), None))
    pax, _, main = _blocks(data)[:3]
    assert pax[0:100] == b"a" * 99 + b"\0"  # cut at 100, trailing "/" trimmed
    assert main[0:100] == b"a" * 99 + b"\0"
    assert main[156:157] == b"5"


def test_xattrs_big_ids_and_odd_mtimes_go_to_sorted_pax_records() -> None:
    entry = Entry(
        path="f", kind=EntryKind.FILE, uid=3_000_000, gid=7, mtime=-5,
        xattrs={"user.z": b"\x00\xff", "security.capability": b"cap"},
    )  # fmt: skip
    data = _tar((entry, b""))
    body = _blocks(data)[1].rstrip(b"\0")
    assert body == (
        b"40 SCHILY.xattr.security.capability=cap\n"
        b"26 SCHILY.xattr.user.z=\x00\xff\n"
        b"12 mtime=-5\n"
        b"15 uid=3000000\n"
    )
    main = _blocks(data)[2]
    assert main[108:116] == b"0000000\0"  # does not fit: zero, value in the record
    assert main[116:124] == b"0000007\0"
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        m = t.next()
        assert m is not None
        assert (m.uid, m.gid, m.mtime) == (3_000_000, 7, -5)


def test_record_length_counts_its_own_digits() -> None:
    # " " + 14-byte key + "=" + 81-byte value + "\n" = 98; "98 " would make 100, but "100 "
    # has three digits, so the record is 101 long and says so.
    value = b"v" * 81
    entry = Entry(path="f", kind=EntryKind.FILE, xattrs={"u": value})
    body = _blocks(_tar((entry, b"")))[1].rstrip(b"\0")
    assert body == b"101 SCHILY.xattr.u=" + value + b"\n"
    assert len(body) == 101


def test_whiteouts_opaque_devices_links() -> None:
    rows_out = io.BytesIO()
    with TarWriter(rows_out) as w:
        rows = [
            w.add(Entry(path="d", kind=EntryKind.DIR, mode=0o1777)),
            w.add(Entry(path="d", kind=EntryKind.OPAQUE, mode=0o755)),
            w.add(Entry(path="d/gone", kind=EntryKind.WHITEOUT, mode=0o600)),
            w.add(Entry(path="d/f", kind=EntryKind.FILE, mode=0o4755, size=3), io.BytesIO(b"abc")),
            w.add(Entry(path="d/h", kind=EntryKind.HARDLINK, linkname="d/f")),
            w.add(Entry(path="null", kind=EntryKind.CHAR, mode=0o666, devmajor=1, devminor=3)),
            w.add(Entry(path="sda", kind=EntryKind.BLOCK, devmajor=8, devminor=0)),
            w.add(Entry(path="p", kind=EntryKind.FIFO)),
        ]
    with tarfile.open(fileobj=io.BytesIO(rows_out.getvalue())) as t:
        got = [(m.name, m.type, oct(m.mode), m.linkname, m.devmajor, m.devminor) for m in t]
    assert got == [
        ("d", tarfile.DIRTYPE, "0o1777", "", 0, 0),
        ("d/.wh..wh..opq", tarfile.REGTYPE, "0o755", "", 0, 0),
        ("d/.wh.gone", tarfile.REGTYPE, "0o600", "", 0, 0),
        ("d/f", tarfile.REGTYPE, "0o4755", "", 0, 0),
        ("d/h", tarfile.LNKTYPE, "0o644", "d/f", 0, 0),
        ("null", tarfile.CHRTYPE, "0o666", "", 1, 3),
        ("sda", tarfile.BLKTYPE, "0o644", "", 8, 0),
        ("p", tarfile.FIFOTYPE, "0o644", "", 0, 0),
    ]
    assert _blocks(rows_out.getvalue())[0][0:100].rstrip(b"\0") == b"d/"
    sha = hashlib.sha256(b"abc").hexdigest()
    assert [r.sha256 for r in rows] == [None, None, None, sha, sha, None, None, None]
    assert [r.position for r in rows] == list(range(8))


def test_mtime_clamp_lowers_later_mtimes_only() -> None:
    data = _tar(
        (Entry(path="old", kind=EntryKind.FIFO, mtime=100), None),
        (Entry(path="new", kind=EntryKind.FIFO, mtime=5000), None),
        clamp=1000,
    )
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        assert [m.mtime for m in t] == [100, 1000]


def test_refuses_reserved_names_duplicates_and_wrong_sizes() -> None:
    with pytest.raises(UnsafeArchivePathError):
        _tar((Entry(path="d/.wh.x", kind=EntryKind.FILE), b""))
    with pytest.raises(ValueError, match="duplicate"):
        _tar(
            (Entry(path="a", kind=EntryKind.FIFO), None),
            (Entry(path="a", kind=EntryKind.FIFO), None),
        )
    with pytest.raises(SizeMismatchError):
        _tar((Entry(path="a", kind=EntryKind.FILE, size=5), b"abc"))
    with pytest.raises(SizeMismatchError):
        _tar((Entry(path="a", kind=EntryKind.FILE, size=2), b"abc"))
    with pytest.raises(ValueError, match="normalised"):
        _tar((Entry(path="./a", kind=EntryKind.FILE), b""))
    with pytest.raises(ValueError, match="before"):
        _tar((Entry(path="h", kind=EntryKind.HARDLINK, linkname="nope"), None))


def test_encode_header_huge_size_uses_pax() -> None:
    header = encode_header(
        name=b"big", typeflag=b"0", mode=0o644, uid=0, gid=0, size=1 << 33, mtime=0
    )
    assert header[156:157] == b"x"
    assert b"19 size=8589934592\n" in header
    assert header[1024 + 124 : 1024 + 136] == b"00000000000\0"
