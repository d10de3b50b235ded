"""A private mount namespace: what is bound there is seen there only, and goes with the call.

The host's view is the process's own mount table (``/proc/self/mountinfo`` is the main
thread's, whichever thread reads it); the private view is the worker thread's
(``/proc/thread-self/mountinfo``).
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest

from lamina.runtime.mountns import bind_in_root, run_in_private_namespace

pytestmark = [pytest.mark.needs_root]


def _mount_points(table: str) -> list[str]:
    with open(table, encoding="utf-8", errors="replace") as f:
        return [line.split()[4] for line in f]


def _ns() -> int:
    return os.stat("/proc/thread-self/ns/mnt").st_ino


@pytest.fixture
def tree(shm_tmp: Path) -> tuple[Path, Path]:
    root = shm_tmp / "rootfs"
    (root / "data").mkdir(parents=True)
    (root / "etc").mkdir()
    vol = shm_tmp / "vol"
    vol.mkdir()
    (vol / "f").write_text("in the volume\n")
    return root, vol


def test_seen_in_the_view_only_and_gone_after(tree: tuple[Path, Path]) -> None:
    root, vol = tree
    threads = threading.active_count()
    caller_ns = _ns()

    def look() -> tuple[list[str], list[str], str, int]:
        bind_in_root(root, vol, "/data", readonly=False)
        return (
            _mount_points("/proc/thread-self/mountinfo"),
            _mount_points("/proc/self/mountinfo"),
            (root / "data" / "f").read_text(),
            _ns(),
        )

    mine, host, text, view_ns = run_in_private_namespace(look)
    assert str(root / "data") in mine
    assert str(root / "data") not in host
    assert text == "in the volume\n"
    assert view_ns != caller_ns and _ns() == caller_ns
    assert str(root / "data") not in _mount_points("/proc/self/mountinfo")
    assert not (root / "data" / "f").exists()
    assert threading.active_count() == threads


def test_read_only_refuses_writes(tree: tuple[Path, Path]) -> None:
    root, vol = tree

    def write() -> int:
        bind_in_root(root, vol, "/data", readonly=True)
        try:
            (root / "data" / "new").write_text("x")
        except OSError as exc:
            return exc.errno or 0
        return 0

    assert run_in_private_namespace(write) == errno.EROFS
    assert sorted(os.listdir(vol)) == ["f"]


def test_the_destination_resolves_inside_the_root(tree: tuple[Path, Path], shm_tmp: Path) -> None:
    """A symlink on the way to the mount point stays in the root, however it points."""
    root, vol = tree
    os.symlink("../../../../../../etc", root / "up")
    os.symlink("/data", root / "abs")
    host_etc = sorted(os.listdir("/etc"))

    def look() -> tuple[list[str], list[str], list[str]]:
        bind_in_root(root, vol, "/up", readonly=False)
        bind_in_root(root, vol, "/abs", readonly=False)
        return (
            os.listdir(root / "etc"),
            os.listdir(root / "data"),
            sorted(os.listdir("/etc")),
        )

    in_etc, in_data, etc_seen = run_in_private_namespace(look)
    assert in_etc == ["f"] and in_data == ["f"]
    assert etc_seen == host_etc  # the host's /etc was never covered, not even in the view
    assert os.listdir(root / "etc") == []


def test_exceptions_come_back_as_they_are(tree: tuple[Path, Path]) -> None:
    root, vol = tree

    def fail() -> None:
        bind_in_root(root, vol, "/data", readonly=False)
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        run_in_private_namespace(fail)
    assert str(root / "data") not in _mount_points("/proc/self/mountinfo")

    def missing() -> None:
        bind_in_root(root, vol, "/nowhere", readonly=False)

    with pytest.raises(FileNotFoundError):
        run_in_private_namespace(missing)


def test_never_binds_in_the_callers_namespace(tree: tuple[Path, Path]) -> None:
    root, vol = tree
    with pytest.raises(RuntimeError, match="outside a private mount namespace"):
        bind_in_root(root, vol, "/data", readonly=False)
    # nor from another thread of a process that has a view open elsewhere
    seen: list[BaseException] = []

    def other() -> None:
        try:
            bind_in_root(root, vol, "/data", readonly=False)
        except RuntimeError as exc:
            seen.append(exc)

    def start_other() -> None:
        t = threading.Thread(target=other)
        t.start()
        t.join()

    run_in_private_namespace(start_other)
    assert len(seen) == 1
    assert str(root / "data") not in _mount_points("/proc/self/mountinfo")
