"""The file index: one row per tar entry per layer, read and written here.

Rows are keyed by the layer's integer row id (``layers.id``) and the entry's position in the
tar. Paths and link targets are stored as their original bytes (``os.fsencode``), xattrs as JSON
``{name: base64(value)}`` with the names the image used (unescaped). Forensics reads this table
instead of the blobs: what a layer added, changed, hid (opaque) or deleted (whiteout), and the
sha256 of every file's content.

Merged views are computed in Python from rows, applying each layer's whiteouts and opaque dirs
to the layers below it (OCI image-spec ``layer.md``), then its own entries.

An ingest never holds a layer's rows: they stream into a :class:`StagedRows` file while the
layer is extracted and reach ``files`` in the layer record's transaction (:func:`insert_staged`).
"""

from __future__ import annotations

import binascii
import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Final, TypeVar

from lamina.archive.entry import Entry, EntryKind, IndexEntry
from lamina.errors import StoreError
from lamina.store.lock import held_temp

_COLUMNS: Final = (
    "position, path, kind, mode, uid, gid, size, sha256, linkname, devmajor, devminor, "
    "xattrs, mtime"
)
_INSERT: Final = f"INSERT INTO files (layer, {_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
# The staged rows: ``files`` without ``layer`` (not known yet) and without indexes (the copy
# into ``files`` reads them in position order, which is the rowid's).
_STAGE_TABLE: Final = """CREATE TABLE rows (
    position INTEGER PRIMARY KEY, path BLOB NOT NULL, kind TEXT NOT NULL, mode INTEGER NOT NULL,
    uid INTEGER NOT NULL, gid INTEGER NOT NULL, size INTEGER NOT NULL, sha256 TEXT,
    linkname BLOB, devmajor INTEGER NOT NULL, devminor INTEGER NOT NULL, xattrs TEXT,
    mtime INTEGER NOT NULL
)"""
_STAGE_INSERT: Final = f"INSERT INTO rows ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"

_KINDS: Final = {k.value: k for k in EntryKind}
_REMOVALS: Final = (EntryKind.WHITEOUT, EntryKind.OPAQUE)

T = TypeVar("T")


def _encode_xattrs(xattrs: Mapping[str, bytes]) -> str | None:
    if not xattrs:
        return None
    return json.dumps(
        {
            k: binascii.b2a_base64(v, newline=False).decode("ascii")
            for k, v in sorted(xattrs.items())
        },
        separators=(",", ":"),
    )


def _decode_xattrs(text: str | None) -> dict[str, bytes]:
    if not text:
        return {}
    return {k: binascii.a2b_base64(v) for k, v in json.loads(text).items()}


def _values(ie: IndexEntry) -> tuple[object, ...]:
    """The row's values in ``_COLUMNS`` order."""
    e = ie.entry
    return (
        ie.position,
        os.fsencode(e.path),
        e.kind.value,
        e.mode,
        e.uid,
        e.gid,
        e.size,
        ie.sha256,
        os.fsencode(e.linkname) if e.linkname else None,
        e.devmajor,
        e.devminor,
        _encode_xattrs(e.xattrs),
        e.mtime,
    )


def _entry(row: Sequence[object]) -> IndexEntry:
    (position, path, kind, mode, uid, gid, size, sha, link, major, minor, xattrs, mtime) = row
    return IndexEntry(
        entry=Entry(
            path=os.fsdecode(path),  # type: ignore[arg-type]
            kind=_KINDS[kind],  # type: ignore[index]
            mode=mode,  # type: ignore[arg-type]
            uid=uid,  # type: ignore[arg-type]
            gid=gid,  # type: ignore[arg-type]
            size=size,  # type: ignore[arg-type]
            mtime=mtime,  # type: ignore[arg-type]
            linkname=os.fsdecode(link) if link else "",  # type: ignore[arg-type]
            devmajor=major,  # type: ignore[arg-type]
            devminor=minor,  # type: ignore[arg-type]
            xattrs=_decode_xattrs(xattrs),  # type: ignore[arg-type]
        ),
        sha256=sha,  # type: ignore[arg-type]
        position=position,  # type: ignore[arg-type]
    )


def insert_entries(conn: sqlite3.Connection, layer: int, entries: Iterable[IndexEntry]) -> int:
    """Insert the rows of one layer (inside the caller's transaction); return how many."""
    rows = [(layer, *_values(ie)) for ie in entries]
    conn.executemany(_INSERT, rows)
    return len(rows)


class StagedRows:
    """One layer's index rows on their way into ``files``, written while the layer is extracted.

    ``files`` cannot take them yet: the layer's record (whose id keys them) is inserted once the
    digests are verified, in one short transaction under the store lock. A write transaction
    held over the whole extraction instead would stall every other lamina process's writes for
    as long, and it would have to start before the store lock is taken (the lock order is store
    lock, then transaction). Holding the rows in memory costs ~0.7 KB per entry. So they go to a
    private SQLite file in ``<root>/tmp``, a batch per :meth:`add`, with no journal and no
    fsync: the file is thrown away after the copy, on failure, or by the temp sweep once its
    process is dead (its flock marks it live). :func:`insert_staged` copies them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0  # rows added
        try:
            self._conn = sqlite3.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot create {path} for index rows: {exc}") from exc
        try:
            self._conn.execute("PRAGMA journal_mode = OFF")
            self._conn.execute("PRAGMA synchronous = OFF")
            self._conn.execute(_STAGE_TABLE)
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreError(f"cannot create {path} for index rows: {exc}") from exc

    def add(self, rows: list[IndexEntry]) -> None:
        """Stage the next rows (an ``archive.apply.RowSink``)."""
        conn = self._conn
        try:
            conn.execute("BEGIN")
            conn.executemany(_STAGE_INSERT, [_values(ie) for ie in rows])
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot stage index rows in {self.path}: {exc}") from exc
        self.count += len(rows)

    def close(self) -> None:
        self._conn.close()


@contextlib.contextmanager
def staged_rows(tmp_dir: Path) -> Iterator[StagedRows]:
    """A new :class:`StagedRows` in ``tmp_dir``, deleted when the block ends."""
    with held_temp(tmp_dir, prefix="index-") as temp:
        stage = StagedRows(temp.path)
        try:
            yield stage
        finally:
            stage.close()


def insert_staged(conn: sqlite3.Connection, layer: int, *, schema: str) -> int:
    """Copy the rows of a :class:`StagedRows` file attached as ``schema`` into ``files`` as
    ``layer``'s (inside the caller's transaction); return how many."""
    cur = conn.execute(
        f"INSERT INTO files (layer, {_COLUMNS}) SELECT ?, {_COLUMNS} FROM {schema}.rows "
        "ORDER BY position",
        (layer,),
    )
    return cur.rowcount


def delete_layer(conn: sqlite3.Connection, layer: int) -> None:
    conn.execute("DELETE FROM files WHERE layer = ?", (layer,))


def layer_entries(conn: sqlite3.Connection, layer: int) -> list[IndexEntry]:
    """Every row of one layer, in tar order."""
    cur = conn.execute(f"SELECT {_COLUMNS} FROM files WHERE layer = ? ORDER BY position", (layer,))
    return [_entry(r) for r in cur]


def entry_at(conn: sqlite3.Connection, layer: int, path: str) -> list[IndexEntry]:
    """The rows of ``path`` in one layer (normally one; a tar may repeat a path)."""
    cur = conn.execute(
        f"SELECT {_COLUMNS} FROM files WHERE layer = ? AND path = ? ORDER BY position",
        (layer, os.fsencode(path)),
    )
    return [_entry(r) for r in cur]


def ancestors(path: str) -> list[str]:
    """``"a/b/c"`` → ``["a/b", "a"]`` (nearest first; the root ``""`` is never an entry)."""
    out: list[str] = []
    i = path.rfind("/")
    while i > 0:
        path = path[:i]
        out.append(path)
        i = path.rfind("/")
    return out


def path_history(
    conn: sqlite3.Connection, layers: Sequence[int], path: str
) -> list[tuple[int, IndexEntry]]:
    """Rows of ``path`` and of its ancestors across a chain (``layers`` bottom first), as
    ``(index in layers, row)`` in chain order then tar order. An ancestor's whiteout, opaque
    marker or replacement by a non-dir is what hides ``path``, so trace needs those too."""
    if not layers:
        return []
    wanted = [os.fsencode(p) for p in (path, *ancestors(path))]
    order = {layer: i for i, layer in enumerate(layers)}
    marks = ",".join("?" * len(wanted))
    out: list[tuple[int, IndexEntry]] = []
    for layer in layers:
        cur = conn.execute(
            f"SELECT {_COLUMNS} FROM files WHERE layer = ? AND path IN ({marks}) ORDER BY position",
            (layer, *wanted),
        )
        out.extend((order[layer], _entry(r)) for r in cur)
    return out


def layers_with_path(conn: sqlite3.Connection, path: str) -> list[int]:
    """Row ids of every layer that has a row for exactly ``path`` (any image)."""
    cur = conn.execute(
        "SELECT DISTINCT layer FROM files WHERE path = ? ORDER BY layer", (os.fsencode(path),)
    )
    return [int(r[0]) for r in cur]


def merge(
    layers: Iterable[Iterable[T]],
    *,
    path_of: Callable[[T], str],
    kind_of: Callable[[T], EntryKind],
) -> dict[str, T]:
    """The merged view of a chain of layers (bottom first): path → effective item.

    Per layer, first its whiteouts (the path and its subtree go), opaque markers (the dir's
    lower children go) and non-dir entries (a lower dir they replace loses its subtree) act on
    the layers below; then its own entries are laid on top. Whiteout and opaque items never
    appear in the result."""
    view: dict[str, T] = {}
    for layer in layers:
        items = list(layer)
        gone: set[str] = set()  # the path and everything under it
        emptied: set[str] = set()  # everything under it, the path itself stays
        for item in items:
            kind = kind_of(item)
            if kind is EntryKind.WHITEOUT:
                gone.add(path_of(item))
            elif kind is not EntryKind.DIR:  # OPAQUE, or a non-dir replacing a lower dir
                emptied.add(path_of(item))
        if gone or emptied:
            view = {p: v for p, v in view.items() if not _hidden(p, gone=gone, emptied=emptied)}
        for item in items:
            if kind_of(item) not in _REMOVALS:
                view[path_of(item)] = item
    return view


def _hidden(path: str, *, gone: set[str], emptied: set[str]) -> bool:
    if path in gone:
        return True
    i = path.rfind("/")
    while i > 0:
        parent = path[:i]
        if parent in gone or parent in emptied:
            return True
        i = parent.rfind("/")
    return False


def merged_view(conn: sqlite3.Connection, layers: Sequence[int]) -> dict[str, IndexEntry]:
    """path → the entry a mount of the chain (``layers`` bottom first) shows."""
    return merge(
        (layer_entries(conn, layer) for layer in layers),
        path_of=lambda ie: ie.entry.path,
        kind_of=lambda ie: ie.entry.kind,
    )


def merged_symlinks(conn: sqlite3.Connection, layers: Sequence[int]) -> frozenset[str]:
    """Paths that are symlinks in the merged view of the chain (the ``lower_symlinks`` an apply
    on top of it must not write through)."""
    links: frozenset[str] = frozenset()
    for layer in layers:
        links = symlinks_after(conn, layer, links)
    return links


def symlinks_after(conn: sqlite3.Connection, layer: int, below: frozenset[str]) -> frozenset[str]:
    """The merged symlink set once ``layer`` lies on a chain whose set is ``below``: the
    :func:`merge` rules restricted to symlinks, reading only this layer's paths and kinds (so
    a chain's set costs one pass per layer, not one per layer per ancestor)."""
    rows = [
        (os.fsdecode(p), _KINDS[k])
        for p, k in conn.execute("SELECT path, kind FROM files WHERE layer = ?", (layer,))
    ]
    gone = {p for p, k in rows if k is EntryKind.WHITEOUT}
    emptied = {p for p, k in rows if k not in (EntryKind.WHITEOUT, EntryKind.DIR)}
    links = {s for s in below if not _hidden(s, gone=gone, emptied=emptied)}
    for path, kind in rows:
        if kind is EntryKind.SYMLINK:
            links.add(path)
        elif kind not in _REMOVALS:
            links.discard(path)  # replaced by a dir, file, ... of this layer
    return frozenset(links)
