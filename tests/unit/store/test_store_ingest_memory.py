"""A layer's ingest (load, import, build steps, commit) does not hold the layer's file index:
rows stream to a staging file and reach the index in the record's transaction, so memory grows
only with the names the layer rules need (duplicates, whiteouts, hardlink targets)."""

from __future__ import annotations

import io
import os
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from lamina.store.store import Store


def _layer(files: int) -> bytes:
    """``files`` files of 1 KiB, 1,000 to a directory: enough bytes that the read pipe's queue
    is full in every size measured, so it adds the same to each peak."""
    buf = io.BytesIO()
    data = b"x" * 1024
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(files):
            d, f = divmod(i, 1000)
            if f == 0:
                ti = tarfile.TarInfo(f"d{d}")
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(ti)
            ti = tarfile.TarInfo(f"d{d}/f{f}")
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _ingest_peak(store: Store, data: bytes) -> int:
    """Peak Python heap of one ingest, beyond what was allocated before it."""
    tracemalloc.start()
    try:
        rec = store.layers.ingest(io.BytesIO(data), parent=None, media_type=None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    count = store.db.conn.execute(
        "SELECT count(*) FROM files WHERE layer = ?", (rec.index_key,)
    ).fetchone()[0]
    assert count == rec.entry_count
    return int(peak)


@pytest.mark.timeout(120)
def test_ingest_memory_does_not_grow_with_the_index(shm_tmp: Path) -> None:
    small, large = 10_000, 40_000
    with Store.open(shm_tmp / "root", driver="vfs") as store:
        peaks = [_ingest_peak(store, _layer(n)) for n in (small, large)]
        assert os.listdir(store.paths.tmp) == []  # the staged rows are gone
    per_entry = (peaks[1] - peaks[0]) / (large - small)
    # Held as IndexEntry objects until the end, then as the tuples SQLite binds, the rows
    # cost ~620 B per entry here; the names alone cost ~100.
    assert per_entry < 250, f"{per_entry:.0f} bytes of heap per tar entry"
