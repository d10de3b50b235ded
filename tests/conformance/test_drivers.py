"""The shipped driver conformance suite (lamina.testing.conformance) over every driver."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lamina.driver.base import Driver
from lamina.driver.mountinfo import mounts_under
from lamina.driver.overlay import OverlayDriver
from lamina.driver.vfs import VfsDriver
from lamina.testing.conformance import DRIVER_CHECKS, OVERLAY_CHECKS

OVERLAY_MARKS = [pytest.mark.needs_root, pytest.mark.needs_overlay]
FACTORIES: dict[str, Callable[[Path], Driver]] = {
    "overlay": lambda root: OverlayDriver(home=root / "overlay"),
    "overlay-legacy": lambda root: OverlayDriver(home=root / "overlay", legacy_mount=True),
    "vfs": lambda root: VfsDriver(home=root / "vfs"),
}


def _make(kind: str, root: Path) -> Iterator[Driver]:
    yield FACTORIES[kind](root)
    leaked = [m.target for m in mounts_under(root)]
    assert not leaked, f"the test left mounts behind: {leaked}"


@pytest.fixture(
    params=[
        pytest.param("overlay", marks=OVERLAY_MARKS),
        pytest.param("overlay-legacy", marks=OVERLAY_MARKS),
        "vfs",
    ]
)
def driver(request: pytest.FixtureRequest, shm_tmp: Path) -> Iterator[Driver]:
    yield from _make(request.param, shm_tmp)


@pytest.fixture(
    params=[pytest.param(k, marks=OVERLAY_MARKS) for k in ("overlay", "overlay-legacy")]
)
def overlay_driver(request: pytest.FixtureRequest, shm_tmp: Path) -> Iterator[Driver]:
    yield from _make(request.param, shm_tmp)


@pytest.mark.parametrize("check", DRIVER_CHECKS.values(), ids=list(DRIVER_CHECKS))
def test_driver(check: Callable[[Driver], None], driver: Driver) -> None:
    check(driver)


@pytest.mark.parametrize(
    "check",
    [c for name, c in OVERLAY_CHECKS.items() if name != "overlay_deep_stacks"],
    ids=[n for n in OVERLAY_CHECKS if n != "overlay_deep_stacks"],
)
def test_overlay(check: Callable[[Driver], None], overlay_driver: Driver) -> None:
    check(overlay_driver)


@pytest.mark.needs_root
@pytest.mark.needs_overlay
def test_overlay_deep_stacks(shm_tmp: Path) -> None:
    # new mount API only: legacy mount(2) cannot carry 500 lowers in one page
    # (tests/unit/driver/test_overlay.py checks that it refuses instead of truncating)
    for d in _make("overlay", shm_tmp):
        OVERLAY_CHECKS["overlay_deep_stacks"](d)
