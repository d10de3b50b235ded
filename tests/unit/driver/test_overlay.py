from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from lamina.driver import mountinfo
from lamina.driver.base import MountRefs
from lamina.driver.overlay import SHORT_ID_LEN, OverlayDriver, lookup_in_layers
from lamina.errors import DriverError, MountError

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_overlay]


@pytest.fixture
def home(shm_tmp: Path) -> Iterator[Path]:
    yield shm_tmp / "overlay"
    assert not mountinfo.mounts_under(shm_tmp), "test leaked mounts"


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.lstat().st_mode)


def test_layout_is_dockers_overlay2(home: Path) -> None:
    d = OverlayDriver(home=home)
    d.create("base", parent=None)
    d.create("mid", parent="base")
    d.create("top", parent="mid")
    assert _mode(home) == 0o710
    assert _mode(home / "l") == 0o700
    base, top = home / "base", home / "top"
    assert _mode(base) == 0o710
    assert _mode(base / "diff") == 0o755
    assert not (base / "lower").exists()
    assert not (base / "work").exists()
    assert _mode(top / "work") == 0o700
    shorts = {n: (home / n / "link").read_text() for n in ("base", "mid", "top")}
    assert all(len(s) == SHORT_ID_LEN and s.isalnum() and s.isupper() for s in shorts.values())
    for name, short in shorts.items():
        assert os.readlink(home / "l" / short) == f"../{name}/diff"
    assert (top / "lower").read_text() == f"l/{shorts['mid']}:l/{shorts['base']}"
    meta = d.metadata("top")
    assert meta["LowerDir"] == f"{home}/mid/diff:{home}/base/diff"
    assert meta["UpperDir"] == f"{top}/diff"
    assert meta["WorkDir"] == f"{top}/work"
    assert meta["MergedDir"] == f"{top}/merged"
    assert set(d.metadata("base")) == {"MergedDir", "UpperDir"}


def test_remove_deletes_the_short_link(home: Path) -> None:
    d = OverlayDriver(home=home)
    d.create("base", parent=None)
    short = (home / "base" / "link").read_text()
    d.remove("base")
    assert not os.path.lexists(home / "l" / short)
    assert sorted(os.listdir(home)) == ["empty", "l"]


def test_invalid_and_reserved_ids_are_refused(home: Path) -> None:
    d = OverlayDriver(home=home)
    for bad in ("../x", "l", "empty", ".hidden", "a/b", ""):
        with pytest.raises(DriverError):
            d.create(bad, parent=None)


def test_single_layer_and_writable_base_mount(home: Path) -> None:
    d = OverlayDriver(home=home)
    (d.create("img", parent=None) / "f").write_text("f")
    merged = d.mount("img")
    try:
        m = mountinfo.find_mount(merged)
        assert m is not None
        assert m.read_only
        assert m.lowerdirs() == [str(home / "img" / "diff"), str(home / "empty")]
    finally:
        d.unmount("img")
    d.create("scratch", parent=None, writable=True)
    merged = d.mount("scratch")
    try:
        (merged / "w").write_text("w")
    finally:
        d.unmount("scratch")
    assert (home / "scratch" / "diff" / "w").read_text() == "w"
    assert os.listdir(home / "empty") == []


def test_empty_lower_must_stay_empty(home: Path) -> None:
    d = OverlayDriver(home=home)
    d.create("img", parent=None)
    os.chmod(home / "empty", 0o700)
    (home / "empty" / "intruder").write_text("x")
    with pytest.raises(MountError):
        d.mount("img")
    assert d.mount_count("img") == 0


def test_stale_count_is_reset_and_uncounted_mount_adopted(home: Path) -> None:
    d = OverlayDriver(home=home)
    d.create("img", parent=None)
    with MountRefs(home / "img" / "mountcount").locked() as refs:
        refs.count = 5  # a crashed process's references; nothing is mounted
    assert d.mount_count("img") == 0
    d.mount("img")
    assert d.mount_count("img") == 1
    with MountRefs(home / "img" / "mountcount").locked() as refs:
        refs.count = 0  # crashed between mounting and counting
    assert d.mount_count("img") == 1
    d.mount("img")
    assert d.mount_count("img") == 1  # adopted, not mounted twice
    d.unmount("img")
    assert not mountinfo.is_mounted(home / "img" / "merged")


def _chain(d: OverlayDriver, n: int) -> str:
    (d.create("c0", parent=None) / "bottom").write_text("b")
    for i in range(1, n):
        d.create(f"c{i}", parent=f"c{i - 1}")
    return f"c{n - 1}"


def test_legacy_mount_uses_short_links_when_paths_do_not_fit(home: Path) -> None:
    d = OverlayDriver(home=home, legacy_mount=True)
    top = _chain(d, 120)  # ~120 * 75 bytes of absolute paths > one page; l/ links fit
    merged = d.mount(top)
    try:
        assert (merged / "bottom").read_text() == "b"
        m = mountinfo.find_mount(merged)
        assert m is not None
        assert len(m.lowerdirs()) == 120
        assert m.lowerdirs()[1].startswith("l/")
    finally:
        d.unmount(top)


def test_legacy_mount_refuses_rather_than_truncating(home: Path) -> None:
    d = OverlayDriver(home=home, legacy_mount=True)
    top = _chain(d, 200)
    with pytest.raises(MountError):
        d.mount(top)
    assert not mountinfo.is_mounted(home / top / "merged")
    assert d.mount_count(top) == 0


def test_lookup_in_layers_follows_overlay_rules(shm_tmp: Path) -> None:
    upper, lower = shm_tmp / "u", shm_tmp / "l"
    for p in (upper / "opq", upper / "d", lower / "opq", lower / "d", lower / "d" / "sub"):
        p.mkdir(parents=True)
    (lower / "opq" / "hidden").write_text("h")
    (lower / "d" / "kept").write_text("k")
    (lower / "gone").write_text("g")
    (lower / "d" / "sub" / "deep").write_text("x")
    (upper / "file").write_text("f")
    (lower / "file").mkdir()
    os.mknod(upper / "gone", stat.S_IFCHR | 0o600, 0)
    os.setxattr(upper / "opq", "trusted.overlay.opaque", b"y")
    layers = [upper, lower]
    assert lookup_in_layers(layers, "d/kept") is not None
    assert lookup_in_layers(layers, "d/sub/deep") is not None
    assert lookup_in_layers(layers, "opq/hidden") is None
    assert lookup_in_layers(layers, "gone") is None
    st = lookup_in_layers(layers, "file")
    assert st is not None
    assert stat.S_ISREG(st.st_mode)  # the upper file hides the lower dir
    assert lookup_in_layers(layers, "file/x") is None
    assert lookup_in_layers(layers, "missing") is None
    assert lookup_in_layers([], "d") is None
