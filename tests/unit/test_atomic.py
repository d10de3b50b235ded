"""Crash-safe writes: what the system refuses is a FileError naming the file, and nothing
is left behind."""

from __future__ import annotations

import errno
import os
import resource
import subprocess
from pathlib import Path

import pytest

from lamina.atomic import remove_tree, write_atomic
from lamina.errors import FileError


def test_writes_replace_atomically(tmp_path: Path) -> None:
    target = tmp_path / "f"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("missing/f", "No such file or directory"),
        ("n" * 300, "File name too long"),
        ("d", "Is a directory"),  # a dir in the way: the rename fails, the temp goes
        ("", "not a file name"),
    ],
)
def test_what_the_system_refuses_is_a_file_error(tmp_path: Path, name: str, reason: str) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "inside").write_text("x")
    with pytest.raises(FileError, match=reason):
        write_atomic(tmp_path / name if name else Path(""), b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def _nest(top: Path, depth: int) -> None:
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(depth):
            os.mkdir("d", dir_fd=fd)
            os.close(os.open(f"f{level % 3}", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
            nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
    finally:
        os.close(fd)


def test_remove_tree_of_any_depth(shm_tmp: Path) -> None:
    """shutil.rmtree (3.11) recursed per level: a container's 3,000-deep tree made ``rm`` and
    then every Store.open's recovery raise RecursionError (exit 70), leaving the store unusable.
    remove_tree holds one dir fd whatever the depth."""
    top = shm_tmp / "t"
    top.mkdir()
    _nest(top, 3000)
    (top / "wide").mkdir()
    for i in range(50):
        (top / "wide" / f"s{i}").mkdir()
    os.symlink(shm_tmp / "outside", top / "link")  # removed, never followed
    (shm_tmp / "outside").mkdir()
    (shm_tmp / "outside" / "keep").write_bytes(b"k")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(64, hard), hard))
    try:
        remove_tree(top)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert not top.exists()
    assert (shm_tmp / "outside" / "keep").read_bytes() == b"k"
    remove_tree(top)  # missing: fine
    (shm_tmp / "file").write_bytes(b"x")
    remove_tree(shm_tmp / "file")
    assert not (shm_tmp / "file").exists()


@pytest.mark.needs_root
def test_remove_tree_errors(shm_tmp: Path) -> None:
    """A dir that cannot go (a mount point: EBUSY, even for root) is raised, or with
    ignore_errors left behind while everything else goes."""
    top = shm_tmp / "t"
    (top / "a" / "busy").mkdir(parents=True)
    (top / "b" / "c").mkdir(parents=True)
    (top / "b" / "c" / "f").write_bytes(b"x")
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(top / "a" / "busy")], check=True)
    try:
        with pytest.raises(OSError, match="busy") as info:
            remove_tree(top)
        assert info.value.errno == errno.EBUSY
        (top / "b" / "c").mkdir(parents=True, exist_ok=True)
        remove_tree(top, ignore_errors=True)
        assert (top / "a" / "busy").is_dir()
        assert not (top / "b").exists()
    finally:
        subprocess.run(["umount", str(top / "a" / "busy")], check=True)
    remove_tree(top)
    assert not top.exists()
