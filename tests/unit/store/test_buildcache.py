"""The build cache answers only with images built in this store (CVE-2024-24557: a loaded image
whose config happens to match must never be reused), and forgets a key with its image."""

from __future__ import annotations

import json
from pathlib import Path

from store_fakes import open_fake_store

from lamina.digest import Digest
from lamina.store.buildcache import BuildCache
from lamina.store.store import Store


def _add(store: Store, *, tag: str, built_locally: bool) -> Digest:
    config = json.dumps({"architecture": "amd64", "os": "linux", "tag": tag,
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()  # fmt: skip
    manifest = json.dumps({"schemaVersion": 2, "config": str(Digest.of(config))}).encode()
    rec = store.images.add(
        config_bytes=config,
        manifest_bytes=manifest,
        manifest_media_type="application/vnd.oci.image.manifest.v1+json",
        layers=[],
        names=[],
        created=None,
        built_locally=built_locally,
    )
    return rec.id


def test_only_locally_built_images_answer(shm_tmp: Path) -> None:
    store = open_fake_store(shm_tmp / "root")
    try:
        cache = BuildCache(db=store.db)
        built = _add(store, tag="built", built_locally=True)
        loaded = _add(store, tag="loaded", built_locally=False)
        cache.record(key="k1", parent=None, image=built)
        cache.record(key="k2", parent=built, image=loaded)  # as if a key named a loaded image
        assert cache.lookup("k1") == built
        assert cache.lookup("k2") is None
        assert cache.lookup("missing") is None
    finally:
        store.close()


def test_a_key_goes_with_its_image(shm_tmp: Path) -> None:
    store = open_fake_store(shm_tmp / "root")
    try:
        cache = BuildCache(db=store.db)
        built = _add(store, tag="built", built_locally=True)
        cache.record(key="k", parent=None, image=built)
        store.images.remove(built)
        assert cache.lookup("k") is None
        assert cache.count() == 0
    finally:
        store.close()
