"""The file index: rows round-trip, merged views apply whiteouts and opaque dirs."""

from __future__ import annotations

import time
from pathlib import Path

from lamina.archive.entry import Entry, EntryKind, IndexEntry
from lamina.store import index
from lamina.store.db import Database

K = EntryKind


def ie(path: str, kind: EntryKind = K.FILE, pos: int = 0, **kw: object) -> IndexEntry:
    return IndexEntry(entry=Entry(path=path, kind=kind, **kw), position=pos)  # type: ignore[arg-type]


def merged(*layers: list[IndexEntry]) -> dict[str, EntryKind]:
    view = index.merge(layers, path_of=lambda e: e.entry.path, kind_of=lambda e: e.entry.kind)
    return {p: e.entry.kind for p, e in view.items()}


def test_merge_whiteout_opaque_replace() -> None:
    base = [
        ie("a", K.DIR),
        ie("a/x"),
        ie("a/y"),
        ie("b", K.DIR),
        ie("b/c", K.DIR),
        ie("b/c/d"),
        ie("l", K.SYMLINK, linkname="/etc"),
        ie("m", K.DIR),
        ie("m/n"),
    ]
    top = [
        ie("a/x", K.WHITEOUT),
        ie("b", K.OPAQUE),
        ie("b/new"),
        ie("m", K.FILE),
        ie("l", K.WHITEOUT),
        ie("l", K.DIR),
    ]
    assert merged(base, top) == {
        "a": K.DIR,
        "a/y": K.FILE,
        "b": K.DIR,
        "b/new": K.FILE,
        "m": K.FILE,
        "l": K.DIR,
    }


def test_rows_round_trip_and_queries(shm_tmp: Path) -> None:
    db = Database(shm_tmp / "t.db")
    conn = db.conn
    weird = "caf\udce9/\u00e9t\u00e9"  # a non-UTF-8 byte kept as a surrogate escape
    rows = [
        IndexEntry(entry=Entry(path="etc", kind=K.DIR, mode=0o755), position=0),
        IndexEntry(
            entry=Entry(
                path="etc/passwd",
                kind=K.FILE,
                mode=0o4755,
                uid=1,
                gid=2,
                size=3,
                mtime=5,
                xattrs={"security.capability": b"\x01\x00\xff"},
            ),
            sha256="ab" * 32,
            position=1,
        ),
        IndexEntry(entry=Entry(path=weird, kind=K.SYMLINK, linkname="../\udcff"), position=2),
        IndexEntry(entry=Entry(path="dev/null", kind=K.CHAR, devmajor=1, devminor=3), position=3),
    ]
    with db.transaction() as c:
        c.execute(
            "INSERT INTO layers(id, chain_id, diff_id, blob_digest, media_type, blob_size,"
            " diff_size, content_size, cache_id, entry_count, created) VALUES"
            " (1, 'c1', 'd', 'b', 'm', 0, 0, 0, 'x1', 4, 0),"
            " (2, 'c2', 'd', 'b', 'm', 0, 0, 0, 'x2', 1, 0)"
        )
        assert index.insert_entries(c, 1, rows) == 4
        index.insert_entries(c, 2, [ie("etc", K.OPAQUE), ie("etc/passwd", pos=1)])
    assert index.layer_entries(conn, 1) == rows
    assert index.entry_at(conn, 1, weird) == [rows[2]]
    assert index.merged_symlinks(conn, [1]) == {weird}
    assert index.merged_symlinks(conn, [1, 2]) == {weird}
    hist = index.path_history(conn, [1, 2], "etc/passwd")
    assert [(i, r.entry.kind) for i, r in hist] == [
        (0, K.DIR),
        (0, K.FILE),
        (1, K.OPAQUE),
        (1, K.FILE),
    ]
    assert index.layers_with_path(conn, "etc/passwd") == [1, 2]
    assert set(index.merged_view(conn, [1, 2])) == {"etc", "etc/passwd", weird, "dev/null"}
    db.close()


def test_bulk_insert_is_cheap(shm_tmp: Path) -> None:
    """6.6k rows (a Debian minbase layer) in one executemany; the time is printed, not asserted
    (DESIGN §7)."""
    db = Database(shm_tmp / "t.db")
    rows = [
        ie(f"usr/share/doc/pkg{i // 10}/file{i}", pos=i, size=i, mode=0o644) for i in range(6600)
    ]
    with db.transaction() as c:
        c.execute(
            "INSERT INTO layers(id, chain_id, diff_id, blob_digest, media_type, blob_size,"
            " diff_size, content_size, cache_id, entry_count, created) VALUES"
            " (1, 'c1', 'd', 'b', 'm', 0, 0, 0, 'x1', 0, 0)"
        )
        t0 = time.perf_counter()
        index.insert_entries(c, 1, rows)
        elapsed = time.perf_counter() - t0
    print(f"6600 index rows inserted in {elapsed * 1000:.1f} ms")
    assert len(index.layer_entries(db.conn, 1)) == 6600
    db.close()


def test_incremental_symlinks_match_full_merge(shm_tmp: Path) -> None:
    db = Database(shm_tmp / "t.db")
    layers = [
        [
            ie("a", K.SYMLINK, linkname="x"),
            ie("d", K.DIR),
            ie("d/l", K.SYMLINK),
            ie("e", K.DIR),
            ie("e/l", K.SYMLINK),
            ie("f", K.SYMLINK),
            ie("g", K.SYMLINK),
        ],
        [
            ie("a", K.DIR),
            ie("d", K.OPAQUE),
            ie("e", K.WHITEOUT),
            ie("f", K.FILE),
            ie("h", K.SYMLINK),
        ],
        [ie("a", K.WHITEOUT), ie("a", K.SYMLINK), ie("h", K.WHITEOUT), ie("d/l", K.SYMLINK)],
    ]
    with db.transaction() as c:
        for i, rows in enumerate(layers, 1):
            c.execute(
                "INSERT INTO layers(id, chain_id, diff_id, blob_digest, media_type, blob_size,"
                " diff_size, content_size, cache_id, entry_count, created) VALUES"
                " (?, ?, 'd', 'b', 'm', 0, 0, 0, ?, 0, 0)",
                (i, f"c{i}", f"x{i}"),
            )
            index.insert_entries(
                c, i, [IndexEntry(entry=r.entry, position=p) for p, r in enumerate(rows)]
            )
    for n in range(1, 4):
        full = {p for p, k in merged(*layers[:n]).items() if k is K.SYMLINK}
        assert index.merged_symlinks(db.conn, list(range(1, n + 1))) == full
    assert index.merged_symlinks(db.conn, [1, 2, 3]) == {"a", "d/l", "g"}
    db.close()
