"""Volume records: named dirs under ``<root>/volumes/<name>/_data`` that outlive containers.

Laid out as Docker's ``local`` driver does: the volume dir's ctime is its ``CreatedAt``; the
data dir ``_data`` is what a container mounts. A record is inserted after its dirs exist, so a
crash in between leaves a dir without a record, which the next create of that name adopts.
Which container uses which volume is kept in ``container_volumes`` (written by
:mod:`lamina.store.containers`); a used volume is never removed.
"""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from msgspec import Struct

from lamina.atomic import remove_tree
from lamina.errors import ConflictError, VolumeNotFoundError
from lamina.store.db import Database
from lamina.store.lock import StoreLock
from lamina.store.paths import StorePaths

DATA_DIR: Final = "_data"
# Docker's local driver: the volume dir is 0701 (traversable, not listable); the data dir is
# the root of what containers see.
VOLUME_DIR_MODE: Final = 0o701
DATA_DIR_MODE: Final = 0o755
# Docker 23+ marks anonymous volumes with this label (daemon/volume/service/service.go).
ANONYMOUS_LABEL: Final = "com.docker.volume.anonymous"


class VolumeRecord(Struct, frozen=True, kw_only=True):
    name: str
    created: float  # unix time the record was made
    labels: Mapping[str, str]
    options: Mapping[str, str] | None  # the local driver's -o; None: made by a container
    anonymous: bool
    mountpoint: Path  # <root>/volumes/<name>/_data
    directory: Path  # <root>/volumes/<name>


class VolumeStore:
    def __init__(self, *, paths: StorePaths, db: Database, lock: StoreLock) -> None:
        self._paths = paths
        self._db = db
        self._lock = lock

    def _record(self, row: tuple[object, ...]) -> VolumeRecord:
        name, created, labels, options, anonymous = row
        directory = self._paths.volume(str(name))
        return VolumeRecord(
            name=str(name),
            created=float(created),  # type: ignore[arg-type]
            labels=json.loads(str(labels)),
            options=json.loads(str(options)),
            anonymous=bool(anonymous),
            mountpoint=directory / DATA_DIR,
            directory=directory,
        )

    _COLUMNS: Final = "name, created, labels, options, anonymous"

    # -- reads ----------------------------------------------------------------------------

    def find(self, name: str) -> VolumeRecord | None:
        row = self._db.conn.execute(
            f"SELECT {self._COLUMNS} FROM volumes WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else self._record(row)

    def get(self, name: str) -> VolumeRecord:
        rec = self.find(name)
        if rec is None:
            raise VolumeNotFoundError(f"no such volume: {name}")
        return rec

    def list(self) -> builtins.list[VolumeRecord]:
        rows = self._db.conn.execute(f"SELECT {self._COLUMNS} FROM volumes ORDER BY name")
        return [self._record(r) for r in rows.fetchall()]

    def users(self, name: str) -> builtins.list[tuple[str, str]]:
        """(container id, container name) of every container that mounts the volume."""
        return users_in(self._db.conn, name)

    # -- writes ---------------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        labels: Mapping[str, str] | None = None,
        options: Mapping[str, str] | None = None,
        anonymous: bool = False,
    ) -> tuple[VolumeRecord, bool]:
        """Make the volume (its dirs, then its record); return it and whether it is new. An
        existing volume of that name is returned as it is (as ``docker volume create``).
        ``options`` are the local driver's (``-o``, checked by the caller; see
        :mod:`lamina.store.volume_mount`): None for a volume a container made (Docker's inspect
        shows null for it, ``{}`` for one ``volume create`` made without options)."""
        directory = self._paths.volume(name)  # validates the name
        with self._lock.hold():
            existing = self.find(name)
            if existing is not None:
                return existing, False
            # Reuse a dir a crash left without a record; otherwise make it fresh.
            for d, mode in ((directory, VOLUME_DIR_MODE), (directory / DATA_DIR, DATA_DIR_MODE)):
                try:
                    os.mkdir(d, mode)
                    os.chmod(d, mode)  # mkdir's mode is narrowed by the umask
                except FileExistsError:
                    pass
            all_labels = dict(labels or {})
            if anonymous:
                all_labels.setdefault(ANONYMOUS_LABEL, "")
            with self._db.transaction() as c:
                c.execute(
                    "INSERT INTO volumes(name, created, labels, options, anonymous) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (
                        name,
                        time.time(),
                        json.dumps(all_labels),
                        json.dumps(None if options is None else dict(options)),
                        int(anonymous),
                    ),
                )
            return self.get(name), True

    def remove(self, name: str) -> None:
        """Delete the record, then the dirs. Raises ConflictError naming the containers that
        use it, VolumeNotFoundError when there is no such volume."""

        with self._lock.hold():
            rec = self.get(name)
            users = self.users(name)
            if users:
                named = ", ".join(f"{cid[:12]} ({cname})" for cid, cname in users)
                raise ConflictError(f"remove {name}: volume is in use by container {named}")
            if rec.options:
                # Never rmtree through a mounted device (a bind's is the user's own dir).
                from lamina.store.volume_mount import unmount

                unmount(rec.mountpoint)
            with self._db.transaction() as c:
                c.execute("DELETE FROM volumes WHERE name = ?", (name,))
        # Record first: a crash before the rmtree leaves a dir that a later create adopts.
        remove_tree(rec.directory, ignore_errors=True)

    def activate(self, rec: VolumeRecord) -> None:
        """Mount an ``-o`` volume's device on its data dir unless it is mounted already (a
        container is about to use it). Nothing for a plain volume. Raises MountError."""
        if not rec.options:
            return
        from lamina.driver.mountinfo import is_mounted
        from lamina.store.volume_mount import mount

        with self._lock.hold():
            if not is_mounted(rec.mountpoint):
                mount(rec.options, rec.mountpoint)

    def deactivate(self, rec: VolumeRecord, *, in_use: Callable[[], bool]) -> None:
        """Unmount an ``-o`` volume's device unless ``in_use()`` says a container still uses
        it (asked under the store lock, so a start that activates it cannot slip between)."""
        if not rec.options:
            return
        from lamina.store.volume_mount import unmount

        with self._lock.hold():
            if not in_use():
                unmount(rec.mountpoint)

    def created_at(self, rec: VolumeRecord) -> float:
        """Docker's CreatedAt source: the volume dir's ctime."""
        try:
            return rec.directory.stat().st_ctime
        except FileNotFoundError:
            return rec.created


def users_in(conn: sqlite3.Connection, name: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT c.id, c.name FROM container_volumes v JOIN containers c ON c.id = v.container "
        "WHERE v.volume = ? ORDER BY c.created, c.id",
        (name,),
    )
    return [(str(a), str(b)) for a, b in rows.fetchall()]
