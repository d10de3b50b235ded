"""Container records and their storage: image layers + an init layer + a writable layer.

As Docker's overlay2 lays a container out (formats.md §2.7)::

    <driver home>/<mount_id>-init/   the init layer: empty placeholders for the files that are
                                     bind-mounted at run time (/etc/hosts, /etc/resolv.conf,
                                     /etc/hostname, /dev/console, /.dockerenv), the /dev/pts,
                                     /dev/shm, /proc, /sys mount points, /etc/mtab -> /proc/mounts
    <driver home>/<mount_id>/        the rw layer on top of it (UpperDir, WorkDir, MergedDir)
    <root>/containers/<id>/          the runtime bundle (config.json), hostname, hosts,
                                     resolv.conf and <id>-json.log

``diff`` and ``commit`` are the rw layer's changes against its parent chain, whose top is the
init layer, so the placeholders never show (moby ``mountedLayer.cacheParent``).

Crash safety: a row is inserted *incomplete* (with the creating process's pid and start time)
before any layer exists and completed once both layers do. While the creator lives its layers
count as live; once it is dead, :meth:`ContainerStore.recover` drops the row and the driver's
recovery removes the dirs no row claims.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import re
import sqlite3
import stat
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

from msgspec import Struct

from lamina.atomic import remove_tree
from lamina.digest import Digest
from lamina.driver.base import Driver
from lamina.errors import (
    AmbiguousIdError,
    ConflictError,
    ContainerNotFoundError,
    ImageNotFoundError,
    LayerInUseError,
    NameInUseError,
    UsageError,
    VolumeNotFoundError,
)
from lamina.store.db import Database
from lamina.store.images import ImageUsers
from lamina.store.layers import new_cache_id
from lamina.store.lock import ProcessToken, StoreLock
from lamina.store.paths import CONTAINERS_MODE, StorePaths

if TYPE_CHECKING:
    from lamina.archive.changes import Change

INIT_SUFFIX: Final = "-init"
_ID_RE: Final = re.compile(r"[0-9a-f]{64}")
_HEX_RE: Final = re.compile(r"[0-9a-f]{1,64}")
# Docker's container-name rule (daemon/names.go RestrictedNameChars).
NAME_RE: Final = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")


def _checked_name(name: str) -> str:
    """``name`` as stored: Docker's rule, after one leading "/" (Docker's own form of a
    name) is dropped."""
    bare = name.removeprefix("/")
    if not NAME_RE.fullmatch(bare):
        raise UsageError(
            f"invalid container name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    return bare


# Docker's daemon/initlayer/setup_unix.go, in its order: what every container's init layer
# holds. "dir"/"file" are empty placeholders; anything else is a symlink target.
INIT_ENTRIES: Final = (
    ("/dev/pts", "dir"),
    ("/dev/shm", "dir"),
    ("/proc", "dir"),
    ("/sys", "dir"),
    ("/.dockerenv", "file"),
    ("/etc/resolv.conf", "file"),
    ("/etc/hosts", "file"),
    ("/etc/hostname", "file"),
    ("/dev/console", "file"),
    ("/etc/mtab", "/proc/mounts"),
)
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

_COLUMNS: Final = "id, name, image, top_layer, mount_id, created, config, pid, pid_start"


class ContainerRecord(Struct, frozen=True, kw_only=True):
    id: str  # 64 hex
    name: str  # without Docker's leading "/"
    image: Digest  # image id
    top_layer: Digest | None  # chain id the init layer sits on
    mount_id: str  # the rw layer's driver id
    created: str  # RFC 3339
    config: Mapping[str, Any]  # what create was asked, as the engine shaped it
    complete: bool  # False while (or if) its creator is making its layers

    @property
    def init_id(self) -> str:
        return self.mount_id + INIT_SUFFIX


def _record(row: Sequence[object]) -> ContainerRecord:
    cid, name, image, top, mount_id, created, config, pid, _start = row
    return ContainerRecord(
        id=str(cid),
        name=str(name),
        image=Digest(str(image)),
        top_layer=Digest(str(top)) if top is not None else None,
        mount_id=str(mount_id),
        created=str(created),
        config=json.loads(str(config)),
        complete=pid is None,
    )


def new_container_id() -> str:
    return os.urandom(32).hex()


class ContainerStore(ImageUsers):
    """Container rows and their layers. Also the store's ``LayerReferences`` and ``ImageUsers``
    hook: a container keeps its image and the layer its init layer sits on."""

    def __init__(self, *, paths: StorePaths, db: Database, driver: Driver, lock: StoreLock) -> None:
        self._paths = paths
        self._db = db
        self._driver = driver
        self._lock = lock
        self._token = ProcessToken.current()

    @property
    def runtime_dir(self) -> Path:
        """The OCI runtime's state (runc's --root, the shims' records)."""
        return self._paths.runtime

    def bundle(self, rec: ContainerRecord) -> Path:
        """``<root>/containers/<id>``: the runtime bundle, the bind-mounted files, the log."""
        return self._paths.container(rec.id)

    # -- hooks ----------------------------------------------------------------------------

    def layer_users(self, conn: sqlite3.Connection, chain_id: Digest) -> list[str]:
        rows = conn.execute(
            "SELECT id, name FROM containers WHERE top_layer = ? ORDER BY created",
            (str(chain_id),),
        )
        return [f"container {cid[:12]} ({name})" for cid, name in rows.fetchall()]

    def live_cache_ids(self, conn: sqlite3.Connection) -> set[str]:
        live: set[str] = set()
        for mount_id, pid, start in conn.execute("SELECT mount_id, pid, pid_start FROM containers"):
            if pid is None or ProcessToken(pid=pid, start=start).alive():
                live |= {str(mount_id), str(mount_id) + INIT_SUFFIX}
        return live

    def image_users(self, conn: sqlite3.Connection, image_id: Digest) -> list[str]:
        rows = conn.execute(
            "SELECT id, name FROM containers WHERE image = ? ORDER BY created", (str(image_id),)
        )
        return [f"{cid[:12]} ({name})" for cid, name in rows.fetchall()]

    # -- reads ----------------------------------------------------------------------------

    def using_image(self, image_id: Digest) -> builtins.list[tuple[str, str]]:
        """(id, name) of the containers made from the image (those being created too), oldest
        first."""
        rows = self._db.conn.execute(
            "SELECT id, name FROM containers WHERE image = ? ORDER BY created, id",
            (str(image_id),),
        )
        return [(str(cid), str(name)) for cid, name in rows.fetchall()]

    def find(self, container_id: str) -> ContainerRecord | None:
        row = self._db.conn.execute(
            f"SELECT {_COLUMNS} FROM containers WHERE id = ?", (container_id,)
        ).fetchone()
        return None if row is None else _record(row)

    def resolve(self, ref: str) -> ContainerRecord:
        """By full id, exact name (a leading "/" allowed), or unique id prefix, as Docker."""
        value = ref.strip()
        conn = self._db.conn
        row = conn.execute(f"SELECT {_COLUMNS} FROM containers WHERE id = ?", (value,)).fetchone()
        if row is None:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM containers WHERE name = ?", (value.removeprefix("/"),)
            ).fetchone()
        if row is None and _HEX_RE.fullmatch(value):
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM containers WHERE id >= ? AND id < ? LIMIT 2",
                (value, value + "g"),  # 'g' sorts after every hex digit
            ).fetchall()
            if len(rows) > 1:
                raise AmbiguousIdError(value)
            row = rows[0] if rows else None
        if row is None:
            raise ContainerNotFoundError(f"no such container: {value}")
        rec = _record(row)
        if not rec.complete and not self._creator_alive(rec.id):
            raise ContainerNotFoundError(f"no such container: {value}")  # its creator died
        return rec

    def _creator_alive(self, cid: str) -> bool:
        row = self._db.conn.execute(
            "SELECT pid, pid_start FROM containers WHERE id = ?", (cid,)
        ).fetchone()
        return row is not None and ProcessToken(pid=row[0], start=row[1]).alive()

    def list(self) -> builtins.list[ContainerRecord]:
        """Complete containers, newest first (as ``docker ps``)."""
        rows = self._db.conn.execute(
            f"SELECT {_COLUMNS} FROM containers WHERE pid IS NULL ORDER BY created DESC, id"
        ).fetchall()
        return [_record(r) for r in rows]

    def volumes(self, container_id: str) -> builtins.list[tuple[str, str]]:
        """(volume name, destination) of the volumes the container mounts."""
        rows = self._db.conn.execute(
            "SELECT volume, destination FROM container_volumes WHERE container = ? "
            "ORDER BY destination",
            (container_id,),
        )
        return [(str(v), str(d)) for v, d in rows.fetchall()]

    # -- create / remove ------------------------------------------------------------------

    def rename(self, rec: ContainerRecord, name: str) -> None:
        """``docker rename``: a new name, by Docker's rule and unique. Raises NameInUseError,
        and ConflictError for the name it has."""
        name = _checked_name(name)
        if name == rec.name:
            raise ConflictError(f"container {rec.id[:12]} is already named {name!r}")
        with self._lock.hold(), self._db.transaction() as c:
            other = c.execute("SELECT id FROM containers WHERE name = ?", (name,)).fetchone()
            if other is not None:
                raise NameInUseError(
                    f'the container name "/{name}" is already in use by container "{other[0]}"'
                )
            if (
                c.execute("UPDATE containers SET name = ? WHERE id = ?", (name, rec.id)).rowcount
                != 1
            ):
                raise ContainerNotFoundError(f"no such container: {rec.id}")

    def change_config(
        self, rec: ContainerRecord, change: Callable[[Mapping[str, Any]], Mapping[str, Any]]
    ) -> ContainerRecord:
        """Replace the container's stored config by ``change(config)`` (``docker update``),
        read and written under the store lock in one transaction, so that two changes at once
        are made one after the other, each on what the other left. ``change`` raising leaves
        the record as it was. Raises ContainerNotFoundError if it was removed meanwhile."""
        with self._lock.hold(), self._db.transaction() as c:
            row = c.execute("SELECT config FROM containers WHERE id = ?", (rec.id,)).fetchone()
            if row is None:
                raise ContainerNotFoundError(f"no such container: {rec.id}")
            config = change(json.loads(str(row[0])))
            c.execute("UPDATE containers SET config = ? WHERE id = ?", (json.dumps(config), rec.id))
        changed = self.find(rec.id)
        assert changed is not None  # changed under the lock just now
        return changed

    def create(
        self,
        *,
        name: str,
        image: Digest,
        top_layer: Digest | None,
        created: str,
        config: Mapping[str, Any],
        volumes: Sequence[tuple[str, str]] = (),
    ) -> ContainerRecord:
        """Record the container, make its init and rw layers and its bundle dir. ``volumes``
        are (volume name, destination) pairs of existing volumes. Raises NameInUseError."""
        name = _checked_name(name)
        cid = new_container_id()
        mount_id = new_cache_id()
        with self._lock.hold(), self._db.transaction() as c:
            other = c.execute("SELECT id FROM containers WHERE name = ?", (name,)).fetchone()
            if other is not None:
                raise NameInUseError(
                    f'the container name "/{name}" is already in use by container "{other[0]}"'
                )
            if c.execute("SELECT 1 FROM images WHERE id = ?", (str(image),)).fetchone() is None:
                raise ImageNotFoundError(f"image {image} not found")
            top_cache: str | None = None
            if top_layer is not None:
                found = c.execute(
                    "SELECT cache_id FROM layers WHERE chain_id = ?", (str(top_layer),)
                ).fetchone()
                if found is None:
                    raise ImageNotFoundError(f"the layers of image {image} are missing")
                top_cache = str(found[0])
            c.execute(
                f"INSERT INTO containers({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    cid,
                    name,
                    str(image),
                    str(top_layer) if top_layer else None,
                    mount_id,
                    created,
                    json.dumps(config),
                    self._token.pid,
                    self._token.start,
                ),
            )
            for volume, dest in volumes:
                if c.execute("SELECT 1 FROM volumes WHERE name = ?", (volume,)).fetchone() is None:
                    raise VolumeNotFoundError(f"no such volume: {volume}")
                c.execute(
                    "INSERT INTO container_volumes(container, volume, destination) VALUES (?,?,?)",
                    (cid, volume, dest),
                )
        try:
            self._make_layers(mount_id, top_cache)
            bundle = self._paths.container(cid)
            os.mkdir(bundle, CONTAINERS_MODE)
            os.chmod(bundle, CONTAINERS_MODE)
            with self._db.transaction() as c:
                c.execute("UPDATE containers SET pid = NULL, pid_start = NULL WHERE id = ?", (cid,))
        except BaseException:
            with contextlib.suppress(Exception):
                self._discard(cid, mount_id)
            raise
        rec = self.find(cid)
        assert rec is not None  # we just completed it
        return rec

    def _make_layers(self, mount_id: str, top_cache: str | None) -> None:
        init_id = mount_id + INIT_SUFFIX
        # The init layer is made as Docker makes it, through a mount of it (so parent dirs are
        # copied up with the image's metadata), then never mounted writable again.
        self._driver.create(init_id, parent=top_cache, writable=True)
        merged = self._driver.mount(init_id)
        try:
            setup_init_layer(merged)
        finally:
            self._driver.unmount(init_id)
        self._driver.create(mount_id, parent=init_id, writable=True)

    def _discard(self, cid: str, mount_id: str) -> None:

        for layer in (mount_id, mount_id + INIT_SUFFIX):
            if self._driver.exists(layer):
                self._driver.remove(layer)
        remove_tree(self._paths.container(cid), ignore_errors=True)
        with self._db.transaction() as c:
            c.execute("DELETE FROM containers WHERE id = ?", (cid,))

    def remove(self, rec: ContainerRecord) -> None:
        """Delete the row (its volume links with it), then the layers and the bundle dir.
        Raises LayerInUseError while the rw layer is mounted."""

        with self._lock.hold():
            if self._driver.exists(rec.mount_id) and self._driver.mount_count(rec.mount_id):
                raise LayerInUseError(
                    f"container {rec.id[:12]} is mounted (lamina umount {rec.name})"
                )
            with self._db.transaction() as c:
                c.execute("DELETE FROM containers WHERE id = ?", (rec.id,))
            # Row first: a crash now leaves dirs no row claims, which recovery removes.
            self._driver.remove(rec.mount_id)
            self._driver.remove(rec.init_id)
            remove_tree(self._paths.container(rec.id), ignore_errors=True)

    def recover(self) -> builtins.list[str]:
        """Drop rows whose creator died mid-create and bundle dirs without a row; the caller
        holds the store lock and then lets the driver remove the layers nothing claims."""
        conn = self._db.conn
        dead = [
            str(cid)
            for cid, pid, start in conn.execute(
                "SELECT id, pid, pid_start FROM containers WHERE pid IS NOT NULL"
            ).fetchall()
            if not ProcessToken(pid=pid, start=start).alive()
        ]
        if dead:
            with self._db.transaction() as c:
                c.executemany("DELETE FROM containers WHERE id = ?", [(d,) for d in dead])
        ids = {str(r[0]) for r in conn.execute("SELECT id FROM containers")}
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self._paths.containers):
                if _ID_RE.fullmatch(entry.name) and entry.name not in ids:
                    remove_tree(entry.path, ignore_errors=True)
        return dead

    # -- the rw layer ---------------------------------------------------------------------

    def mount(self, rec: ContainerRecord) -> Path:
        """Mount the container's rootfs read-write; each mount needs one :meth:`unmount`."""
        with self._lock.hold():
            return self._driver.mount(rec.mount_id)

    def unmount(self, rec: ContainerRecord) -> None:
        with self._lock.hold():
            self._driver.unmount(rec.mount_id)

    def mount_count(self, rec: ContainerRecord) -> int:
        return self._driver.mount_count(rec.mount_id)

    def metadata(self, rec: ContainerRecord) -> Mapping[str, str]:
        return self._driver.metadata(rec.mount_id)

    def changes(self, rec: ContainerRecord) -> builtins.list[Change]:
        """``docker diff``: the rw layer against the init layer and the image below it."""
        return self._driver.changes(rec.mount_id)

    def diff_size(self, rec: ContainerRecord) -> int:
        """Bytes in the rw layer's changes (Docker's ``SizeRw``; the init layer is below)."""
        return self._driver.diff_size(rec.mount_id)

    def diff_tar(self, rec: ContainerRecord, out: IO[bytes]) -> None:
        """The rw layer's changes as an OCI layer tar (what ``commit`` stores)."""
        self._driver.diff_tar(rec.mount_id, out)


def setup_init_layer(root: Path) -> None:
    """Docker's ``setupInitLayer`` on the mounted init layer ``root``: every non-dir on the way
    to an entry is unlinked (a hostile image's ``/dev -> /host`` symlink is masked, runc
    CVE-2026-41579), then missing entries are made. All fd-relative, never through a path."""
    root_fd = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        for path, kind in INIT_ENTRIES:
            _init_entry(root_fd, [p for p in path.split("/") if p], kind)
    finally:
        os.close(root_fd)


def _init_entry(root_fd: int, parts: list[str], kind: str) -> None:
    fd = os.dup(root_fd)
    try:
        for i, name in enumerate(parts):
            try:
                st: os.stat_result | None = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is not None and not stat.S_ISDIR(st.st_mode):
                os.unlink(name, dir_fd=fd)
                st = None
            if i < len(parts) - 1:
                if st is None:
                    os.mkdir(name, 0o755, dir_fd=fd)
                nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nxt
                continue
            if st is not None:
                return  # an existing dir stays, as Docker's os.Stat check leaves it
            if kind == "dir":
                os.mkdir(name, 0o755, dir_fd=fd)
            elif kind == "file":
                f = os.open(
                    name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o755, dir_fd=fd
                )
                os.fchmod(f, 0o755)
                os.close(f)
            else:
                os.symlink(kind, name, dir_fd=fd)
    finally:
        os.close(fd)
