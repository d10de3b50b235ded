"""Layer records: unpacked layers on disk, keyed by chain_id, with their file index.

A record's driver dir is named by a random ``cache_id`` (never a digest: content-derived dir
names are a poisoning hazard, CVE-2014-8178). :meth:`LayerStore.ingest` is the one pass per
layer: stream → (decompress) → blob digest and diff_id → extract → file-index rows, with the raw
bytes teed into the blob store and the rows streamed to a staging file (``index.StagedRows``),
so memory stays flat whatever the layer's entry count. Crash safety: a ``staging`` row is
committed before the driver dir exists and deleted in the transaction that inserts the record,
so ``Store.open`` can tell a half-written layer of a dead process and remove it.
"""

from __future__ import annotations

import builtins
import os
import sqlite3
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final, Protocol, cast

from msgspec import Struct

from lamina.archive.entry import IndexEntry
from lamina.digest import Digest, chain_ids
from lamina.errors import LayerInUseError, LayerNotFoundError, StoreError
from lamina.store import index
from lamina.store.blobs import BlobStore, BlobWriter
from lamina.store.db import Database
from lamina.store.lock import ProcessToken, StoreLock

if TYPE_CHECKING:
    from lamina.archive.apply import ApplyResult, Limits
    from lamina.archive.compression import Compression
    from lamina.driver.base import Driver

# The media type a blob gets when the caller lets the detected compression decide (import).
# The name a layer's staged index rows are attached under while they are copied into ``files``.
_STAGED: Final = "staged"

_OCI_LAYER_TYPES: Final = {
    "NONE": "application/vnd.oci.image.layer.v1.tar",
    "GZIP": "application/vnd.oci.image.layer.v1.tar+gzip",
    "ZSTD": "application/vnd.oci.image.layer.v1.tar+zstd",
}

_RECORD_COLUMNS: Final = (
    "id, chain_id, parent, diff_id, blob_digest, media_type, blob_size, diff_size, "
    "content_size, cache_id, entry_count, created"
)


class LayerRecord(Struct, frozen=True, kw_only=True):
    chain_id: Digest
    parent: Digest | None  # the parent's chain_id
    diff_id: Digest
    blob_digest: Digest
    media_type: str
    blob_size: int  # bytes of the blob as stored (maybe compressed)
    diff_size: int  # bytes of the uncompressed tar
    content_size: int  # sum of regular-file sizes: Docker's layer Size
    cache_id: str  # the driver's layer id (random)
    entry_count: int  # rows in the file index
    created: float  # unix time the record was committed
    index_key: int  # the layer's key in the file index (``files.layer``)


class LayerReferences(Protocol):
    """Something besides images and child layers that keeps layers alive (containers' rw layers,
    later). Both methods run inside the caller's transaction or snapshot."""

    def layer_users(self, conn: sqlite3.Connection, chain_id: Digest) -> list[str]:
        """What uses ``chain_id``, as short human phrases ("container 3f2a…"); [] when nothing."""
        ...

    def live_cache_ids(self, conn: sqlite3.Connection) -> set[str]:
        """Driver layer ids this component owns, which recovery must keep."""
        ...


def new_cache_id() -> str:
    """A random 64-hex driver layer id, as Docker's."""
    return os.urandom(32).hex()


def _record(row: tuple[object, ...]) -> LayerRecord:
    (rowid, chain, parent, diff, blob, mt, bsize, dsize, csize, cache, count, created) = row
    return LayerRecord(
        chain_id=Digest(str(chain)),
        parent=Digest(str(parent)) if parent is not None else None,
        diff_id=Digest(str(diff)),
        blob_digest=Digest(str(blob)),
        media_type=str(mt),
        blob_size=int(bsize),  # type: ignore[call-overload]
        diff_size=int(dsize),  # type: ignore[call-overload]
        content_size=int(csize),  # type: ignore[call-overload]
        cache_id=str(cache),
        entry_count=int(count),  # type: ignore[call-overload]
        created=float(created),  # type: ignore[arg-type]
        index_key=int(rowid),  # type: ignore[call-overload]
    )


class LayerStore:
    def __init__(
        self,
        *,
        db: Database,
        blobs: BlobStore,
        driver: Driver,
        lock: StoreLock,
        tmp: Path,
        references: Collection[LayerReferences] = (),
    ) -> None:
        self._db = db
        self._tmp = tmp  # <root>/tmp: staged index rows
        self._blobs = blobs
        self._driver = driver
        self._lock = lock
        self._token = ProcessToken.current()
        self.references: list[LayerReferences] = list(references)
        self._symlinks: dict[Digest, frozenset[str]] = {}

    # -- lookups --------------------------------------------------------------------------

    def find(self, chain_id: Digest) -> LayerRecord | None:
        row = self._db.conn.execute(
            f"SELECT {_RECORD_COLUMNS} FROM layers WHERE chain_id = ?", (str(chain_id),)
        ).fetchone()
        return None if row is None else _record(row)

    def get(self, chain_id: Digest) -> LayerRecord:
        rec = self.find(chain_id)
        if rec is None:
            raise LayerNotFoundError(f"layer {chain_id} not found")
        return rec

    def list(self) -> list[LayerRecord]:
        cur = self._db.conn.execute(f"SELECT {_RECORD_COLUMNS} FROM layers ORDER BY id")
        return [_record(r) for r in cur]

    def chain(self, chain_id: Digest) -> builtins.list[LayerRecord]:
        """The records from the base layer up to ``chain_id`` (bottom first)."""
        cur = self._db.conn.execute(
            f"""WITH RECURSIVE up(cid, depth) AS (
                    SELECT ?, 0
                    UNION ALL
                    SELECT layers.parent, up.depth + 1 FROM layers JOIN up
                        ON layers.chain_id = up.cid WHERE layers.parent IS NOT NULL)
                SELECT {_RECORD_COLUMNS} FROM up JOIN layers ON layers.chain_id = up.cid
                ORDER BY up.depth DESC""",
            (str(chain_id),),
        )
        records = [_record(r) for r in cur]
        if not records or records[-1].chain_id != chain_id:
            raise LayerNotFoundError(f"layer {chain_id} not found")
        if records[0].parent is not None:
            raise StoreError(f"layer chain of {chain_id} is broken at {records[0].parent}")
        return records

    # -- the file index -------------------------------------------------------------------

    def entries(self, chain_id: Digest) -> builtins.list[IndexEntry]:
        """The layer's own file-index rows, in tar order."""
        return index.layer_entries(self._db.conn, self.get(chain_id).index_key)

    def merged_view(self, chain_id: Digest) -> dict[str, IndexEntry]:
        """path → effective entry of the chain ending at ``chain_id`` (whiteouts applied)."""
        with self._db.snapshot() as conn:
            return index.merged_view(conn, [r.index_key for r in self.chain(chain_id)])

    def path_history(
        self, chain_id: Digest, path: str
    ) -> builtins.list[tuple[LayerRecord, IndexEntry]]:
        """Every row of ``path`` or its ancestors in the chain, bottom layer first."""
        with self._db.snapshot() as conn:
            records = self.chain(chain_id)
            rows = index.path_history(conn, [r.index_key for r in records], path)
        return [(records[i], row) for i, row in rows]

    def merged_symlinks(self, chain_id: Digest) -> frozenset[str]:
        """Paths that are symlinks in the merged view of the chain ending at ``chain_id``."""
        # A chain_id names immutable content, so its set can be cached for the process's life.
        cached = self._symlinks.get(chain_id)
        if cached is not None:
            return cached
        links: frozenset[str] = frozenset()
        with self._db.snapshot() as conn:
            for rec in self.chain(chain_id):
                hit = self._symlinks.get(rec.chain_id)
                links = hit if hit is not None else index.symlinks_after(conn, rec.index_key, links)
                self._symlinks[rec.chain_id] = links
        return links

    # -- ingest ---------------------------------------------------------------------------

    def ingest(
        self,
        source: IO[bytes],
        *,
        parent: Digest | None,
        media_type: str | None,
        declared: Compression | None = None,
        expected_blob_digest: Digest | None = None,
        expected_blob_size: int | None = None,
        expected_diff_id: Digest | None = None,
        limits: Limits | None = None,
    ) -> LayerRecord:
        """Unpack one layer tar on top of ``parent`` and record it, in one pass over ``source``.

        ``media_type=None`` records the OCI layer type of the detected compression. When
        ``expected_diff_id`` is given and that chain is already stored with its blob, nothing is
        read. A refused or failed ingest leaves no blob, layer dir or record behind. The record
        returned is held for this process until an image references it (or the store closes),
        so a concurrent ``gc`` cannot take it."""
        parent_rec = self._hold_parent(parent) if parent is not None else None
        if expected_diff_id is not None:
            chain = chain_ids([parent, expected_diff_id])[1] if parent else expected_diff_id
            held = self._hold_existing(Digest(chain))
            if held is not None:
                return held
        cache_id = new_cache_id()
        self._stage(cache_id)
        try:
            self._driver.create(cache_id, parent=parent_rec.cache_id if parent_rec else None)
            lower = self.merged_symlinks(parent_rec.chain_id) if parent_rec else frozenset()
            # apply_layer hashes the very bytes it tees here: the writer need not hash again.
            with self._blobs.writer(hashing=False) as w, index.staged_rows(self._tmp) as rows:
                result = self._driver.apply(
                    cache_id, source, declared=declared,
                    expected_blob_digest=expected_blob_digest,
                    expected_blob_size=expected_blob_size, expected_diff_id=expected_diff_id,
                    tee=cast(IO[bytes], w), lower_symlinks=lower, limits=limits, rows=rows.add,
                )  # fmt: skip
                if w.size != result.blob_size:
                    raise StoreError(
                        f"the blob teed during apply ({w.size} bytes) differs from what apply "
                        f"read ({result.blob_size} bytes)"
                    )
                if rows.count != result.entry_count:
                    raise StoreError(
                        f"apply staged {rows.count} index rows of a layer of "
                        f"{result.entry_count} entries"
                    )
                mt = media_type or _OCI_LAYER_TYPES[result.compression.name]
                rec, ours = self._commit(cache_id, parent_rec, result, mt, w, rows)
        except BaseException as exc:
            self._discard(cache_id, exc)
            raise
        if not ours:
            # Another process stored the same chain meanwhile: keep theirs, drop our copy.
            self._discard(cache_id, None)
        return rec

    def _stage(self, cache_id: str) -> None:
        # Under the store lock, so recovery (which also holds it) either sees this row or runs
        # before the driver dir exists.
        with self._lock.hold(), self._db.transaction() as c:
            c.execute(
                "INSERT INTO staging(cache_id, pid, pid_start, purpose, created) "
                "VALUES (?, ?, ?, 'ingest', ?)",
                (cache_id, self._token.pid, self._token.start, time.time()),
            )

    def _hold_parent(self, chain_id: Digest) -> LayerRecord:
        # The new layer is built from its parent's dirs (vfs copies them, overlay stacks them):
        # hold the parent so a concurrent remove or gc cannot take it mid-ingest.
        with self._lock.hold(), self._db.transaction() as c:
            rec = self.get(chain_id)
            self._hold(c, chain_id)
            return rec

    def _hold_existing(self, chain_id: Digest) -> LayerRecord | None:
        with self._lock.hold(), self._db.transaction() as c:
            rec = self.find(chain_id)
            if rec is None or not self._blobs.exists(rec.blob_digest):
                return None
            self._hold(c, chain_id)
            return rec

    def _hold(self, c: sqlite3.Connection, chain_id: Digest) -> None:
        c.execute(
            "INSERT OR IGNORE INTO layer_holds(chain_id, pid, pid_start) VALUES (?, ?, ?)",
            (str(chain_id), self._token.pid, self._token.start),
        )

    def _commit(
        self,
        cache_id: str,
        parent: LayerRecord | None,
        result: ApplyResult,
        media_type: str,
        writer: BlobWriter,
        rows: index.StagedRows,
    ) -> tuple[LayerRecord, bool]:
        diff_id = Digest(result.diff_id)
        chain = Digest(chain_ids([parent.chain_id, diff_id])[1]) if parent else diff_id
        blob = Digest(result.blob_digest)
        with self._lock.hold(), self._db.attached(rows.path, schema=_STAGED):
            blob_is_new = not self._blobs.exists(blob)
            with self._db.transaction() as c:
                existing = self.find(chain)
                c.execute("DELETE FROM staging WHERE cache_id = ?", (cache_id,))
                if existing is not None:
                    if existing.blob_digest == blob and blob_is_new:
                        writer.commit(expected=blob)  # theirs lost its blob: repair it
                    self._hold(c, chain)
                    return existing, False
                # Blob first, record second: a crash in between leaves an unreferenced blob
                # for gc, never a record whose blob is missing.
                writer.commit(expected=blob)
                try:
                    cur = c.execute(
                        "INSERT INTO layers(chain_id, parent, diff_id, blob_digest, media_type, "
                        "blob_size, diff_size, content_size, cache_id, entry_count, created) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        (
                            chain,
                            parent.chain_id if parent else None,
                            diff_id,
                            blob,
                            media_type,
                            result.blob_size,
                            result.diff_size,
                            result.content_size,
                            cache_id,
                            rows.count,
                            time.time(),
                        ),
                    )
                    rowid = int(cur.lastrowid or 0)
                    index.insert_staged(c, rowid, schema=_STAGED)
                    self._hold(c, chain)
                except BaseException:
                    if blob_is_new:
                        self._blobs.delete(blob)
                    raise
            return self.get(chain), True

    def _discard(self, cache_id: str, cause: BaseException | None) -> None:
        """Remove a staged layer's dir, then its staging row (in that order, so a failure here
        leaves a row that recovery finishes once this process is gone)."""
        try:
            self._driver.remove(cache_id)
        except Exception as exc:
            if cause is not None:
                cause.add_note(f"also failed to remove staged layer {cache_id}: {exc}")
            return
        with self._db.transaction() as c:
            c.execute("DELETE FROM staging WHERE cache_id = ?", (cache_id,))

    def release(self, chain_ids_: Collection[Digest] | None = None) -> None:
        """Drop this process's holds (on ``chain_ids_``, or all of them)."""
        with self._db.transaction() as c:
            if chain_ids_ is None:
                c.execute(
                    "DELETE FROM layer_holds WHERE pid = ? AND pid_start = ?",
                    (self._token.pid, self._token.start),
                )
            else:
                c.executemany(
                    "DELETE FROM layer_holds WHERE chain_id = ? AND pid = ? AND pid_start = ?",
                    [(str(d), self._token.pid, self._token.start) for d in chain_ids_],
                )

    def reextract(self, chain_id: Digest) -> None:
        """Unpack the layer again from its verified blob into a fresh driver dir and swap that
        dir in for the layer's own (``verify --deep --repair``); the old content goes with the
        temporary layer. Refused (LayerInUseError) while a mount reads the layer: its own, or a
        layer stacked on it. The record, cache-id and overlay short link stay as they are."""
        rec = self.get(chain_id)
        with self._lock.hold():
            self._refuse_mounted(chain_id)
        parent = self.get(rec.parent) if rec.parent is not None else None
        tmp = new_cache_id()
        self._stage(tmp)
        try:
            self._driver.create(tmp, parent=parent.cache_id if parent else None)
            lower = self.merged_symlinks(parent.chain_id) if parent else frozenset()
            with self._blobs.open(rec.blob_digest) as blob:
                result = self._driver.apply(
                    tmp,
                    cast(IO[bytes], blob),
                    expected_blob_digest=rec.blob_digest,
                    expected_blob_size=rec.blob_size,
                    expected_diff_id=rec.diff_id,
                    lower_symlinks=lower,
                )
            if result.entry_count != rec.entry_count:
                raise StoreError(
                    f"layer {chain_id}: re-extraction gave {result.entry_count} entries, "
                    f"the index has {rec.entry_count}"
                )
            # Mounts take the store lock too: checked again here, none can start mid-swap.
            with self._lock.hold():
                self._refuse_mounted(chain_id)
                _exchange(self._driver.apply_dir(tmp), self._driver.apply_dir(rec.cache_id))
        except BaseException as exc:
            self._discard(tmp, exc)
            raise
        self._discard(tmp, None)

    def _refuse_mounted(self, chain_id: Digest) -> None:
        mounted = [
            r.chain_id
            for r in self.list()
            if self._driver.mount_count(r.cache_id) > 0
            and chain_id in {x.chain_id for x in self.chain(r.chain_id)}
        ]
        if mounted:
            raise LayerInUseError(
                f"layer {chain_id} is read by a mount (of {', '.join(mounted)}); unmount first"
            )

    # -- users, removal -------------------------------------------------------------------

    def users(self, chain_id: Digest) -> builtins.list[str]:
        """What keeps the layer: images, child layers, live holds, mounts, references hooks."""
        conn = self._db.conn
        out = [
            f"image {r[0]}"
            for r in conn.execute(
                "SELECT DISTINCT image FROM image_layers WHERE chain_id = ?", (str(chain_id),)
            )
        ]
        out += [
            f"layer {r[0]}"
            for r in conn.execute("SELECT chain_id FROM layers WHERE parent = ?", (str(chain_id),))
        ]
        for pid, start in conn.execute(
            "SELECT pid, pid_start FROM layer_holds WHERE chain_id = ?", (str(chain_id),)
        ):
            if ProcessToken(pid=pid, start=start).alive():
                out.append(f"process {pid} (importing)")
        for hook in self.references:
            out += hook.layer_users(conn, chain_id)
        rec = self.find(chain_id)
        if rec is not None and self._driver.mount_count(rec.cache_id) > 0:
            out.append("a mount")
        return out

    def remove(self, chain_id: Digest) -> None:
        """Delete the record, its index rows, its dir and its blob (unless shared). Raises
        LayerInUseError while anything in :meth:`users` holds it."""
        with self._lock.hold():
            rec = self.get(chain_id)
            users = self.users(chain_id)
            if users:
                raise LayerInUseError(f"layer {chain_id} is in use by {', '.join(users)}")
            self.delete_unlocked(rec)

    def remove_chain(self, top: Digest) -> builtins.list[Digest]:
        """Remove the chain ending at ``top``, top down, until a layer something still needs
        (see :meth:`users`) or one already gone; return the chain ids removed."""
        try:
            chain = self.chain(top)
        except LayerNotFoundError:
            return []
        removed: builtins.list[Digest] = []
        for rec in reversed(chain):
            try:
                self.remove(rec.chain_id)
            except (LayerInUseError, LayerNotFoundError):
                break
            removed.append(rec.chain_id)
        return removed

    def delete_unlocked(self, rec: LayerRecord) -> None:
        """Delete without the users check; the caller holds the store lock and checked."""
        with self._db.transaction() as c:
            c.execute("DELETE FROM layer_holds WHERE chain_id = ?", (str(rec.chain_id),))
            c.execute("DELETE FROM layers WHERE chain_id = ?", (str(rec.chain_id),))
            shared = c.execute(
                "SELECT 1 FROM layers WHERE blob_digest = ? UNION ALL "
                "SELECT 1 FROM images WHERE id = ? OR manifest_digest = ? LIMIT 1",
                (str(rec.blob_digest),) * 3,
            ).fetchone()
        # Record first, dir second: a crash between leaves an orphan dir that recovery removes
        # (it is not in the live set), never a record without its dir.
        self._driver.remove(rec.cache_id)
        if shared is None:
            self._blobs.delete(rec.blob_digest)

    # -- mounts ---------------------------------------------------------------------------

    def mount(self, chain_id: Digest) -> Path:
        """Mount the chain ending at ``chain_id`` read-only; return the merged dir. Each mount
        needs one :meth:`unmount`."""
        # Under the store lock so gc cannot remove the layer between lookup and mount.
        with self._lock.hold():
            return self._driver.mount(self.get(chain_id).cache_id)

    def unmount(self, chain_id: Digest) -> None:
        with self._lock.hold():
            self._driver.unmount(self.get(chain_id).cache_id)

    def mount_count(self, chain_id: Digest) -> int:
        return self._driver.mount_count(self.get(chain_id).cache_id)

    def metadata(self, chain_id: Digest) -> Mapping[str, str]:
        """Docker's GraphDriver.Data for the layer's dirs."""
        return self._driver.metadata(self.get(chain_id).cache_id)


_RENAME_EXCHANGE: Final = 2  # linux/fs.h


def _exchange(a: Path, b: Path) -> None:
    """Swap two paths atomically (``renameat2(RENAME_EXCHANGE)``): no moment without either."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd = -100
    rc = libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if rc != 0:
        err = ctypes.get_errno()
        raise StoreError(f"cannot swap {a} and {b}: {os.strerror(err)}")
