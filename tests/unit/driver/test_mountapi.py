from __future__ import annotations

import errno
from pathlib import Path

import pytest

from lamina.driver import mountapi
from lamina.driver.mountinfo import is_mounted


def test_legacy_mount_refuses_options_past_one_page(tmp_path: Path) -> None:
    # Never reaches the kernel: a page of options would be cut off silently.
    options = "lowerdir=" + ":".join(f"/l/{i:04}" for i in range(mountapi.PAGE_SIZE // 7))
    with pytest.raises(OSError, match="truncated") as info:
        mountapi.legacy_mount("overlay", str(tmp_path), "overlay", options=options, read_only=True)
    assert info.value.errno == errno.E2BIG
    assert not is_mounted(tmp_path)


@pytest.mark.needs_root
@pytest.mark.needs_overlay
def test_new_api_mount_and_umount(shm_tmp: Path) -> None:
    for d in ("a", "b", "m"):
        (shm_tmp / d).mkdir()
    (shm_tmp / "b" / "f").write_text("f")
    mountapi.mount_new_api(
        "overlay",
        str(shm_tmp / "m"),
        strings=[("lowerdir+", str(shm_tmp / "a")), ("lowerdir+", str(shm_tmp / "b"))],
        read_only=True,
    )
    try:
        assert (shm_tmp / "m" / "f").read_text() == "f"
    finally:
        mountapi.umount(str(shm_tmp / "m"))
    assert not is_mounted(shm_tmp / "m")


@pytest.mark.needs_root
@pytest.mark.needs_overlay
def test_new_api_errors_carry_errno(shm_tmp: Path) -> None:
    (shm_tmp / "m").mkdir()
    with pytest.raises(FileNotFoundError):
        mountapi.mount_new_api(
            "overlay",
            str(shm_tmp / "m"),
            strings=[("lowerdir+", str(shm_tmp / "missing"))],
            read_only=True,
        )
    with pytest.raises(OSError, match="umount"):
        mountapi.umount(str(shm_tmp / "m"))
