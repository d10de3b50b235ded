"""ImageStore: records, names, prefixes, removal; and the layers images keep alive."""

from __future__ import annotations

import io
import json

import pytest
from store_fakes import make_tar

from lamina.digest import Digest
from lamina.errors import ImageNotFoundError, InvalidContentError, UsageError
from lamina.store.images import ImageRecord
from lamina.store.layers import LayerRecord
from lamina.store.store import Store


def layer(store: Store, name: str, parent: LayerRecord | None = None) -> LayerRecord:
    return store.layers.ingest(
        io.BytesIO(make_tar([(name, "file", name.encode())])),
        parent=parent.chain_id if parent else None,
        media_type=None,
    )


def add(store: Store, layers: list[LayerRecord], names: list[str], tag: str = "") -> ImageRecord:
    config = json.dumps({"rootfs": {"diff_ids": [r.diff_id for r in layers]}, "x": tag}).encode()
    manifest = json.dumps({"config": str(Digest.of(config))}).encode()
    return store.images.add(
        config_bytes=config,
        manifest_bytes=manifest,
        manifest_media_type="application/vnd.oci.image.manifest.v1+json",
        layers=[r.chain_id for r in layers],
        names=names,
        created="2024",
    )


def test_add_get_names(store: Store) -> None:
    a = layer(store, "a")
    b = layer(store, "b", a)
    img = add(store, [a, b], ["localhost/x:1", "localhost/x:2"])
    assert img.layers == (a.chain_id, b.chain_id)
    assert img.top_layer == b.chain_id
    assert img.names == ("localhost/x:1", "localhost/x:2")
    assert img.size == a.content_size + b.content_size
    assert not img.built_locally
    assert store.images.find_by_name("localhost/x:1") == img
    assert store.blobs.read_bytes(img.id)  # config kept as given
    assert store.blobs.exists(img.manifest_digest)
    again = add(store, [a, b], ["other"])
    assert again.id == img.id
    assert again.names == ("localhost/x:1", "localhost/x:2", "other")
    assert store.images.list() == [again]
    # ingest holds were released by add: only images keep the layers now
    assert store.db.conn.execute("SELECT count(*) FROM layer_holds").fetchone()[0] == 0


def test_tag_moves_untag_and_prefix(store: Store) -> None:
    a = layer(store, "a")
    one = add(store, [a], ["n:1"], tag="one")
    two = add(store, [a], [], tag="two")
    store.images.tag(two.id, "n:1")
    assert store.images.get(one.id).names == ()
    assert store.images.get(two.id).names == ("n:1",)
    assert store.images.untag("n:1") == two.id
    with pytest.raises(ImageNotFoundError):
        store.images.untag("n:1")
    assert store.images.resolve_prefix(one.id.hex[:12]) == store.images.get(one.id)
    assert store.images.resolve_prefix("sha256:" + two.id.hex) == store.images.get(two.id)
    assert store.images.resolve_prefix("zz") is None
    # 17 ids over 16 hex digits: two share their first digit (pigeonhole).
    ids = [one.id, two.id] + [add(store, [a], [], tag=str(i)).id for i in range(15)]
    first = [d.hex[0] for d in ids]
    dup = next(ch for ch in first if first.count(ch) > 1)
    with pytest.raises(UsageError, match="ambiguous"):
        store.images.resolve_prefix(dup)


def test_layers_must_form_a_chain(store: Store) -> None:
    a = layer(store, "a")
    b = layer(store, "b", a)
    with pytest.raises(InvalidContentError):
        add(store, [b], [])
    with pytest.raises(InvalidContentError):
        add(store, [b, a], [])


def test_shared_layers_outlive_one_image(store: Store) -> None:
    a = layer(store, "a")
    b = layer(store, "b", a)
    c = layer(store, "c", a)
    one = add(store, [a, b], ["one"])
    two = add(store, [a, c], ["two"])
    store.images.remove(one.id)
    gc = store.gc()
    assert gc.layers == (b.chain_id,)
    assert store.layers.find(a.chain_id) is not None
    assert not store.blobs.exists(one.id)
    assert store.blobs.exists(two.id)
    assert store.verify() == []
    store.images.remove(two.id)
    store.gc()
    assert store.layers.list() == []
    assert list(store.blobs.iter_digests()) == []
