from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator

import pytest
from layer_tars import LayerTar

from lamina.archive.entry import Entry, EntryKind
from lamina.archive.tarstream import Limits, TarStream, clean_name, normalise_name
from lamina.errors import InvalidArchiveError, LimitExceededError, UnsafeArchivePathError


def entries(data: bytes, limits: Limits | None = None) -> list[Entry]:
    return [m.entry for m in TarStream(io.BytesIO(data), limits=limits or Limits())]


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("./a/b", "a/b"),
        ("/abs/x", "abs/x"),
        ("a//b/./c/", "a/b/c"),
        ("./", ""),
        (".", ""),
        ("/", ""),
        ("C:\\x", "C:\\x"),
    ],
)
def test_normalise(raw: str, norm: str) -> None:
    assert normalise_name(raw, member=raw) == norm


@pytest.mark.parametrize("raw", ["../x", "a/../../x", "a/..", "a\x00b"])
def test_normalise_refuses(raw: str) -> None:
    with pytest.raises(UnsafeArchivePathError) as info:
        normalise_name(raw, member=raw)
    assert info.value.member == raw


def test_go_style_header_quirks() -> None:
    data = (
        LayerTar()
        .dir("./usr/", mode=0o40755, uid=1000, gid=1000)
        .file("usr/bin/su", b"x", mode=0o104755)
        .dir("tmp/", mode=0o41777)
        .xattrs(
            "usr/bin/ping", {"security.capability": b"\x01\x00\x00\x02\xff\x80"}, tarfile.REGTYPE
        )
        .bytes()
    )
    es = entries(data)
    assert [(e.path, e.kind, oct(e.mode)) for e in es] == [
        ("usr", EntryKind.DIR, "0o755"),
        ("usr/bin/su", EntryKind.FILE, "0o4755"),
        ("tmp", EntryKind.DIR, "0o1777"),
        ("usr/bin/ping", EntryKind.FILE, "0o755"),
    ]
    assert (es[0].uid, es[0].gid) == (1000, 1000)
    assert es[3].xattrs == {"security.capability": b"\x01\x00\x00\x02\xff\x80"}


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_and_non_utf8_names(fmt: int) -> None:
    long = "d/" + "x" * 200 + "/" + "y" * 150
    odd = "caf\udce9"  # b"caf\xe9" kept with surrogateescape
    es = entries(LayerTar(fmt=fmt).file(long, b"1").symlink(odd, "t" * 300).bytes())
    assert es[0].path == long
    assert es[1].path == odd and es[1].linkname == "t" * 300


def test_whiteouts_decoded_and_meta_dropped() -> None:
    data = (
        LayerTar()
        .file("a/.wh.b")
        .file(".wh.top")
        .file("a/.wh..wh..opq")
        .file(".wh..wh..opq")
        .file(".wh..wh.plnk/123.456", b"z")
        .file(".wh..wh.aufs")
        .bytes()
    )
    assert [(e.path, e.kind) for e in entries(data)] == [
        ("a/b", EntryKind.WHITEOUT),
        ("top", EntryKind.WHITEOUT),
        ("a", EntryKind.OPAQUE),
        ("", EntryKind.OPAQUE),
    ]


@pytest.mark.parametrize("name", [".wh.", "a/.wh..", "a/.wh...", "a/.wh.x/y"])
def test_invalid_whiteouts(name: str) -> None:
    with pytest.raises(UnsafeArchivePathError) as info:
        entries(LayerTar().file(name).bytes())
    assert info.value.member == name


def test_root_entry_is_a_no_op() -> None:
    assert entries(LayerTar().dir("./").dir("/").file("x").bytes())[0].path == "x"


def test_duplicates_refused() -> None:
    with pytest.raises(UnsafeArchivePathError, match="duplicate"):
        entries(LayerTar().file("./a", b"1").file("a", b"2").bytes())


def test_whiteout_and_readd_are_not_duplicates() -> None:
    assert len(entries(LayerTar().file(".wh.a").dir("a/").bytes())) == 2


def test_hardlink_linkname_normalised() -> None:
    es = entries(LayerTar().file("a").hardlink("b", "/./a").bytes())
    assert es[1].linkname == "a"


def test_unsupported_types_refused() -> None:
    for typ in (b"D", b"V", b"A", b"8"):
        with pytest.raises(InvalidArchiveError) as info:
            entries(LayerTar().add("weird", typ).bytes())
        assert info.value.member == "weird"


def test_char_0_0_refused() -> None:
    with pytest.raises(InvalidArchiveError, match="whiteout"):
        entries(LayerTar().add("c", tarfile.CHRTYPE, devmajor=0, devminor=0).bytes())


def test_limits() -> None:
    data = LayerTar().file("a").file("b").file("c").bytes()
    with pytest.raises(LimitExceededError):
        entries(data, Limits(max_entries=2))
    with pytest.raises(LimitExceededError):
        entries(LayerTar().file("a" * 50).bytes(), Limits(max_path_bytes=40))
    with pytest.raises(LimitExceededError):
        entries(LayerTar().xattrs("d", {"user.a": b"x" * 100}).bytes(), Limits(max_xattr_bytes=64))
    with pytest.raises(LimitExceededError):
        entries(
            LayerTar(fmt=tarfile.GNU_FORMAT).file("n" * 5000).bytes(), Limits(max_header_bytes=4096)
        )


def test_empty_archive_and_missing_end() -> None:
    assert entries(bytes(1024)) == []
    with pytest.raises(InvalidArchiveError, match="empty"):
        entries(b"")
    one = LayerTar().file("a", b"x" * 10).bytes()
    # No end-of-archive blocks but a clean stop at a block boundary: a complete archive for GNU
    # tar and Go's archive/tar, and how umoci writes layers (../shared/fixtures' umoci layout).
    assert [e.path for e in entries(one[:1024])] == ["a"]
    with pytest.raises(InvalidArchiveError, match="truncated"):
        entries(one[:700])  # a short block is truncation


def test_content_views_and_truncated_content_names_the_member() -> None:
    data = LayerTar(fmt=tarfile.USTAR_FORMAT).file("a", b"x" * 3000).bytes()
    ts = TarStream(io.BytesIO(data), limits=Limits())
    [member] = list(_with_views(ts))
    assert member == [b"x" * 1000] * 3
    cut = TarStream(io.BytesIO(data[: 512 + 100]), limits=Limits())
    with pytest.raises(InvalidArchiveError, match="cut short") as info:
        list(_with_views(cut))
    assert info.value.member == "a"


def _with_views(ts: TarStream) -> Iterator[list[bytes]]:
    for _ in ts:
        yield list(map(bytes, iter(lambda: ts.read_view(1000), memoryview(b""))))


def plain(data: bytes) -> list[Entry]:
    return [m.entry for m in TarStream(io.BytesIO(data), limits=Limits(), layer=False)]


@pytest.mark.parametrize(
    ("raw", "clean"), [("a/../b", "b"), ("./a/./b/..", "a"), ("/abs/../x", "x"), ("a/..", "")]
)
def test_clean_name_steps_back_by_the_string(raw: str, clean: str) -> None:
    assert clean_name(raw, member=raw) == clean


@pytest.mark.parametrize("raw", ["../x", "a/../../x", "/..", "a\x00b"])
def test_clean_name_refuses_what_climbs_above_the_root(raw: str) -> None:
    with pytest.raises(UnsafeArchivePathError):
        clean_name(raw, member=raw)


def test_a_plain_archive_has_no_whiteouts_and_repeats_names() -> None:
    """As Docker's Untar for cp: ``.wh.*`` are files, the last copy of a name wins (the
    extractor replaces the earlier one), hardlink targets are cleaned likewise."""
    data = (
        LayerTar()
        .file("d/.wh.x", b"w")
        .file("d/.wh..wh..opq")
        .file("f", b"1")
        .file("./f", b"2")
        .hardlink("h", "d/../f")
        .bytes()
    )
    es = plain(data)
    assert [(e.path, e.kind) for e in es] == [
        ("d/.wh.x", EntryKind.FILE),
        ("d/.wh..wh..opq", EntryKind.FILE),
        ("f", EntryKind.FILE),
        ("f", EntryKind.FILE),
        ("h", EntryKind.HARDLINK),
    ]
    assert es[-1].linkname == "f"
    with pytest.raises(UnsafeArchivePathError, match="outside"):
        plain(LayerTar().hardlink("h", "../etc/passwd").bytes())
