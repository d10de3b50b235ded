"""vfs child layers are full copies: ownership, setuid and file capabilities survive the copy
(chown clears both setuid bits and ``security.capability``, so the order matters)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lamina.driver.vfs import copy_tree

# A VFS_CAP_REVISION_2 capability blob granting cap_net_raw (as setcap writes it).
CAP = bytes.fromhex("0100000200200000000000000000000000000000")


@pytest.mark.needs_root
def test_copy_keeps_owner_setuid_and_capability(shm_tmp: Path) -> None:
    src = shm_tmp / "src"
    (src / "bin").mkdir(parents=True)
    tool = src / "bin" / "tool"
    tool.write_bytes(b"\x7fELF")
    os.chown(tool, 1000, 1000)
    os.chmod(tool, 0o4755)
    os.setxattr(tool, "security.capability", CAP)
    copy_tree(src, shm_tmp / "dst")
    copied = shm_tmp / "dst" / "bin" / "tool"
    st = copied.stat()
    assert (st.st_uid, st.st_gid) == (1000, 1000)
    assert stat.S_IMODE(st.st_mode) == 0o4755
    assert os.getxattr(copied, "security.capability") == CAP
