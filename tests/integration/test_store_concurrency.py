"""Two lamina processes share one root: ingest, add and remove images, gc, mount and unmount
on shared layers at the same time, many rounds; afterwards the store is whole."""

from __future__ import annotations

import importlib.util
import io
import json
import multiprocessing
import tarfile
from pathlib import Path

import pytest

from lamina.digest import Digest
from lamina.store.store import Store

# Extraction (archive.apply) lands separately; skip only while its module is absent, so a
# broken apply still fails here.
if importlib.util.find_spec("lamina.archive.apply") is None:
    pytest.skip("lamina.archive.apply is not there yet", allow_module_level=True)

ROUNDS = 12
DRIVERS = [
    pytest.param("vfs", id="vfs"),
    pytest.param(
        "overlay2", id="overlay", marks=[pytest.mark.needs_root, pytest.mark.needs_overlay]
    ),
]


def tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in sorted(files.items()):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 1_700_000_000
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


BASE = tar_of({f"base{i}": bytes([i]) * 4096 for i in range(20)})
MIDS = [tar_of({"mid": f"mid {i}".encode()}) for i in range(3)]


def add_image(store: Store, chain: list[Digest], diff_ids: list[Digest], tag: str) -> Digest:
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids}, "t": tag}).encode()
    manifest = json.dumps({"config": str(Digest.of(config)), "t": tag}).encode()
    return store.images.add(
        config_bytes=config,
        manifest_bytes=manifest,
        manifest_media_type="application/vnd.oci.image.manifest.v1+json",
        layers=chain,
        names=[f"localhost/w:{tag}"],
        created=None,
    ).id


def worker(root: str, worker_id: int) -> None:
    with Store.open(Path(root)) as store:
        for r in range(ROUNDS):
            base = store.layers.ingest(io.BytesIO(BASE), parent=None, media_type=None)
            mid = store.layers.ingest(
                io.BytesIO(MIDS[r % len(MIDS)]), parent=base.chain_id, media_type=None
            )
            top_tar = tar_of({"top": f"{worker_id} {r}".encode()})
            top = store.layers.ingest(io.BytesIO(top_tar), parent=mid.chain_id, media_type=None)
            chain = [base.chain_id, mid.chain_id, top.chain_id]
            image = add_image(
                store, chain, [base.diff_id, mid.diff_id, top.diff_id], f"{worker_id}-{r}"
            )
            merged = store.layers.mount(top.chain_id)
            assert (merged / "top").read_bytes() == f"{worker_id} {r}".encode()
            assert (merged / "base3").read_bytes() == bytes([3]) * 4096
            store.layers.unmount(top.chain_id)
            if r % 3 != 2:  # keep every third image
                store.images.remove(image)
            store.gc()


@pytest.mark.slow
@pytest.mark.parametrize("driver", DRIVERS)
def test_two_processes_share_a_store(shm_tmp: Path, driver: str) -> None:
    root = shm_tmp / "root"
    Store.open(root, driver=driver).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=worker, args=(str(root), i)) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(600)
    assert [p.exitcode for p in procs] == [0, 0]

    with Store.open(root) as store:
        assert store.verify() == []
        images = store.images.list()
        assert len(images) == 2 * (ROUNDS // 3)
        kept = {d for img in images for d in img.layers}
        assert store.gc().layers == ()
        assert {r.chain_id for r in store.layers.list()} == kept
        for rec in store.layers.list():
            assert store.layers.mount_count(rec.chain_id) == 0
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            assert not [line for line in f if str(root) in line]
        for img in images:
            store.images.remove(img.id)
        store.gc()
        assert store.layers.list() == []
        assert list(store.blobs.iter_digests()) == []
        assert [n for n in store.driver.home.iterdir() if len(n.name) == 64] == []
        assert store.verify() == []
