"""Choosing a driver: the one table of drivers, their user-facing names, and the overlay probe.

``open_driver(None, root=...)`` prefers ``overlay2`` and falls back to ``vfs`` where overlayfs
cannot mount (not root, a filesystem overlay cannot use as upper, no overlay module); a store
that already holds vfs layers and no overlay ones stays on vfs. Naming a driver never falls back:
``open_driver("overlay2", ...)`` on a host that cannot mount raises ``DriverError``.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from msgspec import Struct

from lamina.atomic import remove_tree
from lamina.driver.base import Driver
from lamina.driver.overlay import OverlayDriver
from lamina.driver.vfs import VfsDriver
from lamina.errors import DriverError, LaminaError, UsageError

DRIVERS: dict[str, type[OverlayDriver] | type[VfsDriver]] = {
    "overlay": OverlayDriver,
    "vfs": VfsDriver,
}
# User-facing names (what GraphDriver.Name shows) -> DRIVERS key and home dir under the root.
NAMES: dict[str, str] = {"overlay2": "overlay", "overlay": "overlay", "vfs": "vfs"}
OVERLAY_PARAMS = Path("/sys/module/overlay/parameters")


class OverlayProbe(Struct, frozen=True, kw_only=True):
    mountable: bool  # a read-write overlay mounted, took a write and unmounted in the home
    new_api: bool  # fsopen/fsconfig with "lowerdir+" (Linux >= 6.8); else legacy mount(2)
    # The module defaults leave native diff (tarring diff/) correct: redirect_dir and metacopy
    # off. lamina passes both off on every mount anyway, so this only matters for mounts others
    # make of lamina's layers.
    native_diff_default_safe: bool
    reason: str = ""  # why not mountable


def _module_param(name: str) -> str:
    try:
        return (OVERLAY_PARAMS / name).read_text().strip()
    except OSError:
        return ""


@functools.cache
def probe_overlay(home: Path) -> OverlayProbe:
    """Can overlay mount here? Cached per process and home (costs about a millisecond)."""

    from lamina.driver import mountapi  # ctypes: see OverlayDriver._mount

    new_api = mountapi.lowerdir_plus_supported()
    safe = _module_param("redirect_dir") in ("", "N") and _module_param("metacopy") in ("", "N")

    def result(ok: bool, reason: str = "") -> OverlayProbe:
        return OverlayProbe(
            mountable=ok, new_api=new_api, native_diff_default_safe=safe, reason=reason
        )

    if os.geteuid() != 0:
        return result(False, "overlay mounts need root (rootless is not supported yet)")
    scratch = home.parent / f".{home.name}-probe-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        driver = OverlayDriver(home=scratch)
        driver.create("base", parent=None)
        driver.create("rw", parent="base", writable=True)
        merged = driver.mount("rw")
        try:
            (merged / "probe").write_bytes(b"ok")
            if (driver.apply_dir("rw") / "probe").read_bytes() != b"ok":
                return result(False, "a write through the overlay did not reach its upper dir")
        finally:
            driver.unmount("rw")
        return result(True)
    except (OSError, LaminaError) as exc:
        return result(False, str(exc))
    finally:
        remove_tree(scratch, ignore_errors=True)


def _has_layers(home: Path) -> bool:
    try:
        return any(
            not e.name.startswith(".") and e.name not in ("l", "empty") for e in os.scandir(home)
        )
    except OSError:
        return False


def open_driver(name: str | None, *, root: Path, recorded: bool = False) -> Driver:
    """The driver for the store at ``root``: ``name`` is ``overlay2`` (``overlay``), ``vfs``, or
    None to choose (see the module docstring). ``recorded``: the store already records ``name``
    as its driver, so overlay mounted here before and the write probe (a scratch mount, the
    largest part of opening a store) is skipped; a kernel that lost overlay since then fails
    at the first mount instead, as loudly."""
    if name is not None:
        key = NAMES.get(name)
        if key is None:
            raise UsageError(f"unknown storage driver {name!r}; choose overlay2 or vfs")
    elif _has_layers(root / "vfs") and not _has_layers(root / "overlay"):
        key = "vfs"
    else:
        key = "overlay" if probe_overlay(root / "overlay").mountable else "vfs"
    home = root / key
    if key == "overlay" and recorded and os.geteuid() == 0:
        return OverlayDriver(home=home)
    if key == "overlay":
        probe = probe_overlay(home)
        if not probe.mountable:
            exc = DriverError(f"the overlay2 driver cannot mount here: {probe.reason}")
            exc.hint = "use --storage-driver vfs"
            raise exc
        return OverlayDriver(home=home, legacy_mount=not probe.new_api)
    return VfsDriver(home=home)
