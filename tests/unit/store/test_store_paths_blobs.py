"""Root resolution, the layout, and the verified blob store."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from lamina.digest import Digest
from lamina.errors import (
    BlobNotFoundError,
    DigestMismatchError,
    InvalidDigestError,
    SizeMismatchError,
    UsageError,
)
from lamina.store.blobs import BlobStore
from lamina.store.lock import held_temp, sweep_temp
from lamina.store.paths import StorePaths, default_root


def test_default_root_order() -> None:
    assert default_root("/x", env={"LAMINA_ROOT": "/y"}, uid=0) == Path("/x")
    assert default_root(None, env={"LAMINA_ROOT": "/y"}, uid=0) == Path("/y")
    assert default_root(None, env={}, uid=0) == Path("/var/lib/lamina")
    assert default_root(None, env={"XDG_DATA_HOME": "/d"}, uid=1000) == Path("/d/lamina")
    assert default_root(None, env={"HOME": "/h"}, uid=1000) == Path("/h/.local/share/lamina")


def test_layout_modes(shm_tmp: Path) -> None:
    paths = StorePaths(root=shm_tmp / "r")
    paths.ensure()
    paths.ensure()  # idempotent
    assert stat.S_IMODE(paths.root.stat().st_mode) == 0o710
    assert stat.S_IMODE(paths.blobs.stat().st_mode) == 0o700
    assert stat.S_IMODE(paths.tmp.stat().st_mode) == 0o700
    assert paths.blob(Digest.of(b"x")).parent == shm_tmp / "r" / "blobs" / "sha256"


def test_paths_refuse_tricks(shm_tmp: Path) -> None:
    paths = StorePaths(root=shm_tmp)
    with pytest.raises(InvalidDigestError):
        paths.blob("sha256:../../etc/passwd")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        paths.volume("../x")
    with pytest.raises(UsageError):
        paths.container("abc")


@pytest.fixture
def blobs(shm_tmp: Path) -> BlobStore:
    paths = StorePaths(root=shm_tmp / "r")
    paths.ensure()
    return BlobStore(paths)


def test_put_read_idempotent(blobs: BlobStore) -> None:
    d = blobs.put_bytes(b"hello")
    assert d == Digest.of(b"hello")
    assert blobs.put_bytes(b"hello") == d
    assert blobs.read_bytes(d) == b"hello"
    assert blobs.size(d) == 5
    assert list(blobs.iter_digests()) == [d]
    assert stat.S_IMODE(blobs.path(d).stat().st_mode) == 0o644
    blobs.delete(d)
    blobs.delete(d)
    assert not blobs.exists(d)
    with pytest.raises(BlobNotFoundError):
        blobs.read_bytes(d)
    assert os.listdir(blobs.paths.tmp) == []


def test_flipped_byte_is_caught(blobs: BlobStore) -> None:
    d = blobs.put_stream(io.BytesIO(b"a" * 100_000))
    p = blobs.path(d)
    data = bytearray(p.read_bytes())
    data[500] ^= 1
    p.write_bytes(bytes(data))
    with pytest.raises(DigestMismatchError) as exc:
        blobs.read_bytes(d)
    assert exc.value.expected == d
    with pytest.raises(DigestMismatchError), blobs.open(d) as r:
        r.drain()
    with pytest.raises(DigestMismatchError):
        blobs.verify(d)


def test_put_stream_checks_store_nothing(blobs: BlobStore) -> None:
    wrong = Digest.of(b"other")
    with pytest.raises(DigestMismatchError):
        blobs.put_stream(io.BytesIO(b"data"), expected=wrong)
    with pytest.raises(SizeMismatchError):
        blobs.put_stream(io.BytesIO(b"data"), size=3)
    with pytest.raises(DigestMismatchError):
        blobs.put_bytes(b"data", expected=wrong)
    assert list(blobs.iter_digests()) == []
    assert os.listdir(blobs.paths.tmp) == []


def test_writer_abort_and_commit(blobs: BlobStore) -> None:
    with blobs.writer() as w:
        w.write(b"partial")
    assert list(blobs.iter_digests()) == []
    with blobs.writer() as w:
        w.write(b"whole")
        d = w.commit()
        assert w.commit() == d
    assert blobs.read_bytes(d) == b"whole"
    assert os.listdir(blobs.paths.tmp) == []


def test_sweep_spares_held_temps(blobs: BlobStore) -> None:
    tmp = blobs.paths.tmp
    (tmp / "dead-file").write_bytes(b"x")
    (tmp / "dead-dir").mkdir()
    with held_temp(tmp, prefix="live-") as t:
        removed = sweep_temp(tmp)
        assert sorted(removed) == ["dead-dir", "dead-file"]
        assert t.path.exists()
    assert os.listdir(tmp) == []
