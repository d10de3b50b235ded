"""LayerStore with the in-test driver: one-pass ingest, races, failures, removal, gc."""

from __future__ import annotations

import io
import os

import pytest
from store_fakes import FakeDriver, make_tar

from lamina.archive.entry import EntryKind
from lamina.digest import Digest, chain_ids
from lamina.errors import DigestMismatchError, LayerInUseError, LayerNotFoundError
from lamina.store.store import Store

BASE = make_tar(
    [
        ("etc", "dir", b""),
        ("etc/passwd", "file", b"root:x:0:0\n"),
        ("lib", "symlink", "usr/lib"),
        ("bin", "dir", b""),
        ("bin/sh", "file", b"#!"),
    ],
    gz=True,
)
TOP = make_tar([("etc/passwd", "file", b"root:x:0:0\nme:x:1:1\n"), ("bin/.wh.sh", "file", b"")])


class Unreadable(io.RawIOBase):
    def read(self, n: int = -1) -> bytes:
        raise AssertionError("the fast path must not read the source")


def fake(store: Store) -> FakeDriver:
    assert isinstance(store.driver, FakeDriver)
    return store.driver


def test_ingest_records_and_index(store: Store) -> None:
    base = store.layers.ingest(io.BytesIO(BASE), parent=None, media_type=None)
    assert base.media_type == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert base.blob_digest == Digest.of(BASE)
    assert base.blob_size == len(BASE)
    assert base.chain_id == base.diff_id
    assert base.parent is None
    assert base.entry_count == 5
    assert base.content_size == len(b"root:x:0:0\n") + 2
    assert store.blobs.read_bytes(base.blob_digest) == BASE
    assert len(base.cache_id) == 64
    assert base.cache_id not in base.chain_id
    top = store.layers.ingest(io.BytesIO(TOP), parent=base.chain_id, media_type="x/y")
    assert top.chain_id == chain_ids([base.diff_id, top.diff_id])[1]
    assert top.media_type == "x/y"
    assert top.parent == base.chain_id
    assert [r.chain_id for r in store.layers.chain(top.chain_id)] == [base.chain_id, top.chain_id]
    view = store.layers.merged_view(top.chain_id)
    assert sorted(view) == ["bin", "etc", "etc/passwd", "lib"]
    assert view["etc/passwd"].entry.size == 20
    assert store.layers.merged_symlinks(top.chain_id) == {"lib"}
    hist = store.layers.path_history(top.chain_id, "bin/sh")
    assert [(r.chain_id, e.entry.kind) for r, e in hist] == [
        (base.chain_id, EntryKind.DIR),
        (base.chain_id, EntryKind.FILE),
        (top.chain_id, EntryKind.WHITEOUT),
    ]
    assert store.db.conn.execute("SELECT count(*) FROM staging").fetchone()[0] == 0
    assert store.verify() == []


def test_fast_path_reads_nothing(store: Store) -> None:
    base = store.layers.ingest(io.BytesIO(BASE), parent=None, media_type=None)
    again = store.layers.ingest(
        Unreadable(),
        parent=None,
        media_type=None,  # type: ignore[arg-type]
        expected_diff_id=base.diff_id,
    )
    assert again == base
    assert len(fake(store).applied) == 1


def test_same_layer_twice_keeps_first(store: Store) -> None:
    a = store.layers.ingest(io.BytesIO(BASE), parent=None, media_type=None)
    b = store.layers.ingest(io.BytesIO(BASE), parent=None, media_type=None)
    assert a == b
    assert sorted(os.listdir(fake(store).home)) == [a.cache_id]
    assert os.listdir(store.paths.tmp) == []


def test_refused_ingest_leaves_nothing(store: Store) -> None:
    with pytest.raises(DigestMismatchError):
        store.layers.ingest(
            io.BytesIO(BASE), parent=None, media_type=None, expected_diff_id=Digest.of(b"not it")
        )
    assert os.listdir(fake(store).home) == []
    assert list(store.blobs.iter_digests()) == []
    assert os.listdir(store.paths.tmp) == []  # the rows staged before the refusal too
    assert store.layers.list() == []
    assert store.db.conn.execute("SELECT count(*) FROM staging").fetchone()[0] == 0
    assert store.db.conn.execute("SELECT count(*) FROM files").fetchone()[0] == 0


def test_interrupted_ingest_leaves_nothing(store: Store) -> None:
    def boom(_: str) -> None:
        raise KeyboardInterrupt

    fake(store).fail_apply = boom
    with pytest.raises(KeyboardInterrupt):
        store.layers.ingest(io.BytesIO(BASE), parent=None, media_type=None)
    assert os.listdir(fake(store).home) == []
    assert list(store.blobs.iter_digests()) == []


def test_unknown_parent(store: Store) -> None:
    with pytest.raises(LayerNotFoundError):
        store.layers.ingest(io.BytesIO(TOP), parent=Digest.of(b"x"), media_type=None)


def test_remove_refuses_while_used(store: Store) -> None:
    base = store.layers.ingest(io.BytesIO(BASE), parent=None, media_type=None)
    top = store.layers.ingest(io.BytesIO(TOP), parent=base.chain_id, media_type=None)
    store.layers.release()
    with pytest.raises(LayerInUseError, match="layer sha256"):
        store.layers.remove(base.chain_id)
    store.layers.mount(top.chain_id)
    with pytest.raises(LayerInUseError, match="mount"):
        store.layers.remove(top.chain_id)
    store.layers.unmount(top.chain_id)
    store.layers.remove(top.chain_id)
    store.layers.remove(base.chain_id)
    assert store.layers.list() == []
    assert list(store.blobs.iter_digests()) == []
    assert os.listdir(fake(store).home) == []


def test_gc_spares_held_layers(store: Store) -> None:
    base = store.layers.ingest(io.BytesIO(BASE), parent=None, media_type=None)
    assert store.gc().layers == ()  # held by this live process until an image references it
    store.layers.release([base.chain_id])
    result = store.gc()
    assert result.layers == (base.chain_id,)
    assert result.blobs == ()
    assert store.layers.list() == []
    assert list(store.blobs.iter_digests()) == []
