"""The build cache: step key -> the locally built image that step produced.

Keys are computed by the builder (:mod:`lamina.build.cache`) from the parent *image id*, the
step, the build args in scope and the sources' content. Only images recorded ``built_locally``
are ever returned (a loaded image whose config happens to match must never be reused:
CVE-2024-24557); a row goes away with its image (``ON DELETE CASCADE``).
"""

from __future__ import annotations

import time

from lamina.digest import Digest
from lamina.store.db import Database

__all__ = ["BuildCache"]


class BuildCache:
    def __init__(self, *, db: Database) -> None:
        self._db = db

    def lookup(self, key: str) -> Digest | None:
        """The image a step with ``key`` produced, if it is still stored and built here."""
        row = self._db.conn.execute(
            "SELECT b.image FROM build_cache b JOIN images i ON i.id = b.image "
            "WHERE b.key = ? AND i.built_locally = 1",
            (key,),
        ).fetchone()
        return None if row is None else Digest(str(row[0]))

    def record(self, *, key: str, parent: Digest | None, image: Digest) -> None:
        """Remember that the step ``key`` on ``parent`` produced ``image`` (the latest wins)."""
        with self._db.transaction() as c:
            c.execute(
                "INSERT INTO build_cache(key, parent, image, created) VALUES (?,?,?,?) "
                "ON CONFLICT(key) DO UPDATE SET parent = excluded.parent, "
                "image = excluded.image, created = excluded.created",
                (key, str(parent) if parent else "scratch", str(image), time.time()),
            )

    def parent_of(self, image: Digest) -> Digest | None:
        """The image a locally built ``image`` was built on (Docker's ``Parent``), if known."""
        row = self._db.conn.execute(
            "SELECT parent FROM build_cache WHERE image = ? AND parent != 'scratch' "
            "ORDER BY created DESC LIMIT 1",
            (str(image),),
        ).fetchone()
        return None if row is None else Digest(str(row[0]))

    def has_children(self, image: Digest) -> bool:
        """True while a cached step built on ``image`` still has its image."""
        row = self._db.conn.execute(
            "SELECT 1 FROM build_cache WHERE parent = ? LIMIT 1", (str(image),)
        ).fetchone()
        return row is not None

    def descendants(self, image: Digest) -> set[Digest]:
        """Images built here on ``image``, on those, and so on (Docker's children by
        ``Parent``, walked down): what ``ps --filter ancestor=`` counts as made from it."""
        rows = self._db.conn.execute(
            "WITH RECURSIVE down(id) AS (SELECT ? UNION "
            "SELECT b.image FROM build_cache b JOIN down ON b.parent = down.id) "
            "SELECT id FROM down WHERE id != ?",
            (str(image), str(image)),
        ).fetchall()
        return {Digest(str(r[0])) for r in rows}

    def intermediates(self) -> set[Digest]:
        """Images some cached step was built on: Docker's "intermediate images", which
        ``images`` hides and ``image prune`` keeps unless asked for all."""
        rows = self._db.conn.execute(
            "SELECT DISTINCT parent FROM build_cache WHERE parent != 'scratch'"
        ).fetchall()
        return {Digest(str(r[0])) for r in rows}

    def count(self) -> int:
        return int(self._db.conn.execute("SELECT count(*) FROM build_cache").fetchone()[0])
