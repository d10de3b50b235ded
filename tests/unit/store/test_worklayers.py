"""Work layers (a build step's temporary writable layer): staged while they live, their diff
holds only the step's changes (not the init layer's mount points), nothing is left after, and a
crashed builder's dirs are removed by recovery."""

from __future__ import annotations

import io
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from store_fakes import make_tar

from lamina.store.lock import ProcessToken
from lamina.store.store import Store
from lamina.store.worklayers import InitLayer, WorkLayers

pytestmark = pytest.mark.needs_root


def _staged(s: Store) -> list[str]:
    return [str(r[0]) for r in s.db.conn.execute("SELECT cache_id FROM staging")]


def test_a_work_layer_is_staged_diffed_and_removed(shm_tmp: Path) -> None:
    with Store.open(shm_tmp / "r", driver="vfs") as s:
        base = s.layers.ingest(
            io.BytesIO(make_tar([("etc", "dir", b""), ("etc/a", "file", b"a")])),
            parent=None,
            media_type=None,
        )
        work = WorkLayers(db=s.db, driver=s.driver, hold=s.lock)
        with work.open(parent=base.chain_id, init=InitLayer.WITH) as wl:
            assert sorted(_staged(s)) == sorted([wl.layer_id, f"{wl.layer_id}-init"])
            assert (wl.rootfs / "etc" / "a").read_text() == "a"
            assert (wl.rootfs / "proc").is_dir()  # the init layer's mount point is there...
            (wl.rootfs / "etc" / "b").write_text("b")
            out = io.BytesIO()
            wl.diff_tar(out)
            ids = (wl.layer_id, wl.init_id)
        out.seek(0)
        with tarfile.open(fileobj=out) as tar:
            names = sorted(m.name.rstrip("/") for m in tar)
        assert names == ["etc", "etc/b"]  # ...but never in the step's diff
        assert _staged(s) == []
        assert not any(s.driver.exists(i) for i in ids if i)
        holds = s.db.conn.execute("SELECT count(*) FROM layer_holds").fetchone()[0]
        assert holds <= 1  # only the ingest's own hold on the base, not the work layer's


def test_recovery_removes_a_crashed_builders_work_layer(shm_tmp: Path) -> None:
    root = shm_tmp / "r"
    with Store.open(root, driver="vfs") as s:
        p = subprocess.Popen(["true"])
        p.wait()
        dead = ProcessToken(pid=p.pid, start=ProcessToken.current().start)
        layer_id = "c" * 64
        with s.db.transaction() as c:
            c.execute(
                "INSERT INTO staging VALUES (?, ?, ?, 'build', ?)",
                (layer_id, dead.pid, dead.start, time.time()),
            )
        s.driver.create(layer_id, parent=None, writable=True)
        assert s.driver.exists(layer_id)
    with Store.open(root, driver="vfs") as s2:
        assert not s2.driver.exists(layer_id)
        assert _staged(s2) == []
