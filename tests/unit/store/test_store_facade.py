"""Store.open: the recorded driver, recovery of crashed writers, verify and info."""

from __future__ import annotations

import io
import os
import subprocess
import time
from pathlib import Path

import pytest
from store_fakes import FakeDriver, make_tar, open_fake_store

from lamina.errors import StoreError
from lamina.store.lock import ProcessToken
from lamina.store.store import ProblemKind, Store

TAR = make_tar([("a", "file", b"a" * 1000)])


def dead_token() -> ProcessToken:
    p = subprocess.Popen(["true"])
    pid = p.pid
    start = ProcessToken.current().start  # any value: the pid is gone once reaped
    p.wait()
    return ProcessToken(pid=pid, start=start)


def test_open_records_driver(shm_tmp: Path) -> None:
    root = shm_tmp / "r"
    with Store.open(root, driver="vfs") as s:
        assert s.driver.name == "vfs"
        assert s.db.get_meta("driver") == "vfs"
        assert s.root == root
        assert oct(root.stat().st_mode & 0o777) == oct(0o710)
    with Store.open(root) as s:
        assert s.driver.name == "vfs"
    with pytest.raises(StoreError, match="vfs driver"), Store.open(root, driver="overlay2"):
        pass


def test_recovery_cleans_dead_writers(shm_tmp: Path) -> None:
    root = shm_tmp / "r"
    s = open_fake_store(root)
    kept = s.layers.ingest(io.BytesIO(TAR), parent=None, media_type=None)
    dead = dead_token()
    live = ProcessToken.current()
    with s.db.transaction() as c:
        for cache_id, tok in (("d" * 64, dead), ("e" * 64, live)):
            c.execute(
                "INSERT INTO staging VALUES (?, ?, ?, 'ingest', ?)",
                (cache_id, tok.pid, tok.start, time.time()),
            )
            c.execute(
                "INSERT OR IGNORE INTO layer_holds VALUES (?, ?, ?)",
                (kept.chain_id, tok.pid, tok.start),
            )
    driver = s.driver
    assert isinstance(driver, FakeDriver)
    for name in ("d" * 64, "e" * 64, "f" * 64):  # dead writer's, live writer's, unowned
        (driver.home / name).mkdir()
    (s.paths.tmp / "blob-123-dead").write_bytes(b"partial")
    kinds = sorted(p.kind.value for p in s.verify())
    assert kinds == ["layer-dir-orphan", "layer-dir-orphan", "staging-stale"]
    s.close()

    s2 = open_fake_store(root, driver=driver)
    rec = s2.last_recovery
    assert rec.staging == ("d" * 64,)
    assert rec.driver_dirs == ("f" * 64,)
    assert rec.temps == ("blob-123-dead",)
    assert rec.holds == 1
    assert sorted(os.listdir(driver.home)) == sorted([kept.cache_id, "e" * 64])
    assert s2.layers.get(kept.chain_id) == kept
    # the live writer's row stays; verify calls its dir live, not orphan
    assert s2.verify() == []
    s2.close()


def test_verify_names_corrupt_and_missing(store: Store) -> None:
    rec = store.layers.ingest(io.BytesIO(TAR), parent=None, media_type=None)
    orphan = store.blobs.put_bytes(b"orphan")
    p = store.blobs.path(rec.blob_digest)
    data = bytearray(p.read_bytes())
    data[-1] ^= 0xFF
    p.write_bytes(bytes(data))
    problems = {(x.kind, x.subject) for x in store.verify()}
    assert problems == {
        (ProblemKind.BLOB_CORRUPT, rec.blob_digest),
        (ProblemKind.BLOB_ORPHAN, orphan),
    }
    p.unlink()
    assert {(x.kind, x.subject) for x in store.verify()} == {
        (ProblemKind.BLOB_MISSING, rec.blob_digest),
        (ProblemKind.BLOB_ORPHAN, orphan),
    }
    info = store.info()
    assert info["Layers"] == 1
    assert info["Blobs"] == 1
    assert info["IndexEntries"] == 1
