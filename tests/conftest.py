"""Shared fixtures and the skip policy.

Markers ``needs_root``, ``needs_overlay`` and ``needs_peer("podman")`` skip a test where the host
cannot run it; with ``LAMINA_REQUIRE_ALL=1`` (set by ``.ci/run``) such a skip is a failure.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lamina.atomic import remove_tree

REQUIRE_ALL = os.environ.get("LAMINA_REQUIRE_ALL") == "1"
SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = SHARED / "fixtures"


def _skip_or_fail(reason: str) -> None:
    if REQUIRE_ALL:
        pytest.fail(f"LAMINA_REQUIRE_ALL=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@functools.cache
def overlay_available() -> bool:
    if os.geteuid() != 0:
        return False
    base = Path(tempfile.mkdtemp(prefix="lamina-ovl-probe-", dir="/dev/shm"))
    try:
        for d in ("l1", "l2", "m"):
            (base / d).mkdir()
        r = subprocess.run(
            [
                "mount",
                "-t",
                "overlay",
                "overlay",
                "-o",
                f"lowerdir={base}/l1:{base}/l2",
                str(base / "m"),
            ],
            capture_output=True,
            check=False,
        )
        if r.returncode != 0:
            return False
        subprocess.run(["umount", str(base / "m")], check=False)
        return True
    finally:
        shutil.rmtree(base, ignore_errors=True)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("needs_root") and os.geteuid() != 0:
        _skip_or_fail("test needs root")
    if item.get_closest_marker("needs_overlay") and not overlay_available():
        _skip_or_fail("kernel overlayfs is not available")
    for m in item.iter_markers("needs_peer"):
        for name in m.args:
            if shutil.which(name) is None:
                _skip_or_fail(f"peer tool {name!r} is not installed")


@pytest.fixture
def shm_tmp() -> Iterator[Path]:
    """A temp dir on tmpfs (the root ext4 here has no journal and is slow after deletes)."""
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    d = Path(tempfile.mkdtemp(prefix="lamina-test-", dir=base))
    try:
        yield d
    finally:
        # A test that failed mid-way may leave mounts below; never rmtree through a mount.
        for target in sorted(_mounts_under(d), key=len, reverse=True):
            subprocess.run(["umount", "-l", target], capture_output=True, check=False)
        remove_tree(d, ignore_errors=True)  # tests may leave trees thousands of levels deep


def _mounts_under(d: Path) -> list[str]:
    prefix = str(d) + "/"
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        return [t for t in (line.split()[4] for line in f) if t.startswith(prefix)]
