"""Image records: id = config digest, the manifest and config kept as blobs (the bytes that were
hashed, never re-serialised), the ordered layer chain ids, and names.

A name points at exactly one image; tagging a name that points elsewhere moves it. Names are
stored exactly as given: normalising references is the engine's job (``oci/reference.py``).
"""

from __future__ import annotations

import builtins
import itertools
import sqlite3
import time
from collections.abc import Collection, Sequence
from typing import Final

from msgspec import Struct

from lamina.digest import Digest
from lamina.errors import (
    ImageInUseError,
    ImageNotFoundError,
    InvalidContentError,
    StoreError,
    UsageError,
)
from lamina.store.blobs import BlobStore
from lamina.store.db import Database
from lamina.store.layers import LayerStore
from lamina.store.lock import ProcessToken, StoreLock

_COLUMNS: Final = (
    "id, manifest_digest, manifest_media_type, top_layer, created, added, last_tag_time, "
    "built_locally, size"
)


class ImageRecord(Struct, frozen=True, kw_only=True):
    id: Digest  # the config digest
    manifest_digest: Digest
    manifest_media_type: str
    top_layer: Digest | None  # chain_id of the top layer; None for an image without layers
    layers: tuple[Digest, ...]  # chain ids, bottom first
    names: tuple[str, ...]  # sorted
    created: str | None  # from the config, as given
    added: float  # unix time the record was first stored
    last_tag_time: float | None  # unix time a name last moved to this image
    built_locally: bool  # eligible for the classic build cache (CVE-2024-24557)
    size: int  # sum of the layers' content_size (Docker's image Size)


class ImageUsers:
    """Hook for what besides names keeps an image (containers, later): return short phrases."""

    def image_users(self, conn: sqlite3.Connection, image_id: Digest) -> list[str]:
        return []


class ImageStore:
    def __init__(
        self,
        *,
        db: Database,
        blobs: BlobStore,
        layers: LayerStore,
        lock: StoreLock,
        users: Collection[ImageUsers] = (),
    ) -> None:
        self._db = db
        self._blobs = blobs
        self._layers = layers
        self._lock = lock
        self._token = ProcessToken.current()
        self.user_hooks: list[ImageUsers] = list(users)

    # -- writes ---------------------------------------------------------------------------

    def add(
        self,
        *,
        config_bytes: bytes,
        manifest_bytes: bytes,
        manifest_media_type: str,
        layers: Sequence[Digest],
        names: Sequence[str],
        created: str | None,
        built_locally: bool = False,
    ) -> ImageRecord:
        """Store an image whose layers (chain ids, bottom first) are already stored. Idempotent
        for the same config: an existing record keeps its manifest and gains ``names``. Releases
        this process's ingest holds on ``layers``."""
        image_id = Digest.of(config_bytes)
        manifest_digest = Digest.of(manifest_bytes)
        chain = [Digest(d) for d in layers]
        with self._lock.hold():
            records = [self._layers.get(d) for d in chain]
            for below, above in itertools.pairwise(records):
                if above.parent != below.chain_id:
                    raise InvalidContentError(
                        f"layer {above.chain_id} does not sit on {below.chain_id}"
                    )
            if records and records[0].parent is not None:
                raise InvalidContentError(f"layer {records[0].chain_id} is not a base layer")
            # Blobs and the record under one lock hold, so gc never sees the blobs unreferenced.
            self._blobs.put_bytes(config_bytes, expected=image_id)
            self._blobs.put_bytes(manifest_bytes, expected=manifest_digest)
            now = time.time()
            with self._db.transaction() as c:
                exists = c.execute("SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone()
                if exists is None:
                    c.execute(
                        f"INSERT INTO images({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
                        (
                            image_id,
                            manifest_digest,
                            manifest_media_type,
                            chain[-1] if chain else None,
                            created,
                            now,
                            None,
                            int(built_locally),
                            sum(r.content_size for r in records),
                        ),
                    )
                    c.executemany(
                        "INSERT INTO image_layers(image, position, chain_id) VALUES (?,?,?)",
                        [(image_id, i, d) for i, d in enumerate(chain)],
                    )
                elif built_locally:
                    c.execute("UPDATE images SET built_locally = 1 WHERE id = ?", (image_id,))
                for name in names:
                    self._set_name(c, name, image_id, now)
                c.executemany(
                    "DELETE FROM layer_holds WHERE chain_id = ? AND pid = ? AND pid_start = ?",
                    [(d, self._token.pid, self._token.start) for d in chain],
                )
        return self.get(image_id)

    def tag(self, image_id: Digest, name: str) -> None:
        """Point ``name`` at the image (moving it from another image if need be)."""
        with self._db.transaction() as c:
            if c.execute("SELECT 1 FROM images WHERE id = ?", (str(image_id),)).fetchone() is None:
                raise ImageNotFoundError(f"image {image_id} not found")
            self._set_name(c, name, Digest(image_id), time.time())

    def untag(self, name: str) -> Digest:
        """Remove ``name``; return the image it pointed at. The image itself stays."""
        with self._db.transaction() as c:
            row = c.execute("SELECT image FROM names WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise ImageNotFoundError(f"no image is named {name!r}")
            c.execute("DELETE FROM names WHERE name = ?", (name,))
        return Digest(str(row[0]))

    def remove(self, image_id: Digest, *, force: bool = False) -> None:
        """Delete the record and its names, and its config/manifest blobs unless another image
        shares them. Layers stay until ``gc`` (or ``LayerStore.remove``). Raises ImageInUseError
        while another image was built on it (its ``Parent``), and, unless ``force``, while a
        user hook reports users. A forced delete leaves a container its layers: they are kept
        by the container's own layer reference, not by the image."""
        d = Digest(image_id)
        with self._lock.hold():
            rec = self.get(d)
            users = [] if force else self.users(d)
            if users:
                raise ImageInUseError(f"image {d.short} is in use by {', '.join(users)}")
            with self._db.transaction() as c:
                # In the delete's transaction: a build recording a child meanwhile wins.
                if c.execute(
                    "SELECT 1 FROM build_cache WHERE parent = ? LIMIT 1", (str(d),)
                ).fetchone():
                    raise ImageInUseError(f"image {d.short} has dependent child images")
                c.execute("DELETE FROM images WHERE id = ?", (d,))
                shared = c.execute(
                    "SELECT 1 FROM images WHERE manifest_digest = ? LIMIT 1",
                    (rec.manifest_digest,),
                ).fetchone()
            self._blobs.delete(d)
            if shared is None:
                self._blobs.delete(rec.manifest_digest)

    def _set_name(self, c: sqlite3.Connection, name: str, image_id: Digest, now: float) -> None:
        if not name:
            raise UsageError("an image name cannot be empty")
        c.execute(
            "INSERT INTO names(name, image, tagged) VALUES (?, ?, ?) ON CONFLICT(name) DO "
            "UPDATE SET image = excluded.image, tagged = excluded.tagged",
            (name, image_id, now),
        )
        c.execute("UPDATE images SET last_tag_time = ? WHERE id = ?", (now, image_id))

    # -- reads ----------------------------------------------------------------------------

    def users(self, image_id: Digest) -> list[str]:
        """What keeps the image besides its names (containers, later): short phrases."""
        return [u for h in self.user_hooks for u in h.image_users(self._db.conn, image_id)]

    def find(self, image_id: Digest) -> ImageRecord | None:
        with self._db.snapshot() as c:
            row = c.execute(
                f"SELECT {_COLUMNS} FROM images WHERE id = ?", (str(image_id),)
            ).fetchone()
            return None if row is None else self._record(c, row)

    def get(self, image_id: Digest) -> ImageRecord:
        rec = self.find(image_id)
        if rec is None:
            raise ImageNotFoundError(f"image {image_id} not found")
        return rec

    def find_by_name(self, name: str) -> ImageRecord | None:
        row = self._db.conn.execute("SELECT image FROM names WHERE name = ?", (name,)).fetchone()
        return None if row is None else self.find(Digest(str(row[0])))

    def resolve_prefix(self, hex_prefix: str) -> ImageRecord | None:
        """The image whose id hex starts with ``hex_prefix`` (``sha256:`` optional); None when
        none does; UsageError when several do."""
        prefix = hex_prefix.removeprefix("sha256:")
        if not prefix or any(ch not in "0123456789abcdef" for ch in prefix) or len(prefix) > 64:
            return None
        rows = self._db.conn.execute(
            "SELECT id FROM images WHERE id >= ? AND id < ? LIMIT 2",
            (f"sha256:{prefix}", f"sha256:{prefix}g"),  # 'g' sorts after every hex digit
        ).fetchall()
        if len(rows) > 1:
            raise UsageError(f"image id prefix {prefix!r} is ambiguous: it matches several images")
        return self.find(Digest(str(rows[0][0]))) if rows else None

    def list(self) -> list[ImageRecord]:
        with self._db.snapshot() as c:
            rows = c.execute(f"SELECT {_COLUMNS} FROM images ORDER BY added, id").fetchall()
            return [self._record(c, r) for r in rows]

    def referenced_blobs(self) -> builtins.set[Digest]:
        """Config and manifest digests of every image."""
        out: set[Digest] = set()
        for image_id, manifest in self._db.conn.execute("SELECT id, manifest_digest FROM images"):
            out.add(Digest(image_id))
            out.add(Digest(manifest))
        return out

    @staticmethod
    def _record(c: sqlite3.Connection, row: Sequence[object]) -> ImageRecord:
        (image_id, manifest, mt, top, created, added, tagged, built, size) = row
        layers = tuple(
            Digest(r[0])
            for r in c.execute(
                "SELECT chain_id FROM image_layers WHERE image = ? ORDER BY position", (image_id,)
            )
        )
        names = tuple(
            str(r[0])
            for r in c.execute("SELECT name FROM names WHERE image = ? ORDER BY name", (image_id,))
        )
        if (layers[-1] if layers else None) != top:
            raise StoreError(f"image {image_id}: layer list does not end at its top layer")
        return ImageRecord(
            id=Digest(str(image_id)),
            manifest_digest=Digest(str(manifest)),
            manifest_media_type=str(mt),
            top_layer=Digest(str(top)) if top is not None else None,
            layers=layers,
            names=names,
            created=None if created is None else str(created),
            added=float(added),  # type: ignore[arg-type]
            last_tag_time=None if tagged is None else float(tagged),  # type: ignore[arg-type]
            built_locally=bool(built),
            size=int(size),  # type: ignore[call-overload]
        )
