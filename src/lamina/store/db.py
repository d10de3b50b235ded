"""The store's SQLite database: schema, migrations and transactions.

WAL mode lets readers run beside one writer across processes; ``busy_timeout`` makes a writer
wait for another instead of failing. Writes run in ``BEGIN IMMEDIATE`` transactions (the write
lock is taken up front, so two writers never deadlock upgrading a read). Callers that must keep
metadata and files in step (blob rename + record insert) take the store lock first, then open
the transaction: store lock → SQLite transaction, never the reverse.

Text that may not be UTF-8 (tar paths and link targets keep non-UTF-8 bytes as surrogate
escapes) is stored as BLOB holding the original bytes (``os.fsencode``).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from _thread import RLock  # threading.RLock, without importing threading (~1 ms)
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from lamina.errors import StoreError

# Milliseconds a writer waits for another process's transaction before giving up.
BUSY_TIMEOUT_MS: Final = 60_000

SCHEMA_VERSION: Final = 3

_SCHEMA_V1: Final = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row per layer record, keyed by chain_id; cache_id names the driver's dir.
CREATE TABLE layers (
    id           INTEGER PRIMARY KEY,
    chain_id     TEXT NOT NULL UNIQUE,
    parent       TEXT REFERENCES layers(chain_id) ON DELETE RESTRICT,
    diff_id      TEXT NOT NULL,
    blob_digest  TEXT NOT NULL,
    media_type   TEXT NOT NULL,
    blob_size    INTEGER NOT NULL,   -- bytes of the blob as stored (maybe compressed)
    diff_size    INTEGER NOT NULL,   -- bytes of the uncompressed tar
    content_size INTEGER NOT NULL,   -- sum of regular-file sizes (Docker's layer Size)
    cache_id     TEXT NOT NULL UNIQUE,
    entry_count  INTEGER NOT NULL,
    created      REAL NOT NULL       -- unix time the record was committed
);
CREATE INDEX layers_parent ON layers(parent);
CREATE INDEX layers_blob ON layers(blob_digest);

-- A multi-step layer write in progress: inserted before the driver dir exists, deleted in the
-- transaction that inserts the record. A row whose process is dead is cleaned on open.
CREATE TABLE staging (
    cache_id  TEXT PRIMARY KEY,
    pid       INTEGER NOT NULL,
    pid_start INTEGER NOT NULL,
    purpose   TEXT NOT NULL,
    created   REAL NOT NULL
);

-- A live process's claim on a layer between ingest and the image record that will reference
-- it, so a concurrent gc does not take it; void once the process is dead.
CREATE TABLE layer_holds (
    chain_id  TEXT NOT NULL REFERENCES layers(chain_id) ON DELETE CASCADE,
    pid       INTEGER NOT NULL,
    pid_start INTEGER NOT NULL,
    PRIMARY KEY (chain_id, pid, pid_start)
) WITHOUT ROWID;

-- The file index: one row per tar entry per layer, in tar order.
CREATE TABLE files (
    layer    INTEGER NOT NULL REFERENCES layers(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    path     BLOB NOT NULL,      -- os.fsencode of the normalised entry path
    kind     TEXT NOT NULL,      -- EntryKind value: file dir symlink hardlink char block fifo
                                 -- whiteout (path = the deleted path) opaque (path = the dir)
    mode     INTEGER NOT NULL,
    uid      INTEGER NOT NULL,
    gid      INTEGER NOT NULL,
    size     INTEGER NOT NULL,
    sha256   TEXT,               -- hex of the content (FILE, HARDLINK)
    linkname BLOB,               -- os.fsencode of the link target (SYMLINK, HARDLINK)
    devmajor INTEGER NOT NULL,
    devminor INTEGER NOT NULL,
    xattrs   TEXT,               -- JSON {name: base64(value)}, NULL when none
    mtime    INTEGER NOT NULL,
    PRIMARY KEY (layer, position)
) WITHOUT ROWID;
CREATE INDEX files_layer_path ON files(layer, path);
CREATE INDEX files_path ON files(path);

CREATE TABLE images (
    id                  TEXT PRIMARY KEY,   -- config digest
    manifest_digest     TEXT NOT NULL,
    manifest_media_type TEXT NOT NULL,
    top_layer           TEXT REFERENCES layers(chain_id) ON DELETE RESTRICT,
    created             TEXT,               -- from the config, as given
    added               REAL NOT NULL,
    last_tag_time       REAL,
    built_locally       INTEGER NOT NULL DEFAULT 0,
    size                INTEGER NOT NULL    -- sum of the layers' content_size
);
CREATE INDEX images_manifest ON images(manifest_digest);

CREATE TABLE image_layers (
    image    TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,              -- 0 = bottom
    chain_id TEXT NOT NULL REFERENCES layers(chain_id) ON DELETE RESTRICT,
    PRIMARY KEY (image, position)
) WITHOUT ROWID;
CREATE INDEX image_layers_chain ON image_layers(chain_id);

-- A name points at one image; many names may point at the same image.
CREATE TABLE names (
    name   TEXT PRIMARY KEY,
    image  TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    tagged REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX names_image ON names(image);
"""

# Containers and volumes (store/containers.py, store/volumes.py).
_SCHEMA_V2: Final = """
-- A container: its image, its two driver layers (the rw layer ``mount_id`` on the init layer
-- ``mount_id || '-init'``) and what create was asked (JSON). ``pid``/``pid_start`` name the
-- creating process while the row is incomplete (its layers being made); NULL once complete.
CREATE TABLE containers (
    id         TEXT PRIMARY KEY,          -- 64 hex
    name       TEXT NOT NULL UNIQUE,      -- without Docker's leading '/'
    image      TEXT NOT NULL,             -- image id (config digest)
    top_layer  TEXT,                      -- chain_id the init layer sits on; NULL: no layers
    mount_id   TEXT NOT NULL UNIQUE,
    created    TEXT NOT NULL,             -- RFC 3339
    config     TEXT NOT NULL,             -- JSON
    pid        INTEGER,
    pid_start  INTEGER
);
CREATE INDEX containers_image ON containers(image);
CREATE INDEX containers_top_layer ON containers(top_layer);

CREATE TABLE volumes (
    name      TEXT PRIMARY KEY,
    created   REAL NOT NULL,
    labels    TEXT NOT NULL,              -- JSON object
    options   TEXT NOT NULL,              -- JSON object
    anonymous INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Which container mounts which volume where; a used volume cannot be removed.
CREATE TABLE container_volumes (
    container   TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    volume      TEXT NOT NULL REFERENCES volumes(name) ON DELETE RESTRICT,
    destination TEXT NOT NULL,
    PRIMARY KEY (container, destination)
) WITHOUT ROWID;
CREATE INDEX container_volumes_volume ON container_volumes(volume);
"""

# The build cache (store/buildcache.py): which locally built image a build step produced from
# which parent image. Rows go with their image (rmi/prune), so a key never names a missing one.
_SCHEMA_V3: Final = """
CREATE TABLE build_cache (
    key     TEXT PRIMARY KEY,             -- sha256 of parent image id + step + args + sources
    parent  TEXT NOT NULL,                -- image id the step ran on ('scratch' for none)
    image   TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    created REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX build_cache_image ON build_cache(image);
"""

# Index = the version it migrates *to*; each entry runs inside one transaction.
_MIGRATIONS: Final[dict[int, str]] = {1: _SCHEMA_V1, 2: _SCHEMA_V2, 3: _SCHEMA_V3}


class Database:
    """One connection to ``lamina.db``; safe to share between threads of one process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._conn = sqlite3.connect(
                path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = self._enable_wal()
            if mode != "wal":
                raise StoreError(f"{path}: SQLite refused WAL mode (got {mode!r})")
            # NORMAL is durable across process crashes in WAL mode; only a power loss may drop
            # the last transactions, never corrupt the file.
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store database {path}: {exc}") from exc
        self._mutex = RLock()
        self._depth = 0
        self._migrate()

    def _enable_wal(self) -> str:
        # Switching a new database to WAL needs an exclusive lock, and SQLite does not call the
        # busy handler for it: a second process opening the same fresh store gets SQLITE_BUSY
        # at once. Retry until the busy timeout instead.
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                return str(self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                busy = getattr(exc, "sqlite_errorcode", None) in (
                    sqlite3.SQLITE_BUSY,
                    sqlite3.SQLITE_LOCKED,
                )
                if not busy or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    @property
    def conn(self) -> sqlite3.Connection:
        """The raw connection, for reads (each statement sees a consistent WAL snapshot)."""
        return self._conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any exception. Nested use joins the
        outer transaction."""
        with self._mutex:
            if self._depth:
                self._depth += 1
                try:
                    yield self._conn
                finally:
                    self._depth -= 1
                return
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot start a transaction on {self.path}: {exc}") from exc
            self._depth = 1
            try:
                yield self._conn
            except BaseException:
                self._depth = 0
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
            self._depth = 0
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise StoreError(f"cannot commit to {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def attached(self, path: Path, *, schema: str) -> Iterator[None]:
        """Another SQLite file readable as ``<schema>.<table>`` on this connection for the
        block (transactions inside it see it too). Not inside a transaction: SQLite cannot
        detach a database there. Other threads' transactions wait until the block ends."""
        if not schema.isidentifier():
            raise StoreError(f"invalid schema name {schema!r}")
        with self._mutex:
            if self._depth:
                raise StoreError(f"cannot attach {path} inside a transaction")
            try:
                self._conn.execute(f"ATTACH DATABASE ? AS {schema}", (str(path),))
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open {path} beside {self.path}: {exc}") from exc
            try:
                yield
            finally:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute(f"DETACH DATABASE {schema}")

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: several SELECTs that see one consistent state."""
        with self._mutex:
            if self._depth:
                yield self._conn
                return
            self._conn.execute("BEGIN")
            self._depth = 1
            try:
                yield self._conn
            finally:
                self._depth = 0
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("COMMIT")

    def get_meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as c:
            c.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def close(self) -> None:
        self._conn.close()

    def _migrate(self) -> None:
        version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}; this lamina knows up to "
                f"{SCHEMA_VERSION} (upgrade lamina)"
            )
        if version == SCHEMA_VERSION:
            return
        with self.transaction() as c:
            # Re-read under the write lock: another process may have migrated meanwhile.
            version = int(c.execute("PRAGMA user_version").fetchone()[0])
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _statements(_MIGRATIONS[target]):
                    c.execute(statement)
                c.execute(f"PRAGMA user_version = {target}")


def _statements(script: str) -> list[str]:
    """Split a script into statements (``executescript`` would commit our transaction)."""
    out: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    if pending.strip():
        raise StoreError(f"incomplete SQL statement in a migration: {pending[:80]!r}")
    return out
