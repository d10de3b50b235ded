"""The bad-input corpus (reference/peers-and-threats.md §4.2, items 1-17) against apply_layer:
each input is refused with an error naming the member, or neutralised, and nothing outside the
destination changes."""

from __future__ import annotations

import gzip
import io
import os
import signal
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from layer_tars import LayerTar, Sandbox, apply, gz

from lamina.archive.apply import WhiteoutFormat
from lamina.archive.tarstream import Limits
from lamina.errors import (
    ConflictError,
    DriverError,
    InvalidArchiveError,
    InvalidContentError,
    LimitExceededError,
    UnsafeArchivePathError,
)

OVERLAY, APPLY = WhiteoutFormat.OVERLAY, WhiteoutFormat.APPLY
BOTH = pytest.mark.parametrize("fmt", [APPLY, pytest.param(OVERLAY, marks=pytest.mark.needs_root)])


def refused(
    sandbox: Sandbox, data: bytes, member: str, fmt: WhiteoutFormat = APPLY, **kw: object
) -> UnsafeArchivePathError:
    with pytest.raises(UnsafeArchivePathError) as info:
        apply(data, sandbox.dest, fmt, **kw)
    assert info.value.member == member
    sandbox.assert_untouched()
    return info.value


@BOTH
@pytest.mark.parametrize("name", ["../x", "a/../../x", "a/..", "./../outside/canary"])
def test_dotdot_refused(sandbox: Sandbox, fmt: WhiteoutFormat, name: str) -> None:
    refused(sandbox, LayerTar().file("ok").file(name, b"pwn").bytes(), name, fmt)


@BOTH
def test_absolute_names_land_inside(sandbox: Sandbox, fmt: WhiteoutFormat) -> None:
    outside = str(sandbox.outside / "canary")
    apply(LayerTar().file(outside, b"inside").file("/abs/x", b"x").bytes(), sandbox.dest, fmt)
    assert (sandbox.dest / outside.lstrip("/")).read_bytes() == b"inside"
    assert (sandbox.dest / "abs/x").read_bytes() == b"x"
    sandbox.assert_untouched()


@BOTH
@pytest.mark.parametrize("target", ["<outside>", "../outside", "../../../../../../..", "/"])
def test_symlink_then_write_through_it_one_layer(
    sandbox: Sandbox, fmt: WhiteoutFormat, target: str
) -> None:
    target = target.replace("<outside>", str(sandbox.outside))
    data = LayerTar().symlink("evil", target).file("evil/canary", b"pwn").bytes()
    err = refused(sandbox, data, "evil/canary", fmt)
    assert "symlink" in err.reason


def test_symlink_across_layers_apply(sandbox: Sandbox) -> None:
    apply(LayerTar().symlink("evil", str(sandbox.outside)).bytes(), sandbox.dest)
    refused(sandbox, LayerTar().file("evil/canary", b"pwn").bytes(), "evil/canary")
    refused(sandbox, LayerTar().dir("evil/sub/").bytes(), "evil/sub")  # tarfile drops the "/"


@pytest.mark.needs_root
def test_symlink_across_layers_overlay(sandbox: Sandbox) -> None:
    data = LayerTar().file("evil/canary", b"pwn").bytes()
    refused(sandbox, data, "evil/canary", OVERLAY, lower_symlinks={"/evil"})
    refused(
        sandbox,
        LayerTar().file("evil/.wh.canary").bytes(),
        "evil/.wh.canary",
        OVERLAY,
        lower_symlinks={"evil"},
    )
    refused(
        sandbox,
        LayerTar().file("evil/.wh..wh..opq").bytes(),
        "evil/.wh..wh..opq",
        OVERLAY,
        lower_symlinks={"evil"},
    )
    # Replaced by a real directory earlier in the same layer: then it is not a symlink any more.
    apply(
        LayerTar().dir("evil/").file("evil/ok", b"ok").bytes(),
        sandbox.dest,
        OVERLAY,
        lower_symlinks={"evil"},
    )
    assert (sandbox.dest / "evil/ok").read_bytes() == b"ok"
    sandbox.assert_untouched()


@BOTH
def test_hardlink_escapes(sandbox: Sandbox, fmt: WhiteoutFormat) -> None:
    refused(sandbox, LayerTar().hardlink("h", "../outside/canary").bytes(), "h", fmt)
    refused(sandbox, LayerTar().hardlink("h", "/etc/shadow").bytes(), "h", fmt)
    refused(sandbox, LayerTar().hardlink("h", str(sandbox.outside / "canary")).bytes(), "h", fmt)
    data = LayerTar().symlink("evil", str(sandbox.outside)).hardlink("h", "evil/canary").bytes()
    refused(sandbox, data, "h", fmt)


@BOTH
def test_absolute_hardlink_target_is_rerooted(sandbox: Sandbox, fmt: WhiteoutFormat) -> None:
    apply(
        LayerTar().file("etc/shadow", b"s").hardlink("h", "/etc/shadow").bytes(), sandbox.dest, fmt
    )
    assert (sandbox.dest / "h").stat().st_ino == (sandbox.dest / "etc/shadow").stat().st_ino


@BOTH
def test_hardlink_to_symlink_does_not_follow(sandbox: Sandbox, fmt: WhiteoutFormat) -> None:
    canary = str(sandbox.outside / "canary")
    apply(LayerTar().symlink("s", canary).hardlink("h", "s").bytes(), sandbox.dest, fmt)
    assert os.readlink(sandbox.dest / "h") == canary
    if fmt is APPLY:  # a later layer writing "h" replaces the link, never writes through it
        apply(LayerTar().file("h", b"pwn").bytes(), sandbox.dest, fmt)
        assert (sandbox.dest / "h").read_bytes() == b"pwn"
    sandbox.assert_untouched()


@BOTH
def test_hardlink_to_later_entry_refused(sandbox: Sandbox, fmt: WhiteoutFormat) -> None:
    refused(sandbox, LayerTar().hardlink("h", "later").file("later").bytes(), "h", fmt)


def test_whiteout_under_symlinked_dir_apply(sandbox: Sandbox) -> None:
    apply(LayerTar().symlink("evil", str(sandbox.outside)).bytes(), sandbox.dest)
    refused(sandbox, LayerTar().file("evil/.wh.victim").bytes(), "evil/.wh.victim")
    refused(sandbox, LayerTar().file("evil/.wh..wh..opq").bytes(), "evil/.wh..wh..opq")


@BOTH
def test_whiteout_under_symlink_same_layer(sandbox: Sandbox, fmt: WhiteoutFormat) -> None:
    data = LayerTar().symlink("evil", str(sandbox.outside)).file("evil/.wh.victim").bytes()
    refused(sandbox, data, "evil/.wh.victim", fmt)


@BOTH
def test_root_symlink_entry_is_ignored(sandbox: Sandbox, fmt: WhiteoutFormat) -> None:
    """CVE-2021-29136: a symlink entry for the root itself must not redirect later entries."""
    data = (
        LayerTar()
        .symlink(".", str(sandbox.outside))
        .symlink("./", str(sandbox.outside))
        .file("canary", b"pwn")
        .bytes()
    )
    apply(data, sandbox.dest, fmt)
    assert (sandbox.dest / "canary").read_bytes() == b"pwn"
    sandbox.assert_untouched()


@BOTH
def test_legit_absolute_symlinks_kept(sandbox: Sandbox, fmt: WhiteoutFormat) -> None:
    apply(
        LayerTar().symlink("lib64", "/usr/lib64").symlink("a", "b").symlink("b", "a").bytes(),
        sandbox.dest,
        fmt,
    )
    assert os.readlink(sandbox.dest / "lib64") == "/usr/lib64"
    assert os.readlink(sandbox.dest / "a") == "b"


@BOTH
@pytest.mark.parametrize("name", [".wh.", "d/.wh..", "d/.wh..."])
def test_bad_whiteout_names(sandbox: Sandbox, fmt: WhiteoutFormat, name: str) -> None:
    refused(sandbox, LayerTar().file(name).bytes(), name, fmt)


@BOTH
def test_whiteout_parent_then_child(sandbox: Sandbox, fmt: WhiteoutFormat) -> None:
    apply(
        LayerTar().file(".wh.foo").file("foo/.wh.bar").file(".wh.missing").bytes(),
        sandbox.dest,
        fmt,
    )
    sandbox.assert_untouched()


@BOTH
def test_duplicate_paths(sandbox: Sandbox, fmt: WhiteoutFormat) -> None:
    refused(sandbox, LayerTar().file("a", b"1").file("./a", b"2").bytes(), "./a", fmt)


@BOTH
def test_gzip_bomb_over_limit(sandbox: Sandbox, fmt: WhiteoutFormat) -> None:
    bomb = gzip.compress(LayerTar().file("big", bytes(64 << 20)).bytes())
    with pytest.raises(LimitExceededError) as info:
        apply(bomb, sandbox.dest, fmt, limits=Limits(max_uncompressed_bytes=8 << 20))
    assert info.value.limit_name == "max_uncompressed_bytes"
    assert (sandbox.dest / "big").stat().st_size <= 8 << 20
    sandbox.assert_untouched()


# Cuts inside a header or inside file data. A cut exactly at a block boundary is a complete
# archive without end blocks (GNU tar, Go and umoci agree), so it is not in this list.
@pytest.mark.parametrize("cut", [100, 600, 1500, 2600])
def test_truncated_archive(sandbox: Sandbox, cut: int) -> None:
    data = LayerTar().file("a", b"x" * 2000).file("b", b"y").bytes()
    whole = gzip.compress(data)
    for blob in (data[:cut], gz(data[:cut]), whole[: min(cut // 4, len(whole) - 1)]):
        with pytest.raises(InvalidContentError):
            apply(blob, sandbox.dest)
    sandbox.assert_untouched()


def _with_checksum(block: bytearray) -> bytes:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\x00 " % sum(block[:512])
    return bytes(block)


@pytest.mark.timeout(30)
def test_pax_length_zero(sandbox: Sandbox) -> None:
    data = LayerTar().file("a", b"1", pax_headers={"comment": "xyz"}).bytes()
    evil = data.replace(b"15 comment=xyz\n", b"00 comment=xyz\n")
    assert evil != data
    with pytest.raises(InvalidContentError):
        apply(evil, sandbox.dest)


@pytest.mark.timeout(30)
def test_negative_sizes(sandbox: Sandbox) -> None:
    data = bytearray(LayerTar(fmt=tarfile.USTAR_FORMAT).file("a", b"1").file("b").bytes())
    data[124:136] = b"\xff" * 12  # base-256 -1
    evil = _with_checksum(data[:512]) + bytes(data[512:])
    with pytest.raises(InvalidArchiveError, match="negative"):
        apply(evil, sandbox.dest)
    pax = LayerTar().file("a", b"", pax_headers={"size": "-5"}).file("b").bytes()
    with pytest.raises(InvalidArchiveError, match="negative"):
        apply(pax, sandbox.dest)


def test_garbage_header_mid_stream(sandbox: Sandbox) -> None:
    data = bytearray(LayerTar().file("a", b"1").file("b", b"2").bytes())
    data[1024:1536] = b"\x01" * 512  # second member's header, bad checksum
    with pytest.raises(InvalidArchiveError, match="corrupt"):
        apply(bytes(data), sandbox.dest)


def test_xz_refused_without_exec(sandbox: Sandbox) -> None:
    import lzma

    from lamina.errors import UnsupportedMediaTypeError

    with pytest.raises(UnsupportedMediaTypeError):
        apply(lzma.compress(bytes(1024)), sandbox.dest)


@pytest.mark.needs_root
def test_char_0_0_entry_refused(sandbox: Sandbox) -> None:
    with pytest.raises(InvalidArchiveError) as info:
        apply(LayerTar().add("x", tarfile.CHRTYPE).bytes(), sandbox.dest, OVERLAY)
    assert info.value.member == "x"


@pytest.mark.needs_root
@pytest.mark.needs_overlay
def test_image_overlay_xattrs_are_inert_in_a_real_overlay(shm_tmp: Path) -> None:
    lower, evil, honest, merged = (shm_tmp / n for n in ("lower", "evil", "honest", "merged"))
    for d in (lower, evil, honest, merged):
        d.mkdir()
    apply(LayerTar().file("d/keep", b"k").file("e/f", b"f").bytes(), lower, OVERLAY)
    apply(
        LayerTar()
        .xattrs("d", {"trusted.overlay.opaque": b"y", "user.overlay.opaque": b"y"})
        .xattrs("e/f", {"trusted.overlay.whiteout": b"y"}, tarfile.REGTYPE)
        .file("d/new", b"n")
        .bytes(),
        evil,
        OVERLAY,
    )
    apply(LayerTar().file("d/.wh..wh..opq").file("d/new", b"n").bytes(), honest, OVERLAY)

    def listing(upper: Path) -> tuple[list[str], list[str], bytes]:
        subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={upper}:{lower}", str(merged)],
            check=True,
        )
        try:
            shown = {n: os.getxattr(merged / "d", n) for n in os.listxattr(merged / "d")}
            return (
                sorted(os.listdir(merged / "d")),
                sorted(os.listdir(merged / "e")),
                shown.get("trusted.overlay.opaque", b""),
            )
        finally:
            subprocess.run(["umount", str(merged)], check=True)

    # The image's own opaque xattr does not hide the lower dir; the kernel shows it unescaped.
    assert listing(evil) == (["keep", "new"], ["f"], b"y")
    assert listing(honest)[0] == ["new"]  # control: a real opaque marker does hide it


def _extract_plain(data: bytes, root: Path, dest: str = "/w") -> None:
    """As ``cp - C:DEST``: ``root`` is the container's root, DEST a dir in it."""
    from lamina.archive.apply import extract_plain
    from lamina.archive.safepath import Tree
    from lamina.runtime.rootfs import open_in_root

    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    tree = Tree(
        open_in_root(root, dest, flags=flags),
        follow=lambda rel: open_in_root(root, f"{dest}/{rel}", flags=flags),
    )
    with tree:
        extract_plain(io.BytesIO(data), tree, dest=dest)


def test_plain_archive_links_resolve_inside_the_root(sandbox: Sandbox) -> None:
    """A link the archive plants (absolute, or climbing with ``..``) and a link already in
    the tree are followed as a chroot would follow them: inside ``root``, never outside it."""
    root = sandbox.dest
    (root / "w").mkdir()
    (root / "etc").mkdir()
    os.symlink("../../../..", root / "w" / "up")
    data = (
        LayerTar()
        .symlink("a", "/etc")
        .file("a/passwd", b"in root")
        .file("up/top", b"top")
        .file("up/outside/canary", b"pwned")
        .bytes()
    )
    _extract_plain(data, root)
    assert (root / "etc" / "passwd").read_bytes() == b"in root"
    assert (root / "top").read_bytes() == b"top"
    assert (root / "outside" / "canary").read_bytes() == b"pwned"  # the root's own /outside
    with pytest.raises(UnsafeArchivePathError, match="invalid symlink"):
        _extract_plain(LayerTar().symlink("b", "../../outside").bytes(), root)
    with pytest.raises(DriverError):  # the host path does not exist inside the root
        _extract_plain(
            LayerTar().symlink("c", str(sandbox.outside)).file("c/canary", b"x").bytes(), root
        )
    sandbox.assert_untouched()


def test_plain_archive_never_swaps_a_dir_and_a_non_dir(sandbox: Sandbox) -> None:
    root = sandbox.dest
    (root / "w" / "d").mkdir(parents=True)
    (root / "w" / "f").write_bytes(b"f")
    with pytest.raises(ConflictError, match="cannot overwrite directory"):
        _extract_plain(LayerTar().file("d", b"x").bytes(), root)
    with pytest.raises(ConflictError, match="cannot overwrite non-directory"):
        _extract_plain(LayerTar().dir("f").bytes(), root)
    _extract_plain(LayerTar().file("f", b"1").file("f", b"2").bytes(), root)
    assert (root / "w" / "f").read_bytes() == b"2"
    sandbox.assert_untouched()


def test_a_plain_archive_never_reads_its_hardlink_targets(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``cp -`` keeps no index, so a hardlink's target is never opened: one a running container
    swaps for a FIFO after the check cannot hang the extraction (the index's hash opened it
    blocking), and a thousand links to one big file cost no reads of it (each re-read it)."""
    from lamina.archive import apply as apply_module

    def opened(dir_fd: int, name: str) -> None:
        raise AssertionError(f"a plain extraction opened the hardlink target {name!r}")

    monkeypatch.setattr(apply_module, "_hash_at", opened)
    root = sandbox.dest
    (root / "w").mkdir()
    os.mkfifo(root / "w" / "fifo")  # no writer: a blocking open for reading would hang
    (root / "w" / "big").write_bytes(b"\0" * (1 << 20))
    tar = LayerTar()
    for i in range(1000):
        tar = tar.hardlink(f"l{i % 10}", "big")
    tar = tar.hardlink("to-fifo", "fifo")
    signal.alarm(20)  # a regression that hangs fails instead
    try:
        _extract_plain(tar.bytes(), root)
    finally:
        signal.alarm(0)
    assert os.stat(root / "w" / "l3").st_ino == os.stat(root / "w" / "big").st_ino
    assert stat.S_ISFIFO(os.lstat(root / "w" / "to-fifo").st_mode)
    sandbox.assert_untouched()
