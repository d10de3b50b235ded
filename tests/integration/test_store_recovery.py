"""A lamina process killed with SIGKILL in the middle of an ingest leaves nothing the next
``Store.open`` does not clean: no staging row, layer dir, temp blob, blob or record."""

from __future__ import annotations

import importlib.util
import io
import multiprocessing
import os
import signal
import tarfile
import time
from pathlib import Path

import pytest

from lamina.store.store import Store

# Extraction (archive.apply) lands separately; skip only while its module is absent, so a
# broken apply still fails here.
if importlib.util.find_spec("lamina.archive.apply") is None:
    pytest.skip("lamina.archive.apply is not there yet", allow_module_level=True)

DRIVERS = [
    pytest.param("vfs", id="vfs"),
    pytest.param(
        "overlay2", id="overlay", marks=[pytest.mark.needs_root, pytest.mark.needs_overlay]
    ),
]


def big_tar(n_files: int = 64, size: int = 256 * 1024) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        d = tarfile.TarInfo("data")
        d.type, d.mode = tarfile.DIRTYPE, 0o755
        tf.addfile(d)
        for i in range(n_files):
            ti = tarfile.TarInfo(f"data/f{i:04d}")
            ti.size, ti.mode = size, 0o644
            tf.addfile(ti, io.BytesIO(os.urandom(size)))
    return buf.getvalue()


class StallingReader(io.RawIOBase):
    """Serves half the tar, then announces it and hangs (the parent kills us there)."""

    def __init__(self, data: bytes, marker: Path) -> None:
        self._src = io.BytesIO(data)
        self._half = len(data) // 2
        self._marker = marker

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._src.tell() >= self._half:
            self._marker.write_text("stalled")
            time.sleep(3600)
        chunk = self._src.read(min(len(b), 64 * 1024))
        memoryview(b)[: len(chunk)] = chunk
        return len(chunk)


def _ingest_and_stall(root: str, driver: str, marker: str) -> None:
    store = Store.open(Path(root), driver=driver)
    reader = io.BufferedReader(StallingReader(big_tar(), Path(marker)))
    store.layers.ingest(reader, parent=None, media_type=None)


@pytest.mark.parametrize("driver", DRIVERS)
def test_sigkill_mid_ingest_is_cleaned_on_open(shm_tmp: Path, driver: str) -> None:
    root = shm_tmp / "root"
    marker = shm_tmp / "stalled"
    with Store.open(root, driver=driver) as store:
        home = store.driver.home
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(target=_ingest_and_stall, args=(str(root), driver, str(marker)))
    child.start()
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.is_alive(), "the ingesting child died before stalling"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # Mid-ingest: a staging row, a layer dir and a temp blob exist.
        with Store.open(root) as peek:
            assert peek.db.conn.execute("SELECT count(*) FROM staging").fetchone()[0] == 1
            assert peek.last_recovery.staging == ()  # the writer is alive: left alone
        assert any(n for n in os.listdir(root / "tmp"))
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.join(30)
    assert child.exitcode == -signal.SIGKILL

    with Store.open(root) as store:
        rec = store.last_recovery
        assert len(rec.staging) == 1
        assert store.db.conn.execute("SELECT count(*) FROM staging").fetchone()[0] == 0
        assert store.layers.list() == []
        assert list(store.blobs.iter_digests()) == []
        assert os.listdir(root / "tmp") == []
        assert [n for n in os.listdir(home) if len(n) == 64] == []
        assert store.verify() == []


def _open_and_die(root: str) -> None:
    Store.open(Path(root))  # never closed: the process dies holding its session marker
    os._exit(0)


def test_open_scans_only_after_a_crash(shm_tmp: Path) -> None:
    """Open skips the full driver scan after clean closes, and runs it when a process died
    with the store open (its session marker is left unheld)."""
    root = shm_tmp / "root"
    Store.open(root, driver="vfs").close()
    orphan = root / "vfs" / ("ab" * 32)  # a layer dir no record owns, as a crash leaves
    orphan.mkdir()
    with Store.open(root) as store:
        assert store.last_recovery.driver_dirs == ()  # clean history: no scan
    assert orphan.exists()
    ctx = multiprocessing.get_context("spawn")
    p = ctx.Process(target=_open_and_die, args=(str(root),))
    p.start()
    p.join(60)
    assert p.exitcode == 0
    with Store.open(root) as store:
        assert store.last_recovery.driver_dirs == ("ab" * 32,)
    assert not orphan.exists()
    with Store.open(root) as store:  # and the evidence is gone once handled
        assert store.last_recovery.driver_dirs == ()
