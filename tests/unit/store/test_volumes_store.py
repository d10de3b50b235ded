"""VolumeStore: names, dirs, labels, users, removal."""

from __future__ import annotations

import stat

import pytest
from test_containers_store import create, image

from lamina.errors import ConflictError, UsageError, VolumeNotFoundError
from lamina.store.store import Store
from lamina.store.volumes import ANONYMOUS_LABEL


def test_create_layout_and_idempotence(store: Store) -> None:
    rec, fresh = store.volumes.create("data", labels={"a": "b"})
    assert fresh
    assert rec.mountpoint == store.root / "volumes" / "data" / "_data"
    assert rec.mountpoint.is_dir()
    assert stat.S_IMODE(rec.directory.stat().st_mode) == 0o701
    assert rec.labels == {"a": "b"} and not rec.anonymous
    again, fresh = store.volumes.create("data")
    assert not fresh and again == rec
    assert [v.name for v in store.volumes.list()] == ["data"]


def test_anonymous_label(store: Store) -> None:
    rec, _ = store.volumes.create("f" * 64, anonymous=True)
    assert rec.anonymous and rec.labels == {ANONYMOUS_LABEL: ""}


@pytest.mark.parametrize("bad", ["a", "../x", "a/b", "..", "/abs", "-x", "x y", ""])
def test_bad_names(store: Store, bad: str) -> None:
    with pytest.raises(UsageError):
        store.volumes.create(bad)
    assert not any(store.root.joinpath("volumes").iterdir())


def test_remove_refused_while_used(store: Store) -> None:
    store.volumes.create("data")
    img = image(store)
    rec = store.containers.create(
        name="user1",
        image=img.id,
        top_layer=img.top_layer,
        created="2024",
        config={},
        volumes=[("data", "/data")],
    )
    assert store.volumes.users("data") == [(rec.id, "user1")]
    with pytest.raises(ConflictError, match="user1"):
        store.volumes.remove("data")
    store.containers.remove(rec)
    assert store.volumes.users("data") == []
    (store.volumes.get("data").mountpoint / "f").write_text("x")
    store.volumes.remove("data")
    assert not (store.root / "volumes" / "data").exists()
    with pytest.raises(VolumeNotFoundError):
        store.volumes.get("data")


def test_container_create_needs_existing_volumes(store: Store) -> None:
    img = image(store)
    with pytest.raises(VolumeNotFoundError):
        store.containers.create(
            name="x1",
            image=img.id,
            top_layer=img.top_layer,
            created="2024",
            config={},
            volumes=[("nope", "/data")],
        )
    assert store.containers.list() == []
    create(store, img, name="x1")
