from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from lamina.driver.base import MountRefs, check_layer_id
from lamina.errors import DriverError


def _bump(path: str, times: int) -> None:
    for _ in range(times):
        with MountRefs(Path(path)).locked() as refs:
            refs.count += 1


def test_mount_refs_are_shared_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "mountcount"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_bump, args=(str(path), 50)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert MountRefs(path).peek() == 200


def test_count_from_another_boot_reads_zero(tmp_path: Path) -> None:
    path = tmp_path / "mountcount"
    path.write_text("4 not-this-boot\n")
    assert MountRefs(path).peek() == 0
    with MountRefs(path).locked() as refs:
        assert refs.count == 0
    assert MountRefs(tmp_path / "absent").peek() == 0


def test_missing_layer_dir_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), MountRefs(tmp_path / "gone" / "mountcount").locked():
        pass


@pytest.mark.parametrize("bad", ["", "..", "a/b", "-x", "x" * 200, "l"])
def test_check_layer_id(bad: str) -> None:
    with pytest.raises(DriverError):
        check_layer_id(bad, reserved={"l"})
    assert check_layer_id("a" * 64 + "-init") == "a" * 64 + "-init"
