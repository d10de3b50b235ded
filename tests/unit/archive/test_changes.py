"""docker-diff changes and layer diffs from two trees (naive) and from overlay upper dirs
(native). Expected values follow go-archive's changes.go rules (formats.md §2.6) and Docker's
overlay whiteout converter (§1.3)."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
from pathlib import Path

import pytest
from layer_tars import write_tree_diff, write_upper_dir

from lamina.archive import changes
from lamina.archive.changes import Change, ChangeKind, tree_changes, upper_changes
from lamina.archive.entry import EntryKind
from lamina.errors import DriverError

A, C, D = ChangeKind.ADDED, ChangeKind.MODIFIED, ChangeKind.DELETED
T = 1_600_000_000


def _file(p: Path, data: bytes = b"x", mtime: int = T) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    os.utime(p, (mtime, mtime))


def _pair(base: Path) -> tuple[Path, Path]:
    lower, upper = base / "lower", base / "upper"
    for root in (lower, upper):
        _file(root / "etc/passwd", b"root")
        _file(root / "etc/group", b"g")
        _file(root / "keep")
        _file(root / "gone")
        _file(root / "tree/a/b")
        _file(root / "becomes_dir")
        os.symlink("/etc/passwd", root / "link")
        os.utime(root / "link", (T, T), follow_symlinks=False)
    return lower, upper


def _changes(lower: Path | None, upper: Path) -> list[tuple[str, str]]:
    return [(c.kind.value, c.path) for c in tree_changes(lower, upper)]


def test_tree_changes_follow_dockers_naive_rules(shm_tmp: Path) -> None:
    lower, upper = _pair(shm_tmp)
    _file(upper / "etc/passwd", b"toor", mtime=T + 1)  # content and mtime
    os.utime(upper / "etc", (1, 1))  # a dir's mtime alone is no change
    (upper / "gone").unlink()
    _file(upper / "new/deep/f")
    shutil.rmtree(upper / "tree")
    _file(upper / "tree", b"now a file")  # dir -> file: old children not listed
    (upper / "becomes_dir").unlink()
    _file(upper / "becomes_dir/child")  # file -> dir: children are A
    os.utime(upper / "keep", ns=(0, T * 10**9 + 5))  # same second, one side at 0 ns: equal
    assert _changes(lower, upper) == [
        ("C", "/becomes_dir"),
        ("A", "/becomes_dir/child"),
        ("C", "/etc"),
        ("C", "/etc/passwd"),
        ("D", "/gone"),
        ("A", "/new"),
        ("A", "/new/deep"),
        ("A", "/new/deep/f"),
        ("C", "/tree"),
    ]


def test_tree_changes_without_lower_adds_everything(shm_tmp: Path) -> None:
    _file(shm_tmp / "u/a/b")
    assert _changes(None, shm_tmp / "u") == [("A", "/a"), ("A", "/a/b")]


@pytest.mark.needs_root
def test_capability_xattr_counts_and_user_xattr_does_not(shm_tmp: Path) -> None:
    lower, upper = _pair(shm_tmp)
    # VFS_CAP_REVISION_2 with CAP_NET_BIND_SERVICE permitted.
    cap = (0x02000000).to_bytes(4, "little") + (1 << 10).to_bytes(4, "little") + bytes(12)
    os.setxattr(upper / "keep", "security.capability", cap)
    os.setxattr(upper / "etc/group", "user.note", b"x")
    assert _changes(lower, upper) == [("C", "/keep")]


def _members(data: bytes) -> list[tuple[str, bytes, int]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return [(m.name, m.type, m.mode) for m in t]


def test_tree_diff_order_whiteouts_links_and_xattrs(shm_tmp: Path) -> None:
    lower, upper = _pair(shm_tmp)
    (upper / "gone").unlink()
    (upper / "etc/group").unlink()
    os.link(upper / "keep", upper / "etc/keep2")  # new link to an unchanged file
    os.setxattr(upper / "tree/a/b", "user.note", b"v")  # xattr-only change
    out = io.BytesIO()
    rows = write_tree_diff(lower, upper, out)
    names = [(m[0], m[1]) for m in _members(out.getvalue())]
    assert names == [
        (".wh.gone", tarfile.REGTYPE),
        ("etc", tarfile.DIRTYPE),
        ("etc/.wh.group", tarfile.REGTYPE),  # whiteouts before their siblings
        ("etc/keep2", tarfile.REGTYPE),  # first path of the inode in walk order
        ("keep", tarfile.LNKTYPE),
        ("tree", tarfile.DIRTYPE),
        ("tree/a", tarfile.DIRTYPE),
        ("tree/a/b", tarfile.REGTYPE),
    ]
    assert [r.entry.kind for r in rows][:3] == [
        EntryKind.WHITEOUT,
        EntryKind.DIR,
        EntryKind.WHITEOUT,
    ]
    assert rows[4].entry.linkname == "etc/keep2" and rows[4].sha256 == rows[3].sha256
    again = io.BytesIO()
    write_tree_diff(lower, upper, again)
    assert again.getvalue() == out.getvalue()


def test_tree_diff_of_identical_trees_is_empty(shm_tmp: Path) -> None:
    lower, upper = _pair(shm_tmp)
    out = io.BytesIO()
    assert write_tree_diff(lower, upper, out) == []
    assert out.getvalue() == bytes(1024)


def test_diff_rows_go_out_as_the_tar_is_written(shm_tmp: Path) -> None:
    # commit and build steps write a layer's diff and ingest it, which derives the index from
    # the tar again: the writer holds no rows (a commit of many files paid ~340 B each), it
    # hands each to the sink, if there is one, right after its member.
    upper = shm_tmp / "upper"
    for i in range(5):
        _file(upper / f"d/f{i}", b"x" * 600)
    out = io.BytesIO()
    seen: list[tuple[str, int]] = []
    changes.write_tree_diff(
        None, upper, out, rows=lambda rows: seen.extend((r.entry.path, out.tell()) for r in rows)
    )
    assert [path for path, _ in seen] == ["d", *(f"d/f{i}" for i in range(5))]
    ends = [end for _, end in seen]
    assert ends == sorted(ends) and len(set(ends)) == 6 and ends[-1] < len(out.getvalue())
    assert changes.write_tree_diff(None, upper, io.BytesIO()) is None


# -- overlay upper dirs (built by hand, as the kernel leaves them) ----------------------------


def _whiteout(p: Path) -> None:
    os.mknod(p, 0o020000 | 0o600, os.makedev(0, 0))


@pytest.mark.needs_root
def test_write_upper_dir_converts_overlay_markers(shm_tmp: Path) -> None:
    upper = shm_tmp / "upper"
    _file(upper / "dir/new")
    _whiteout(upper / "dir/old")
    os.link(upper / "dir/old", upper / "dir/old2")  # the kernel shares one whiteout inode
    os.setxattr(upper / "dir", "trusted.overlay.opaque", b"y")
    (upper / "fresh").mkdir()
    os.setxattr(upper / "fresh", "trusted.overlay.opaque", b"y")  # made over a whiteout
    os.setxattr(upper / "dir/new", "trusted.overlay.origin", b"\x00junk")
    os.setxattr(upper / "dir/new", "trusted.overlay.overlay.x", b"image")
    os.setxattr(upper / "dir/new", "user.overlay.overlay.y", b"image")
    os.setxattr(upper / "dir/new", "user.plain", b"p")
    os.chown(upper / "dir/old", 1000, 1000)
    out = io.BytesIO()
    rows = write_upper_dir(upper, out, exists_below=lambda rel: rel == "dir")
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as t:
        got = [(m.name, m.type, oct(m.mode), m.uid, m.mtime) for m in t]
    assert got[0][0] == "dir" and got[0][1] == tarfile.DIRTYPE
    assert got[1] == ("dir/.wh..wh..opq", tarfile.REGTYPE, "0o755", 0, 0)
    assert got[2][:4] == ("dir/.wh.old", tarfile.REGTYPE, "0o600", 1000)
    assert got[3][:4] == ("dir/.wh.old2", tarfile.REGTYPE, "0o600", 1000)
    assert got[4][0] == "dir/new"
    assert [g[0] for g in got[5:]] == ["fresh"]  # no opaque marker: nothing below it
    new = next(r.entry for r in rows if r.entry.path == "dir/new")
    assert dict(new.xattrs) == {
        "trusted.overlay.x": b"image",
        "user.overlay.y": b"image",
        "user.plain": b"p",
    }
    assert all("opaque" not in k for r in rows for k in r.entry.xattrs)


@pytest.mark.needs_root
@pytest.mark.parametrize("xattr", ["trusted.overlay.redirect", "trusted.overlay.metacopy"])
def test_write_upper_dir_refuses_redirect_and_metacopy(shm_tmp: Path, xattr: str) -> None:
    _file(shm_tmp / "upper/d/f")
    os.setxattr(shm_tmp / "upper/d", xattr, b"/elsewhere")
    with pytest.raises(DriverError):
        write_upper_dir(shm_tmp / "upper", io.BytesIO(), exists_below=lambda _rel: True)


@pytest.mark.needs_root
def test_upper_changes(shm_tmp: Path) -> None:
    lower = shm_tmp / "lower"
    _file(lower / "etc/passwd")
    _file(lower / "etc/group")
    _file(lower / "opq/one")
    _file(lower / "opq/two")
    _file(lower / "same/x")
    upper = shm_tmp / "upper"
    _file(upper / "etc/passwd", b"changed")
    _whiteout(upper / "etc/group")
    _file(upper / "added/f")
    _file(upper / "opq/two")
    os.setxattr(upper / "opq", "trusted.overlay.opaque", b"y")
    (upper / "same").mkdir()  # copied up, nothing changed below it
    os.chmod(upper / "same", 0o755)
    os.chmod(lower / "same", 0o755)

    def below(rel: str) -> os.stat_result | None:
        try:
            return os.lstat(lower / rel)
        except (FileNotFoundError, NotADirectoryError):
            return None

    got = upper_changes(upper, lookup_below=below, list_below=lambda rel: os.listdir(lower / rel))
    assert got == [
        Change("/added", A),
        Change("/added/f", A),
        Change("/etc", C),
        Change("/etc/group", D),
        Change("/etc/passwd", C),
        Change("/opq", C),
        Change("/opq/one", D),
        Change("/opq/two", C),
    ]
    without_listing = upper_changes(upper, lookup_below=below)
    assert Change("/opq/one", D) not in without_listing


def test_driver_base_reexports_the_same_types() -> None:
    from lamina.driver import base

    assert base.Change is Change
    assert base.ChangeKind is ChangeKind


def _deep(top: Path, depth: int) -> None:
    """``d/d/d/...`` ``depth`` levels below ``top`` (a path far longer than PATH_MAX), a file at
    the bottom and a whiteout half way down: what ``mkdir d; cd d`` in a loop makes."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(depth):
            os.mkdir("d", dir_fd=fd)
            if level == depth // 2:
                os.mknod("gone", 0o600 | stat.S_IFCHR, os.makedev(0, 0), dir_fd=fd)
            nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        os.close(os.open("bottom", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


@pytest.mark.needs_root  # the 0:0 char device
def test_trees_thousands_of_levels_deep(shm_tmp: Path) -> None:
    """A container can nest dirs far deeper than Python's recursion limit: every walk here was
    recursive (RecursionError, exit 70, from diff, export and commit past ~1,000 levels) and
    held one fd per level. Each now lists the whole tree with a handful of fds."""
    import resource

    depth = 3000
    lower, upper = shm_tmp / "lower", shm_tmp / "upper"
    lower.mkdir()
    upper.mkdir()
    _deep(upper, depth)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))  # below the depth
    try:
        added = tree_changes(lower, upper)
        native = upper_changes(upper, lookup_below=lambda _p: None)
        naive_tar, native_tar = io.BytesIO(), io.BytesIO()
        naive_rows = write_tree_diff(lower, upper, naive_tar)
        native_rows = write_upper_dir(upper, native_tar, exists_below=lambda _p: False)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    bottom = "/d" * depth + "/bottom"
    gone = "/d" * (depth // 2) + "/gone"
    assert len(added) == depth + 2  # every dir, the file, and the device (a file to vfs)
    assert Change(bottom, A) in added
    assert Change(gone, A) in added
    assert len(native) == depth + 2
    assert Change(gone, D) in native  # overlay's whiteout
    assert Change(bottom, A) in native
    assert len(naive_rows) == len(native_rows) == depth + 2
    with tarfile.open(fileobj=io.BytesIO(native_tar.getvalue())) as tf:
        names = tf.getnames()
    assert names[-1] == bottom[1:]
    assert gone.replace("/gone", "/.wh.gone")[1:] in names
    # Go's walk order: a dir's whiteouts come before its other children.
    assert names.index(gone.replace("/gone", "/.wh.gone")[1:]) < names.index(
        "d/" * (depth // 2) + "d"
    )
