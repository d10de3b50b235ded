from __future__ import annotations

from pathlib import Path

import pytest

from lamina.driver import select
from lamina.driver.overlay import OverlayDriver
from lamina.driver.select import DRIVERS, OverlayProbe, open_driver
from lamina.driver.vfs import VfsDriver
from lamina.errors import DriverError, UsageError

NO_OVERLAY = OverlayProbe(
    mountable=False, new_api=True, native_diff_default_safe=True, reason="test says no"
)


def test_drivers_table() -> None:
    assert {"overlay": OverlayDriver, "vfs": VfsDriver} == DRIVERS


def test_names(shm_tmp: Path) -> None:
    assert open_driver("vfs", root=shm_tmp).name == "vfs"
    with pytest.raises(UsageError):
        open_driver("aufs", root=shm_tmp)


def test_falls_back_to_vfs_only_when_not_named(
    shm_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(select, "probe_overlay", lambda home: NO_OVERLAY)
    assert isinstance(open_driver(None, root=shm_tmp), VfsDriver)
    for name in ("overlay2", "overlay"):
        with pytest.raises(DriverError):
            open_driver(name, root=shm_tmp)


def test_existing_vfs_store_stays_vfs(shm_tmp: Path) -> None:
    VfsDriver(home=shm_tmp / "vfs").create("layer", parent=None)
    assert isinstance(open_driver(None, root=shm_tmp), VfsDriver)


@pytest.mark.needs_root
@pytest.mark.needs_overlay
def test_probe_and_default_is_overlay2(shm_tmp: Path) -> None:
    probe = select.probe_overlay(shm_tmp / "overlay")
    assert probe.mountable, probe.reason
    driver = open_driver(None, root=shm_tmp)
    assert driver.name == "overlay2"
    assert isinstance(driver, OverlayDriver)
    assert driver.legacy_mount is not probe.new_api
    assert sorted(p.name for p in shm_tmp.iterdir()) == ["overlay"]  # the probe cleaned up
