"""Work layers: a build step's temporary writable layer on an image's layer chain.

A RUN, COPY, ADD or WORKDIR step mounts a writable layer on the current chain, changes files
through the mount, writes the layer's own changes as a tar (:meth:`WorkLayer.diff_tar`) and
throws the layer away; the tar is then ingested as an ordinary layer. Steps that run a process
get Docker's init layer under the writable one (``/proc``, ``/dev``, ``/etc/hosts``... mount
points), so runc's mount points never show in the diff (moby's classic builder does the same
through a container's init layer).

Crash safety: both driver dirs are announced by ``staging`` rows (purpose ``build``) before they
exist, so :meth:`Store.recover` removes them once this process is dead; the parent chain is
held (``layer_holds``) while the work layer sits on it, so a concurrent gc cannot take it.
"""

from __future__ import annotations

import contextlib
import enum
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO

from msgspec import Struct

from lamina.digest import Digest
from lamina.driver.base import Driver
from lamina.errors import LayerNotFoundError
from lamina.store.containers import INIT_SUFFIX, setup_init_layer
from lamina.store.db import Database
from lamina.store.layers import new_cache_id
from lamina.store.lock import ProcessToken

__all__ = ["InitLayer", "WorkLayer", "WorkLayers"]


class InitLayer(enum.Enum):
    """Whether the work layer sits on Docker's init layer (steps that run a process)."""

    WITH = "with"
    WITHOUT = "without"


class WorkLayer(Struct, frozen=True, kw_only=True):
    layer_id: str  # the writable driver layer
    init_id: str | None  # the init layer under it, if any
    rootfs: Path  # the mounted merged dir (read-write)
    driver: Driver

    def diff_tar(self, out: IO[bytes]) -> None:
        """The step's changes as a deterministic OCI layer tar (relative to the init layer,
        so its placeholders never appear)."""
        self.driver.diff_tar(self.layer_id, out)


class WorkLayers:
    """Makes and discards :class:`WorkLayer` s; ``hold`` is the store lock (``Store.lock``)."""

    def __init__(
        self,
        *,
        db: Database,
        driver: Driver,
        hold: Callable[[], AbstractContextManager[None]],
    ) -> None:
        self._db = db
        self._driver = driver
        self._hold = hold
        self._token = ProcessToken.current()

    @contextlib.contextmanager
    def open(self, *, parent: Digest | None, init: InitLayer) -> Iterator[WorkLayer]:
        """Create, mount and yield a work layer on the chain ending at ``parent`` (None: an
        empty rootfs); on exit unmount and remove it, whatever happened."""
        layer_id = new_cache_id()
        init_id = layer_id + INIT_SUFFIX if init is InitLayer.WITH else None
        ids = [i for i in (init_id, layer_id) if i is not None]
        parent_cache = self._stage(ids, parent)
        mounted = False
        try:
            below = parent_cache
            if init_id is not None:
                # Made through a mount, as Docker makes it, so parent dirs are copied up with
                # the image's metadata; never mounted again.
                self._driver.create(init_id, parent=parent_cache, writable=True)
                merged = self._driver.mount(init_id)
                try:
                    setup_init_layer(merged)
                finally:
                    self._driver.unmount(init_id)
                below = init_id
            self._driver.create(layer_id, parent=below, writable=True)
            with self._hold():
                rootfs = self._driver.mount(layer_id)
            mounted = True
            yield WorkLayer(layer_id=layer_id, init_id=init_id, rootfs=rootfs, driver=self._driver)
        finally:
            self._discard(ids, parent, mounted=mounted)

    def _stage(self, ids: list[str], parent: Digest | None) -> str | None:
        # Under the store lock, so recovery either sees these rows or ran before the dirs exist.
        with self._hold(), self._db.transaction() as c:
            cache: str | None = None
            if parent is not None:
                row = c.execute(
                    "SELECT cache_id FROM layers WHERE chain_id = ?", (str(parent),)
                ).fetchone()
                if row is None:
                    raise LayerNotFoundError(f"layer {parent} is not stored")
                cache = str(row[0])
                c.execute(
                    "INSERT OR IGNORE INTO layer_holds(chain_id, pid, pid_start) VALUES (?,?,?)",
                    (str(parent), self._token.pid, self._token.start),
                )
            for layer_id in ids:
                c.execute(
                    "INSERT INTO staging(cache_id, pid, pid_start, purpose, created) "
                    "VALUES (?, ?, ?, 'build', ?)",
                    (layer_id, self._token.pid, self._token.start, time.time()),
                )
            return cache

    def _discard(self, ids: list[str], parent: Digest | None, *, mounted: bool) -> None:
        top = ids[-1]
        if mounted:
            with self._hold():
                self._driver.unmount(top)
        # Dirs first, rows second: a failure here leaves rows recovery finishes later.
        for layer_id in reversed(ids):
            if self._driver.exists(layer_id):
                self._driver.remove(layer_id)
        with self._db.transaction() as c:
            c.executemany("DELETE FROM staging WHERE cache_id = ?", [(i,) for i in ids])
            if parent is not None:
                c.execute(
                    "DELETE FROM layer_holds WHERE chain_id = ? AND pid = ? AND pid_start = ?",
                    (str(parent), self._token.pid, self._token.start),
                )
