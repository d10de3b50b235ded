from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lamina.driver.vfs import VfsDriver, copy_tree
from lamina.testing.conformance import snapshot


@pytest.mark.needs_root
def test_copy_tree_is_cp_a(shm_tmp: Path) -> None:
    src = shm_tmp / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f").write_bytes(b"data" * 1000)
    os.link(src / "d" / "f", src / "hard")
    os.symlink("/abs/target", src / "sym")
    os.mkfifo(src / "fifo")
    os.mknod(src / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(src / "wh", stat.S_IFCHR | 0o600, 0)
    (src / "suid").write_bytes(b"#!")
    os.chown(src / "suid", 1000, 1000)
    os.chmod(src / "suid", 0o4755)
    os.lchown(src / "sym", 7, 8)
    os.setxattr(src / "d" / "f", "user.note", b"n")
    os.setxattr(src / "d", "trusted.overlay.overlay.opaque", b"y")
    os.chmod(src / "d", 0o750)
    os.utime(src / "d", ns=(1, 1_500_000_000_123_456_789))
    copy_tree(src, shm_tmp / "dst")
    dst = shm_tmp / "dst"
    assert snapshot(dst) == snapshot(src)
    assert os.stat(dst / "hard").st_ino == os.stat(dst / "d" / "f").st_ino
    assert os.stat(dst / "hard").st_ino != os.stat(src / "hard").st_ino
    assert os.getxattr(dst / "d" / "f", "user.note") == b"n"
    assert os.getxattr(dst / "d", "trusted.overlay.overlay.opaque") == b"y"
    assert os.stat(dst / "d").st_mtime_ns == 1_500_000_000_123_456_789
    assert os.lstat(dst / "sym").st_uid == 7


def test_layout_and_metadata(shm_tmp: Path) -> None:
    d = VfsDriver(home=shm_tmp / "vfs")
    (d.create("base", parent=None) / "f").write_text("f")
    child = d.create("child", parent="base")
    assert (child / "f").read_text() == "f"
    assert (shm_tmp / "vfs" / "child" / "parent").read_text() == "base"
    assert stat.S_IMODE((shm_tmp / "vfs").stat().st_mode) == 0o710
    assert d.metadata("child") == {"MergedDir": str(child)}
    assert d.mount("child") == child
    d.unmount("child")
