from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lamina.driver import mountinfo
from lamina.driver.mountinfo import find_mount, mount_of, mounts_under, parse_line
from lamina.errors import MountError

NEW_API = (
    "45 30 0:39 / /var/lib/lamina/overlay/abc/merged rw,nodev,relatime shared:1 - overlay overlay "
    "rw,lowerdir+=/x/b/diff,lowerdir+=/x/a/diff,upperdir=/x/abc/diff,workdir=/x/abc/work\n"
)
LEGACY = (
    "46 30 0:40 / /mnt/with\\040space ro,relatime - overlay overlay "
    "ro,lowerdir=l/AAA:l/BBB:/odd\\:name,redirect_dir=on\n"
)


def test_parse_new_api_line() -> None:
    m = parse_line(NEW_API)
    assert m.target == "/var/lib/lamina/overlay/abc/merged"
    assert m.fs_type == "overlay"
    assert m.source == "overlay"
    assert not m.read_only
    assert m.lowerdirs() == ["/x/b/diff", "/x/a/diff"]
    assert m.option_values("upperdir") == ["/x/abc/diff"]


def test_parse_legacy_line_unescapes() -> None:
    m = parse_line(LEGACY)
    assert m.target == "/mnt/with space"
    assert m.read_only
    assert m.lowerdirs() == ["l/AAA", "l/BBB", "/odd:name"]


def test_find_mount_takes_the_last_stacked() -> None:
    first = parse_line(NEW_API)
    second = parse_line(NEW_API.replace("45 30", "47 45"))
    assert find_mount(Path(first.target), [first, second]) is second
    assert find_mount(Path("/nowhere"), [first]) is None


def test_mounts_under_is_prefix_safe() -> None:
    m = parse_line(NEW_API)
    assert mounts_under(Path("/var/lib/lamina/overlay"), [m]) == [m]
    assert mounts_under(Path("/var/lib/lamina/over"), [m]) == []


def test_find_mount_matches_the_escaped_target(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "mountinfo"
    fake.write_text(NEW_API + LEGACY, encoding="latin-1")
    monkeypatch.setattr(mountinfo, "MOUNTINFO", fake)
    found = find_mount(Path("/mnt/with space"))
    assert found is not None and found.mount_id == 46
    assert find_mount(Path("/mnt/with\\040space")) is None
    assert find_mount(Path("/mnt/with")) is None


@pytest.mark.needs_root
def test_find_mount_sees_a_real_mount_with_odd_characters(shm_tmp: Path) -> None:
    target = shm_tmp / "a b\\c\td ü"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "none", str(target)], check=True)
    try:
        found = find_mount(target)
        assert found is not None and found.fs_type == "tmpfs"
        assert mountinfo.is_mounted(target)
    finally:
        subprocess.run(["umount", str(target)], check=True)
    assert not mountinfo.is_mounted(target)


def test_real_mountinfo_parses() -> None:
    assert any(m.target == "/" for m in mountinfo.read_mounts())


def test_verify_overlay_reports_a_wrong_stack(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    m = parse_line(NEW_API)
    fake = tmp_path / "mountinfo"
    fake.write_text(LEGACY + NEW_API, encoding="latin-1")
    monkeypatch.setattr(mountinfo, "MOUNTINFO", fake)
    target = Path(m.target)
    assert (
        mountinfo.verify_overlay(target, lowers=["/x/b/diff", "/x/a/diff"], upper="/x/abc/diff")
        == m
    )
    with pytest.raises(MountError):
        mountinfo.verify_overlay(target, lowers=["/x/b/diff"], upper="/x/abc/diff")
    with pytest.raises(MountError):
        mountinfo.verify_overlay(target, lowers=["/x/b/diff", "/x/a/diff"], upper=None)
    with pytest.raises(MountError):
        mountinfo.verify_overlay(Path("/elsewhere"), lowers=[], upper=None)


def test_optional_fields_and_the_mount_a_path_is_on() -> None:
    lines = [
        "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw",
        "25 27 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw",
        "30 25 0:27 / /dev/shm rw,relatime master:4 propagate_from:2 - tmpfs tmpfs rw",
        "31 27 0:28 / /dev/shmx rw - tmpfs tmpfs rw",
    ]
    mounts = [parse_line(line) for line in lines]
    assert mounts[0].propagation_tags == {"shared"}
    assert mounts[1].propagation_tags == frozenset()
    found = mount_of(Path("/dev/shm/a/b"), mounts)
    assert found is not None and found.mount_id == 30  # the top one of the two at /dev/shm
    assert found.propagation_tags == {"master", "propagate_from"}
    root = mount_of(Path("/dev/sh"), mounts)
    assert root is not None and root.target == "/"
