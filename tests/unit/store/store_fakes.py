"""A small in-test driver and tar helpers, so the store's logic is tested without the real
extraction code (the integration tests run the real vfs and overlay drivers)."""

from __future__ import annotations

import enum
import gzip
import hashlib
import io
import os
import shutil
import tarfile
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lamina.archive.entry import Entry, EntryKind, IndexEntry
from lamina.digest import Digest
from lamina.errors import (
    ConflictError,
    DigestMismatchError,
    LayerInUseError,
    LayerNotFoundError,
)
from lamina.store.db import Database
from lamina.store.paths import StorePaths
from lamina.store.store import Store


class FakeCompression(enum.Enum):
    NONE = "none"
    GZIP = "gzip"


@dataclass
class FakeResult:
    blob_digest: Digest
    blob_size: int
    compression: FakeCompression
    diff_id: Digest
    diff_size: int
    content_size: int
    entry_count: int


@dataclass
class FakeDriver:
    """Dirs under ``home``; apply parses the tar with tarfile and touches nothing else."""

    home: Path
    name: str = "fake"
    mounts: dict[str, int] = field(default_factory=dict)
    fail_apply: Callable[[str], None] | None = None
    applied: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)

    def create(self, layer_id: str, *, parent: str | None, writable: bool = False) -> Path:
        d = self.home / layer_id
        if d.exists():
            raise ConflictError(layer_id)
        if parent is not None and not (self.home / parent).is_dir():
            raise LayerNotFoundError(parent)
        d.mkdir()
        return d

    def apply_dir(self, layer_id: str) -> Path:
        return self.home / layer_id

    def apply(
        self,
        layer_id: str,
        source: IO[bytes],
        *,
        tee: IO[bytes] | None = None,
        expected_diff_id: Digest | None = None,
        expected_blob_digest: Digest | None = None,
        lower_symlinks: Collection[str] = (),
        rows: Callable[[list[IndexEntry]], None] | None = None,
        **_: Any,
    ) -> FakeResult:
        raw = bytearray()
        while chunk := source.read(1 << 16):
            raw += chunk
            if tee is not None:
                tee.write(chunk)
        self.applied.append(layer_id)
        if self.fail_apply is not None:
            self.fail_apply(layer_id)
        comp = FakeCompression.GZIP if raw[:2] == b"\x1f\x8b" else FakeCompression.NONE
        tar = gzip.decompress(raw) if comp is FakeCompression.GZIP else bytes(raw)
        entries = parse_entries(tar)
        if rows is not None:  # as apply_layer: the rows go out before the digests are checked
            for i in range(0, len(entries), 2):
                rows(entries[i : i + 2])
        blob = Digest.of(bytes(raw))
        diff = Digest.of(tar)
        for exp, act in ((expected_blob_digest, blob), (expected_diff_id, diff)):
            if exp is not None and exp != act:
                raise DigestMismatchError(expected=exp, actual=act)
        (self.home / layer_id / "content").write_bytes(tar)
        return FakeResult(
            blob_digest=blob,
            blob_size=len(raw),
            compression=comp,
            diff_id=diff,
            diff_size=len(tar),
            entry_count=len(entries),
            content_size=sum(e.entry.size for e in entries if e.entry.kind is EntryKind.FILE),
        )

    def remove(self, layer_id: str) -> None:
        if self.mounts.get(layer_id):
            raise LayerInUseError(layer_id)
        shutil.rmtree(self.home / layer_id, ignore_errors=True)

    def exists(self, layer_id: str) -> bool:
        return (self.home / layer_id).is_dir()

    def mount(self, layer_id: str) -> Path:
        self.mounts[layer_id] = self.mounts.get(layer_id, 0) + 1
        return self.home / layer_id

    def unmount(self, layer_id: str) -> None:
        if self.mounts.get(layer_id):
            self.mounts[layer_id] -= 1

    def mount_count(self, layer_id: str) -> int:
        if not self.exists(layer_id):
            raise LayerNotFoundError(layer_id)
        return self.mounts.get(layer_id, 0)

    def metadata(self, layer_id: str) -> Mapping[str, str]:
        return {"UpperDir": str(self.home / layer_id)}

    def recover(self, live_layer_ids: set[str]) -> list[str]:
        gone = [n for n in os.listdir(self.home) if n not in live_layer_ids]
        for n in gone:
            shutil.rmtree(self.home / n)
        return gone


def parse_entries(tar: bytes) -> list[IndexEntry]:
    out: list[IndexEntry] = []
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as tf:
        for pos, m in enumerate(tf):
            path = m.name.removeprefix("./").rstrip("/")
            base = path.rsplit("/", 1)[-1]
            parent = path[: -len(base)].rstrip("/")
            sha = None
            if base == ".wh..wh..opq":
                kind, path = EntryKind.OPAQUE, parent
            elif base.startswith(".wh."):
                kind = EntryKind.WHITEOUT
                path = f"{parent}/{base[4:]}" if parent else base[4:]
            elif m.isdir():
                kind = EntryKind.DIR
            elif m.issym():
                kind = EntryKind.SYMLINK
            elif m.islnk():
                kind = EntryKind.HARDLINK
            else:
                kind = EntryKind.FILE
                f = tf.extractfile(m)
                assert f is not None
                sha = hashlib.sha256(f.read()).hexdigest()
            xattrs = {
                k[len("SCHILY.xattr.") :]: v.encode("utf-8", "surrogateescape")
                for k, v in m.pax_headers.items()
                if k.startswith("SCHILY.xattr.")
            }
            out.append(
                IndexEntry(
                    entry=Entry(
                        path=path,
                        kind=kind,
                        mode=m.mode & 0o7777,
                        uid=m.uid,
                        gid=m.gid,
                        size=m.size if kind is EntryKind.FILE else 0,
                        mtime=int(m.mtime),
                        linkname=m.linkname,
                        xattrs=xattrs,
                    ),
                    sha256=sha,
                    position=pos,
                )
            )
    return out


def make_tar(members: list[tuple[str, str, bytes | str]], *, gz: bool = False) -> bytes:
    """members: (name, kind, data) with kind 'file' (data=content), 'dir', 'symlink'
    (data=target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, data in members:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_700_000_000
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            elif kind == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, str(data)
                tf.addfile(ti)
            else:
                content = data if isinstance(data, bytes) else data.encode()
                ti.size, ti.mode = len(content), 0o644
                tf.addfile(ti, io.BytesIO(content))
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if gz else raw


def open_fake_store(root: Path, *, driver: FakeDriver | None = None) -> Store:
    paths = StorePaths(root=root)
    paths.ensure()
    store = Store(
        paths=paths, db=Database(paths.db), driver=driver or FakeDriver(home=root / "fake")
    )  # type: ignore[arg-type]
    store.last_recovery = store.recover()
    return store
