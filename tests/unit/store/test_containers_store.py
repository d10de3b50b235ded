"""ContainerStore over the fake driver: rows, names, layers, hooks, crash recovery."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from store_fakes import FakeDriver, make_tar, open_fake_store

from lamina.digest import Digest
from lamina.errors import (
    ContainerNotFoundError,
    ImageInUseError,
    LayerInUseError,
    NameInUseError,
    UsageError,
)
from lamina.store.containers import ContainerRecord, setup_init_layer
from lamina.store.images import ImageRecord
from lamina.store.store import Store


def image(store: Store, name: str = "localhost/x:1") -> ImageRecord:
    rec = store.layers.ingest(
        io.BytesIO(make_tar([("etc", "dir", b""), ("etc/passwd", "file", "root")])),
        parent=None,
        media_type=None,
    )
    config = json.dumps({"rootfs": {"diff_ids": [rec.diff_id]}}).encode()
    manifest = json.dumps({"config": str(Digest.of(config))}).encode()
    return store.images.add(
        config_bytes=config,
        manifest_bytes=manifest,
        manifest_media_type="application/vnd.oci.image.manifest.v1+json",
        layers=[rec.chain_id],
        names=[name],
        created="2024",
    )


def create(store: Store, img: ImageRecord, name: str = "web") -> ContainerRecord:
    return store.containers.create(
        name=name,
        image=img.id,
        top_layer=img.top_layer,
        created="2024-01-01T00:00:00Z",
        config={"Path": "sh", "Args": []},
    )


def test_create_makes_init_and_rw_layers_and_bundle(store: Store) -> None:
    img = image(store)
    rec = create(store, img)
    assert len(rec.id) == 64 and int(rec.id, 16) >= 0
    assert rec.init_id == rec.mount_id + "-init"
    assert store.driver.exists(rec.mount_id) and store.driver.exists(rec.init_id)
    bundle = store.containers.bundle(rec)
    assert bundle == store.root / "containers" / rec.id
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o710
    assert rec.complete and rec.config == {"Path": "sh", "Args": []}
    assert store.containers.resolve("web") == rec
    assert store.containers.resolve("/web") == rec
    assert store.containers.resolve(rec.id[:12]) == rec
    assert store.containers.list() == [rec]


def test_names_are_unique_and_checked(store: Store) -> None:
    img = image(store)
    first = create(store, img)
    with pytest.raises(NameInUseError, match=first.id):
        create(store, img)
    for bad in ("a", "-x", "a/b", "../x", "x y"):
        with pytest.raises(UsageError):
            create(store, img, name=bad)
    assert [r.name for r in store.containers.list()] == ["web"]


def test_unknown_container(store: Store) -> None:
    with pytest.raises(ContainerNotFoundError):
        store.containers.resolve("nope")


def test_container_keeps_its_image_and_layer(store: Store) -> None:
    img = image(store)
    rec = create(store, img)
    assert store.images.users(img.id) == [f"{rec.id[:12]} (web)"]
    with pytest.raises(ImageInUseError, match="web"):
        store.images.remove(img.id)
    assert img.top_layer is not None
    assert any("web" in u for u in store.layers.users(img.top_layer))
    # gc keeps the layers a container's init layer sits on, and the container's own dirs
    store.gc()
    assert store.layers.find(img.top_layer) is not None
    assert store.driver.exists(rec.mount_id)
    store.containers.remove(rec)
    assert not store.driver.exists(rec.mount_id) and not store.driver.exists(rec.init_id)
    assert not store.containers.bundle(rec).exists()
    assert store.images.users(img.id) == []


def test_remove_refused_while_mounted(store: Store) -> None:
    rec = create(store, image(store))
    store.containers.mount(rec)
    with pytest.raises(LayerInUseError):
        store.containers.remove(rec)
    store.containers.unmount(rec)
    store.containers.remove(rec)


def test_recovery_keeps_live_containers(shm_tmp: Path) -> None:
    root = shm_tmp / "root"
    store = open_fake_store(root)
    rec = create(store, image(store))
    store.close()
    again = open_fake_store(root, driver=FakeDriver(home=root / "fake"))
    try:
        assert again.driver.exists(rec.mount_id) and again.driver.exists(rec.init_id)
        assert again.containers.resolve("web").id == rec.id
        assert again.verify() == []
    finally:
        again.close()


def test_recovery_drops_a_dead_creators_container(shm_tmp: Path) -> None:
    root = shm_tmp / "root"
    store = open_fake_store(root)
    img = image(store)
    store.close()
    # A child process inserts an incomplete row and makes the layers, then dies.
    code = f"""
import os, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from store_fakes import open_fake_store
from lamina.digest import Digest
s = open_fake_store(__import__("pathlib").Path({str(root)!r}))
c = s.containers
c._make_layers = lambda mount_id, top: (s.driver.create(mount_id, parent=None), os._exit(9))
c.create(name="dead", image=Digest({str(img.id)!r}), top_layer=None, created="x", config={{}})
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    assert r.returncode == 9, r.stderr.decode()
    again = open_fake_store(root)
    try:
        assert again.containers.list() == []
        with pytest.raises(ContainerNotFoundError):
            again.containers.resolve("dead")
        assert any("creator died" in n for n in again.last_recovery.notes)
        assert [p for p in os.listdir(root / "fake") if len(p) >= 64] == [
            again.layers.get(img.layers[0]).cache_id
        ]
        create(again, img, name="dead")  # the name is free again
    finally:
        again.close()


def test_setup_init_layer_masks_hostile_paths(shm_tmp: Path) -> None:
    root = shm_tmp / "init"
    outside = shm_tmp / "outside"
    outside.mkdir()
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hosts").write_text("image's hosts")
    os.symlink(str(outside), root / "dev")  # the image's /dev points at a host dir
    os.symlink("/etc/shadow", root / "etc" / "hostname")
    setup_init_layer(root)
    assert list(outside.iterdir()) == []  # nothing was written through the symlink
    assert (root / "dev").is_dir() and not (root / "dev").is_symlink()
    for d in ("dev/pts", "dev/shm", "proc", "sys"):
        assert (root / d).is_dir()
    for f in (".dockerenv", "etc/resolv.conf", "etc/hosts", "etc/hostname", "dev/console"):
        p = root / f
        assert p.is_file() and not p.is_symlink() and p.stat().st_size == 0, f
        assert stat.S_IMODE(p.stat().st_mode) == 0o755
    assert os.readlink(root / "etc" / "mtab") == "/proc/mounts"


def test_change_config_replaces_it_or_leaves_it(store: Store) -> None:
    rec = create(store, image(store))
    changed = store.containers.change_config(rec, lambda c: {**c, "HostConfig": {"Memory": 1}})
    assert changed.config == {"Path": "sh", "Args": [], "HostConfig": {"Memory": 1}}
    assert store.containers.resolve("web") == changed

    def refuse(config: object) -> dict[str, object]:
        raise UsageError("no")

    with pytest.raises(UsageError):
        store.containers.change_config(rec, refuse)
    assert store.containers.resolve("web") == changed
    store.containers.remove(changed)
    with pytest.raises(ContainerNotFoundError):
        store.containers.change_config(rec, lambda c: c)
