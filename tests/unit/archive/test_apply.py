from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
from layer_tars import LayerTar, Sandbox, apply, gz, sha, zst

from lamina.archive import apply as apply_module
from lamina.archive.apply import WhiteoutFormat, apply_layer
from lamina.archive.compression import Compression
from lamina.archive.entry import EntryKind, IndexEntry
from lamina.archive.layerpipe import LayerPipe
from lamina.digest import EMPTY_TAR_DIFF_ID, Digest
from lamina.errors import (
    CompressionMismatchError,
    DigestMismatchError,
    InvalidContentError,
    SizeMismatchError,
    UnsafeArchivePathError,
)

OVERLAY, APPLY = WhiteoutFormat.OVERLAY, WhiteoutFormat.APPLY
MTIME = 1_700_000_000


def everything() -> bytes:
    return (
        LayerTar()
        .dir("etc/", mode=0o40755, uid=0, gid=0)
        .file("etc/passwd", b"root:x:0:0\n", mode=0o100644)
        .file("usr/bin/su", b"\x7fELF", mode=0o4755, uid=0, gid=0)
        .file("usr/bin/wall", b"w", mode=0o2755, uid=0, gid=5)
        .dir("tmp/", mode=0o1777)
        .file("home/u/f", b"mine", uid=1000, gid=1000)
        .symlink("lib64", "/usr/lib64")
        .symlink("etc/rel", "../usr/bin/su")
        .hardlink("usr/bin/su2", "usr/bin/su")
        .add("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
        .add("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0, mode=0o660)
        .add("run/fifo", tarfile.FIFOTYPE, mode=0o600)
        .xattrs(
            "usr/bin/ping",
            {
                "security.capability": b"\x01\x00\x00\x02\x00\x20\x00\x00"
                b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
            },
            tarfile.REGTYPE,
        )
        .file("caf\udce9", b"latin-1 name")
        .file("d/" + "long" * 40 + "/n", b"long name")
        .bytes()
    )


@pytest.mark.needs_root
@pytest.mark.parametrize("fmt", [OVERLAY, APPLY])
def test_every_kind_round_trips(sandbox: Sandbox, fmt: WhiteoutFormat) -> None:
    d = sandbox.dest
    data = everything()
    r = apply(data, d, fmt)
    assert r.diff_id == sha(data) == r.blob_digest
    assert r.compression is Compression.NONE and r.diff_size == r.blob_size == len(data)
    su = (d / "usr/bin/su").lstat()
    assert stat.S_IMODE(su.st_mode) == 0o4755 and su.st_nlink == 2
    assert stat.S_IMODE((d / "usr/bin/wall").stat().st_mode) == 0o2755
    assert (d / "usr/bin/wall").stat().st_gid == 5
    assert stat.S_IMODE((d / "tmp").stat().st_mode) == 0o1777
    assert (d / "home/u/f").stat().st_uid == 1000
    assert os.readlink(d / "lib64") == "/usr/lib64"
    assert os.readlink(d / "etc/rel") == "../usr/bin/su"
    assert (d / "usr/bin/su2").stat().st_ino == su.st_ino
    null = (d / "dev/null").lstat()
    assert stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1
    assert stat.S_IMODE(null.st_mode) == 0o666
    assert stat.S_ISBLK((d / "dev/sda").lstat().st_mode)
    assert stat.S_ISFIFO((d / "run/fifo").lstat().st_mode)
    assert os.getxattr(d / "usr/bin/ping", "security.capability")[:4] == b"\x01\x00\x00\x02"
    assert (d / os.fsdecode(b"caf\xe9")).read_bytes() == b"latin-1 name"
    assert (d / ("d/" + "long" * 40 + "/n")).read_bytes() == b"long name"
    assert (d / "etc").stat().st_mtime == MTIME  # dir mtimes are set after the children
    assert (d / "lib64").lstat().st_mtime == MTIME
    rows = {row.entry.path: row for row in r.entries}
    assert rows["etc/passwd"].sha256 == sha(b"root:x:0:0\n")[7:]
    assert rows["usr/bin/su2"].entry.kind is EntryKind.HARDLINK
    assert rows["usr/bin/su2"].sha256 == sha(b"\x7fELF")[7:]
    assert [row.position for row in r.entries] == list(range(len(r.entries)))
    # Docker's layer size (directory.Size): file bytes, hardlinks once, plus symlink targets.
    files = sum(e.entry.size for e in r.entries if e.entry.kind is EntryKind.FILE)
    links = sum(
        len(os.fsencode(e.entry.linkname)) for e in r.entries if e.entry.kind is EntryKind.SYMLINK
    )
    assert r.content_size == files + links


@pytest.mark.parametrize("wrap", [lambda b: b, gz, zst])
def test_digests_cover_raw_and_uncompressed_bytes(shm_tmp: Path, wrap: object) -> None:
    data = LayerTar().file("a", os.urandom(100_000)).bytes() + b"trailing junk after the end"
    blob = wrap(data)  # type: ignore[operator]
    tee = io.BytesIO()
    r = apply_layer(
        io.BytesIO(blob),
        shm_tmp,
        fmt=APPLY,
        tee=tee,
        expected_blob_digest=Digest(sha(blob)),
        expected_blob_size=len(blob),
        expected_diff_id=Digest(sha(data)),
    )
    assert (r.blob_digest, r.diff_id) == (sha(blob), sha(data))
    assert tee.getvalue() == blob


@pytest.mark.timeout(60)
@pytest.mark.parametrize("ahead", [True, False])
@pytest.mark.parametrize("wrap", [lambda b: b, gz])
def test_content_digests_whichever_thread_hashes(
    shm_tmp: Path, wrap: object, ahead: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Mid-size files are hashed on the pipe's producer thread when it is ahead, the others
    # inline: every row gets its content's digest either way, hardlinks their target's.
    monkeypatch.setattr(LayerPipe, "ahead", lambda self: ahead)
    sizes = [0, 1, 2047, (64 << 10) - 1, 64 << 10, 300_000, (1 << 20) - 1, 1 << 20, (3 << 20) + 17]
    contents = {f"f{size}": os.urandom(size) for size in sizes}
    tar = LayerTar()
    for name, content in contents.items():
        tar.file(name, content)
    tar.hardlink("link", "f300000")
    r = apply(wrap(tar.bytes()), shm_tmp)  # type: ignore[operator]
    rows = {row.entry.path: row.sha256 for row in r.entries}
    for name, content in contents.items():
        assert rows[name] == sha(content)[7:]
        assert (shm_tmp / name).read_bytes() == content
    assert rows["link"] == rows["f300000"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("ahead", [True, False])
def test_rows_stream_in_batches_in_tar_order(
    shm_tmp: Path, ahead: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The index goes to the sink as extraction goes, INDEX_BATCH rows at a time, never held
    # whole. A row whose content the producer thread is still hashing holds back the rows
    # after it (the sink sees tar order), and no row goes out before its digest is final.
    monkeypatch.setattr(apply_module, "INDEX_BATCH", 3)
    monkeypatch.setattr(LayerPipe, "ahead", lambda self: ahead)
    contents = {f"d/f{i}": os.urandom(100_000 if i % 3 == 0 else 10) for i in range(12)}
    tar = LayerTar().dir("d")
    for name, content in contents.items():
        tar.file(name, content)
    tar.hardlink("d/l1", "d/f3").hardlink("d/l2", "d/l1")
    batches: list[list[IndexEntry]] = []
    r = apply_layer(io.BytesIO(tar.bytes()), shm_tmp, fmt=APPLY, rows=batches.append)
    rows = [row for batch in batches for row in batch]
    assert r.entry_count == len(rows) == 15
    assert [row.position for row in rows] == list(range(15))
    assert len(batches) > 1 and all(batches)
    if not ahead:  # nothing waits for the producer: full batches
        assert [len(b) for b in batches] == [3, 3, 3, 3, 3]
    shas = {row.entry.path: row.sha256 for row in rows}
    for name, content in contents.items():
        assert shas[name] == sha(content)[7:]
    assert shas["d/l1"] == shas["d/l2"] == shas["d/f3"]
    # Without a sink the rows are only counted.
    (shm_tmp / "again").mkdir()
    again = apply_layer(io.BytesIO(tar.bytes()), shm_tmp / "again", fmt=APPLY)
    assert again.entry_count == 15


@pytest.mark.timeout(60)
def test_failure_with_hashes_pending(shm_tmp: Path) -> None:
    data = LayerTar().file("a", os.urandom(300_000)).file("b", os.urandom(300_000)).bytes()
    with pytest.raises(InvalidContentError):
        apply(data[: 512 + 300_000 + 2000], shm_tmp)  # cut inside the second file


def test_empty_1024_byte_tar(shm_tmp: Path) -> None:
    r = apply(bytes(1024), shm_tmp)
    assert r.diff_id == EMPTY_TAR_DIFF_ID and r.entries == [] and os.listdir(shm_tmp) == []


def test_digest_and_size_mismatch(shm_tmp: Path) -> None:
    data = LayerTar().file("a", b"1").bytes()
    with pytest.raises(DigestMismatchError):
        apply(data, shm_tmp, expected_diff_id=Digest(sha(b"other")))
    with pytest.raises(DigestMismatchError):
        apply(gz(data), shm_tmp, expected_blob_digest=Digest(sha(data)))
    with pytest.raises(SizeMismatchError):
        apply(data, shm_tmp, expected_blob_size=len(data) - 1)


def test_compression_mismatch(shm_tmp: Path) -> None:
    with pytest.raises(CompressionMismatchError):
        apply(gz(bytes(1024)), shm_tmp, declared=Compression.ZSTD)
    with pytest.raises(CompressionMismatchError):
        apply(bytes(1024), shm_tmp, declared=Compression.GZIP)


@pytest.mark.needs_root
def test_overlay_whiteouts_on_disk(sandbox: Sandbox) -> None:
    d = sandbox.dest
    apply(
        LayerTar().file("a/.wh.gone").file("b/.wh..wh..opq").file("b/new", b"n").bytes(), d, OVERLAY
    )
    gone = (d / "a/gone").lstat()
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == os.makedev(0, 0)
    assert os.getxattr(d / "b", "trusted.overlay.opaque") == b"y"
    assert (d / "b/new").read_bytes() == b"n"


@pytest.mark.needs_root
def test_overlay_dir_over_own_whiteout_is_opaque(sandbox: Sandbox) -> None:
    d = sandbox.dest
    apply(LayerTar().file(".wh.x").dir("x/").file("x/y").bytes(), d, OVERLAY)
    assert (d / "x").is_dir() and os.getxattr(d / "x", "trusted.overlay.opaque") == b"y"


def lower_tree(d: Path) -> None:
    apply(
        LayerTar()
        .file("a/keep", b"k")
        .file("a/gone", b"g")
        .dir("a/sub/")
        .file("a/sub/old")
        .file("b/old1")
        .file("b/sub/old2")
        .file("c")
        .dir("e/")
        .file("e/f")
        .bytes(),
        d,
    )


@pytest.mark.parametrize("marker_first", [True, False])
def test_apply_opaque_clears_lower_children_wherever_it_sits(
    sandbox: Sandbox, marker_first: bool
) -> None:
    d = sandbox.dest
    lower_tree(d)
    t = LayerTar()
    if marker_first:
        t.file("b/.wh..wh..opq")
    t.file("b/new", b"n").file("b/sub/new2", b"n2")
    if not marker_first:
        t.file("b/.wh..wh..opq")
    apply(t.bytes(), d)
    assert sorted(os.listdir(d / "b")) == ["new", "sub"]
    assert os.listdir(d / "b/sub") == ["new2"]
    assert (d / "a/keep").exists()


def test_apply_whiteouts_delete(sandbox: Sandbox) -> None:
    d = sandbox.dest
    lower_tree(d)
    apply(
        LayerTar()
        .file("a/.wh.gone")
        .file(".wh.c")
        .file("a/.wh.sub")
        .file(".wh.nothere")
        .file(".wh.e")
        .file("e/g", b"readded")
        .bytes(),
        d,
    )
    assert sorted(os.listdir(d / "a")) == ["keep"]
    assert not (d / "c").exists()
    assert os.listdir(d / "e") == ["g"]


def test_whiteout_after_same_layer_entry_is_ignored(sandbox: Sandbox) -> None:
    d = sandbox.dest
    apply(LayerTar().file("x", b"mine").file(".wh.x").bytes(), d)
    assert (d / "x").read_bytes() == b"mine"


def test_replace_rules(sandbox: Sandbox) -> None:
    d = sandbox.dest
    lower_tree(d)
    os.chmod(d / "e", 0o700)
    apply(
        LayerTar()
        .file("a/sub", b"now a file")
        .symlink("c", "a/keep")
        .dir("e/", mode=0o750)
        .bytes(),
        d,
    )
    assert (d / "a/sub").read_bytes() == b"now a file"
    assert os.readlink(d / "c") == "a/keep"
    assert stat.S_IMODE((d / "e").stat().st_mode) == 0o750 and (d / "e/f").exists()


def test_entry_replacing_dir_this_layer_wrote_into_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(UnsafeArchivePathError) as info:
        apply(LayerTar().file("a/b").file("a", b"x").bytes(), sandbox.dest)
    assert info.value.member == "a"


def test_hardlink_to_tree_in_apply_and_missing_target(sandbox: Sandbox) -> None:
    d = sandbox.dest
    lower_tree(d)
    apply(LayerTar().hardlink("k2", "a/keep").bytes(), d)
    assert (d / "k2").stat().st_ino == (d / "a/keep").stat().st_ino
    with pytest.raises(UnsafeArchivePathError) as info:
        apply(LayerTar().hardlink("k3", "nope").bytes(), d)
    assert info.value.member == "k3"


@pytest.mark.needs_root
def test_overlay_hardlink_must_target_this_layer(sandbox: Sandbox) -> None:
    d = sandbox.dest
    (d / "lowerfile").write_bytes(b"x")  # present in dest but not written by the layer
    with pytest.raises(UnsafeArchivePathError, match="not in this layer"):
        apply(LayerTar().hardlink("h", "lowerfile").bytes(), d, OVERLAY)


@pytest.mark.needs_root
def test_overlay_xattrs_escaped(sandbox: Sandbox) -> None:
    d = sandbox.dest
    r = apply(
        LayerTar()
        .xattrs(
            "d",
            {"trusted.overlay.opaque": b"y", "user.overlay.redirect": b"/x", "user.plain": b"p"},
        )
        .bytes(),
        d,
        OVERLAY,
    )
    names = set(os.listxattr(d / "d"))
    assert names == {
        "trusted.overlay.overlay.opaque",
        "user.overlay.overlay.redirect",
        "user.plain",
    }
    assert set(r.entries[0].entry.xattrs) == {
        "trusted.overlay.opaque",
        "user.overlay.redirect",
        "user.plain",
    }
