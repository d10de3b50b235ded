"""The store facade: one root, its database, blobs, layers, images and driver.

Several lamina processes may share a root at once; there is no daemon.

Lock order (take them in this order, release in reverse; never the other way round):

1. the store lock — ``flock`` on ``<root>/lamina.lock`` (:meth:`Store.lock`), held only for
   short metadata sections: staging a layer, committing a blob with its record, adding or
   removing an image, mounting/unmounting (so gc cannot delete a layer between lookup and
   mount), gc, recovery. Never held while a layer is extracted.
2. a SQLite write transaction (``BEGIN IMMEDIATE``; WAL, ``busy_timeout``). Reads need neither
   lock: each statement or :meth:`Database.snapshot` sees one committed state.
3. inside the driver: a per-layer ``flock`` on the layer's mount-count file (driver/base.py
   ``MountRefs``), taken by mount/unmount/remove.

Crash safety: a layer write is announced by a ``staging`` row (with the writer's pid and start
time) before its dir exists; temp files in ``<root>/tmp`` carry a ``flock`` while their writer
lives. :meth:`Store.open` removes staging rows of dead processes with their dirs, sweeps
unheld temps, and lets the driver drop dirs no record or live writer owns. That last scan
visits every layer dir, so open runs it only when something may have crashed since the last
one: each open store holds a flocked marker in ``<root>/runtime/sessions``, removed by a
clean close; a marker nobody holds (its process died, or closed with an exception in
flight), a dead writer's staging row, a dead process's layer hold or a half-made container
is that evidence. :meth:`Store.recover` called directly always scans.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import os
import re
import sys
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from msgspec import Struct, field

from lamina.digest import Digest
from lamina.driver.base import Driver
from lamina.driver.select import NAMES, open_driver
from lamina.errors import (
    BlobNotFoundError,
    DigestMismatchError,
    LaminaError,
    SizeMismatchError,
    StoreError,
)
from lamina.store.blobs import BlobStore
from lamina.store.containers import ContainerStore
from lamina.store.db import Database
from lamina.store.images import ImageStore
from lamina.store.layers import LayerReferences, LayerStore
from lamina.store.lock import ProcessToken, StoreLock, sweep_temp
from lamina.store.paths import StorePaths
from lamina.store.volumes import VolumeStore

_DRIVER_KEY: Final = "driver"
# Set once a full recovery scan has run under session markers (stores made before them may
# hold a crash's leftovers that no marker records).
_SESSIONS_KEY: Final = "recovery-sessions"
_SESSIONS_DIR: Final = "sessions"  # under <root>/runtime
# Driver dir names the store hands out: 64-hex cache-ids (plus Docker's "-init" suffix later).
_CACHE_ID_RE: Final = re.compile(r"[0-9a-f]{64}(-init)?")


class ProblemKind(enum.Enum):
    BLOB_CORRUPT = "blob-corrupt"  # bytes do not hash to the blob's name
    BLOB_MISSING = "blob-missing"  # a record references a blob that is not there
    BLOB_ORPHAN = "blob-orphan"  # a blob no record references
    LAYER_DIR_MISSING = "layer-dir-missing"  # a layer record whose driver dir is gone
    LAYER_DIR_ORPHAN = "layer-dir-orphan"  # a driver dir no record or live writer owns
    STAGING_STALE = "staging-stale"  # a staging row of a dead process (open cleans these)


class Problem(Struct, frozen=True, kw_only=True):
    kind: ProblemKind
    subject: str  # the digest, chain_id or cache-id concerned
    detail: str

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.subject}: {self.detail}"


class GcResult(Struct, frozen=True, kw_only=True):
    layers: tuple[Digest, ...] = ()  # chain ids removed
    blobs: tuple[Digest, ...] = ()  # blobs removed


class Recovery(Struct, frozen=True, kw_only=True):
    staging: tuple[str, ...] = ()  # cache-ids of dead writers' layers removed
    driver_dirs: tuple[str, ...] = ()  # dirs the driver removed as unowned
    temps: tuple[str, ...] = ()  # names swept from tmp/
    holds: int = 0  # dead processes' layer holds dropped
    notes: tuple[str, ...] = field(default_factory=tuple)


def _hold_session_marker(directory: Path) -> tuple[Path, int]:
    """A new marker file in ``directory``, flocked for as long as this open store lives."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    while True:
        path = directory / f"{os.getpid()}-{os.urandom(8).hex()}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        # A sweeper may have locked and unlinked it between open and flock: start over.
        if os.fstat(fd).st_nlink > 0:
            return path, fd
        os.close(fd)


class Store:
    """Open with :meth:`open`; close with :meth:`close` (or ``with``)."""

    def __init__(self, *, paths: StorePaths, db: Database, driver: Driver) -> None:
        self.paths = paths
        self.db = db
        self.driver = driver
        self._lock = StoreLock(paths.lock)
        self.blobs = BlobStore(paths)
        self.layers = LayerStore(
            db=db, blobs=self.blobs, driver=driver, lock=self._lock, tmp=paths.tmp
        )
        self.images = ImageStore(db=db, blobs=self.blobs, layers=self.layers, lock=self._lock)
        # Containers keep their image and the layer their init layer sits on.
        self.containers = ContainerStore(paths=paths, db=db, driver=driver, lock=self._lock)
        self.volumes = VolumeStore(paths=paths, db=db, lock=self._lock)
        self.layers.references.append(self.containers)
        self.images.user_hooks.append(self.containers)
        self.last_recovery = Recovery()
        self._session: tuple[Path, int] | None = None  # this open's marker and its flocked fd

    @classmethod
    def open(cls, root: Path, *, driver: str | None = None) -> Store:
        """Open (creating if needed) the store at ``root`` and run recovery. The driver is
        recorded on first open; naming a different one later is an error."""
        paths = StorePaths(root=Path(root).absolute())
        try:
            paths.ensure()
        except OSError as exc:
            raise StoreError(f"cannot create the store at {paths.root}: {exc}") from exc
        db = Database(paths.db)
        try:
            recorded = db.get_meta(_DRIVER_KEY)
            if (
                driver is not None
                and recorded is not None
                and NAMES.get(driver) != NAMES.get(recorded)
            ):
                raise StoreError(
                    f"the store at {paths.root} uses the {recorded} driver, not {driver}"
                )
            drv = open_driver(
                driver if driver is not None else recorded,
                root=paths.root,
                recorded=recorded is not None,
            )
            if recorded is None:
                db.set_meta(_DRIVER_KEY, drv.name)
            elif recorded != drv.name:
                raise StoreError(
                    f"the store at {paths.root} uses the {recorded} driver, not {drv.name}"
                )
            store = cls(paths=paths, db=db, driver=drv)
            store.last_recovery = store.recover(full=False)
            store._session = _hold_session_marker(paths.runtime / _SESSIONS_DIR)
        except BaseException:
            db.close()
            raise
        return store

    @property
    def root(self) -> Path:
        return self.paths.root

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """The exclusive store lock (re-entrant within this Store). Keep sections short."""
        with self._lock.hold():
            yield

    def close(self) -> None:
        """Release this process's layer holds and close the database. Idempotent. Closed
        while an exception is in flight, the session marker is left for the next open to
        see (the failed operation may have left dirs behind)."""
        with contextlib.suppress(Exception):
            self.layers.release()
        session, self._session = self._session, None
        if session is not None:
            path, fd = session
            if sys.exc_info()[0] is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            os.close(fd)  # a marker left behind is unheld from now on: the next open scans
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()

    # -- references ------------------------------------------------------------------------

    def add_layer_references(self, hook: LayerReferences) -> None:
        """Register what else keeps layers (containers' rw layers, later)."""
        self.layers.references.append(hook)

    def _live_cache_ids(self) -> set[str]:
        conn = self.db.conn
        live = {str(r[0]) for r in conn.execute("SELECT cache_id FROM layers")}
        for cache_id, pid, start in conn.execute("SELECT cache_id, pid, pid_start FROM staging"):
            if ProcessToken(pid=pid, start=start).alive():
                live.add(str(cache_id))
        for hook in self.layers.references:
            live |= hook.live_cache_ids(conn)
        return live

    # -- recovery and gc -------------------------------------------------------------------

    def recover(self, *, full: bool = True) -> Recovery:
        """Finish what crashed processes left: their staged layers, temps and holds. The
        driver's dirs are scanned when ``full`` or when there is crash evidence (see the
        module docstring)."""
        staged: list[str] = []
        notes: list[str] = []
        with self._lock.hold():
            temps = sweep_temp(self.paths.tmp)
            crashed = full or bool(sweep_temp(self.paths.runtime / _SESSIONS_DIR))
            rows = self.db.conn.execute("SELECT cache_id, pid, pid_start FROM staging").fetchall()
            for cache_id, pid, start in rows:
                if ProcessToken(pid=pid, start=start).alive():
                    continue
                crashed = True
                try:
                    self.driver.remove(cache_id)
                except LaminaError as exc:
                    notes.append(f"staged layer {cache_id}: {exc}")
                    continue
                with self.db.transaction() as c:
                    c.execute("DELETE FROM staging WHERE cache_id = ?", (cache_id,))
                staged.append(str(cache_id))
            holds = self._drop_dead_holds()
            for cid in self.containers.recover():
                notes.append(f"container {cid[:12]}: its creator died; removed")
            unmarked = self.db.get_meta(_SESSIONS_KEY) is None
            removed: list[str] = []
            if crashed or holds or notes or unmarked:
                removed = self.driver.recover(self._live_cache_ids())
            if unmarked:
                self.db.set_meta(_SESSIONS_KEY, "1")
        return Recovery(
            staging=tuple(staged),
            driver_dirs=tuple(removed),
            temps=tuple(temps),
            holds=holds,
            notes=tuple(notes),
        )

    def _drop_dead_holds(self) -> int:
        rows = self.db.conn.execute("SELECT DISTINCT pid, pid_start FROM layer_holds").fetchall()
        dead = [(p, s) for p, s in rows if not ProcessToken(pid=p, start=s).alive()]
        if dead:
            with self.db.transaction() as c:
                c.executemany("DELETE FROM layer_holds WHERE pid = ? AND pid_start = ?", dead)
        return len(dead)

    def gc(self) -> GcResult:
        """Remove layers nothing uses (no image, child, live hold, mount or hook user), then
        blobs no record references."""
        removed_layers: list[Digest] = []
        removed_blobs: list[Digest] = []
        with self._lock.hold():
            self._drop_dead_holds()
            progress = True
            while progress:  # a removed leaf may leave its parent unused
                progress = False
                for rec in reversed(self.layers.list()):
                    try:
                        if self.layers.users(rec.chain_id):
                            continue
                    except LaminaError:
                        continue  # e.g. its dir vanished: verify reports it, gc leaves it
                    self.layers.delete_unlocked(rec)
                    removed_layers.append(rec.chain_id)
                    progress = True
            referenced = self.images.referenced_blobs() | {
                Digest(r[0]) for r in self.db.conn.execute("SELECT blob_digest FROM layers")
            }
            for d in self.blobs.iter_digests():
                if d not in referenced:
                    self.blobs.delete(d)
                    removed_blobs.append(d)
        return GcResult(layers=tuple(removed_layers), blobs=tuple(removed_blobs))

    # -- checks ----------------------------------------------------------------------------

    def verify(self) -> list[Problem]:
        """Re-hash every blob and cross-check records, blobs and driver dirs."""
        problems: list[Problem] = []
        referenced: dict[Digest, str] = {}
        with self.db.snapshot():
            layers = self.layers.list()
            images = self.images.list()
            staging = self.db.conn.execute("SELECT cache_id, pid, pid_start FROM staging")
            stale = [c for c, p, s in staging if not ProcessToken(pid=p, start=s).alive()]
            live = self._live_cache_ids()
        for rec in layers:
            referenced[rec.blob_digest] = f"layer {rec.chain_id}"
            if not self.driver.exists(rec.cache_id):
                problems.append(
                    Problem(
                        kind=ProblemKind.LAYER_DIR_MISSING,
                        subject=rec.chain_id,
                        detail=f"driver dir {rec.cache_id} is missing",
                    )
                )
        for img in images:
            referenced[img.id] = f"config of image {img.id.short}"
            referenced[img.manifest_digest] = f"manifest of image {img.id.short}"
        stored = set(self.blobs.iter_digests())
        for d, what in sorted(referenced.items()):
            if d not in stored:
                problems.append(
                    Problem(
                        kind=ProblemKind.BLOB_MISSING,
                        subject=d,
                        detail=f"{what} references a blob that is not stored",
                    )
                )
        for d in sorted(stored):
            try:
                self.blobs.verify(d)
            except (DigestMismatchError, SizeMismatchError) as exc:
                problems.append(Problem(kind=ProblemKind.BLOB_CORRUPT, subject=d, detail=str(exc)))
            except BlobNotFoundError:
                continue  # deleted meanwhile by another process
            if d not in referenced:
                problems.append(
                    Problem(
                        kind=ProblemKind.BLOB_ORPHAN,
                        subject=d,
                        detail="no record references this blob",
                    )
                )
        for name in self._driver_dirs():
            if name not in live:
                problems.append(
                    Problem(
                        kind=ProblemKind.LAYER_DIR_ORPHAN,
                        subject=name,
                        detail=f"{self.driver.home / name} has no record",
                    )
                )
        for cache_id in stale:
            problems.append(
                Problem(
                    kind=ProblemKind.STAGING_STALE,
                    subject=str(cache_id),
                    detail="left by a process that died mid-write",
                )
            )
        return problems

    def _driver_dirs(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.driver.home) if _CACHE_ID_RE.fullmatch(n))
        except FileNotFoundError:
            return []

    def info(self) -> Mapping[str, Any]:
        """Counts and sizes for ``lamina info``."""
        conn = self.db.conn
        n_layers, content = conn.execute(
            "SELECT count(*), coalesce(sum(content_size), 0) FROM layers"
        ).fetchone()
        digests = list(self.blobs.iter_digests())
        return {
            "Root": str(self.root),
            "Driver": self.driver.name,
            "Containers": conn.execute("SELECT count(*) FROM containers").fetchone()[0],
            "Images": conn.execute("SELECT count(*) FROM images").fetchone()[0],
            "Names": conn.execute("SELECT count(*) FROM names").fetchone()[0],
            "Volumes": conn.execute("SELECT count(*) FROM volumes").fetchone()[0],
            "Layers": n_layers,
            "LayersSize": content,
            "Blobs": len(digests),
            "BlobsSize": self.blobs.total_size(),
            "IndexEntries": conn.execute("SELECT count(*) FROM files").fetchone()[0],
        }
