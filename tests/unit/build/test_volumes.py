"""A RUN step's VOLUME paths (build/volumes.py): which diff entries a step keeps, and how the
paths resolve in a rootfs (symlinks in-root, missing ones made as mount points)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lamina.archive.entry import Entry, EntryKind
from lamina.build.volumes import Discard, mount_points
from lamina.errors import BuildError

DISCARD = Discard(paths=("vol", "made/here"), made=frozenset({"made/here"}))


@pytest.mark.parametrize(
    ("path", "kind", "kept"),
    [
        ("vol", EntryKind.DIR, False),  # the existing mount point's own metadata: the volume's
        ("vol/after", EntryKind.FILE, False),
        ("vol/before", EntryKind.WHITEOUT, False),  # a deletion inside the volume
        ("vol", EntryKind.OPAQUE, False),
        ("vol", EntryKind.WHITEOUT, False),  # rm -rf of the mount point itself
        ("volume", EntryKind.FILE, True),  # a sibling sharing the prefix
        ("kept", EntryKind.FILE, True),
        ("made", EntryKind.DIR, True),  # a parent the runtime made for the mount point
        ("made/here", EntryKind.DIR, True),  # a mount point the step made stays (empty)
        ("made/here/x", EntryKind.FILE, False),
    ],
)
def test_a_step_keeps_nothing_at_or_below_a_volume(path: str, kind: EntryKind, kept: bool) -> None:
    assert DISCARD.keeps(Entry(path=path, kind=kind)) is kept


@pytest.mark.parametrize(
    ("path", "linkname"), [("b", "vol/a"), ("vol/a", "b")], ids=["out->in", "in->out"]
)
def test_a_hardlink_across_a_volumes_edge_fails_the_step(path: str, linkname: str) -> None:
    link = Entry(path=path, kind=EntryKind.HARDLINK, linkname=linkname)
    with pytest.raises(BuildError, match=r"/b is a hard link to /vol/a, inside a VOLUME"):
        DISCARD.keeps(link)


def test_hardlinks_on_one_side_of_the_edge_follow_it() -> None:
    assert DISCARD.keeps(Entry(path="vol/b", kind=EntryKind.HARDLINK, linkname="vol/a")) is False
    assert DISCARD.keeps(Entry(path="c", kind=EntryKind.HARDLINK, linkname="b")) is True


def test_no_volumes_keep_everything() -> None:
    assert not Discard()
    assert Discard().keeps(Entry(path="vol/x", kind=EntryKind.FILE))


def test_mount_points_resolve_in_root_and_make_the_missing(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "data").mkdir(parents=True)
    (root / "srv").symlink_to("/data")  # absolute: resolves inside the rootfs
    (root / "file").write_text("x")
    d = mount_points(root, ["/data", "/srv/sub", "/new/deep"])
    assert d.paths == ("data", "data/sub", "new/deep")
    assert d.made == frozenset({"data/sub", "new/deep"})
    assert (root / "new" / "deep").is_dir() and (root / "data" / "sub").is_dir()
    assert oct((root / "new" / "deep").stat().st_mode & 0o7777) == "0o755"
    assert not os.path.exists("/data/sub")  # never on the host
    with pytest.raises(BuildError, match=r"VOLUME /file: .* not a directory"):
        mount_points(root, ["/file"])
