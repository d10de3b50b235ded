"""System service: info, verify, disk usage, prune."""

from __future__ import annotations

from collections import Counter
from typing import Any

from msgspec import Struct

from lamina.oci import reference
from lamina.store.store import GcResult, Problem, Store


class ImageUsage(Struct, frozen=True, kw_only=True):
    id: str
    names: tuple[str, ...]
    created: str
    size: int  # all its layers
    shared: int  # bytes of layers another image uses too
    unique: int  # bytes only this image holds
    containers: int


class DiskUsage(Struct, frozen=True, kw_only=True):
    """``docker system df``: images count layers shared between images once."""

    images: list[ImageUsage]
    images_total: int  # bytes of all distinct layers
    images_reclaimable: int  # bytes no in-use image needs
    layers: int
    blobs_bytes: int


class SystemService:
    def __init__(self, store: Store) -> None:
        self._store = store

    def info(self) -> dict[str, Any]:
        info = dict(self._store.info())
        info.setdefault("Root", str(self._store.root))
        info.setdefault("Driver", self._store.driver.name)
        return info

    def verify(self) -> list[Problem]:
        """Re-hash every blob; report mismatches, missing blobs and orphans."""
        return self._store.verify()

    def df(self) -> DiskUsage:
        store = self._store
        records = store.images.list()
        layer_size = {rec.chain_id: rec.content_size for rec in store.layers.list()}
        users = Counter(c for rec in records for c in set(rec.layers))
        rows: list[ImageUsage] = []
        active_layers: set[str] = set()
        for rec in records:
            in_use = len(store.images.users(rec.id))
            if in_use:
                active_layers.update(rec.layers)
            sizes = [(c, layer_size.get(c, 0)) for c in rec.layers]
            shared = sum(s for c, s in sizes if users[c] > 1)
            rows.append(
                ImageUsage(
                    id=str(rec.id),
                    names=tuple(reference.familiar(n) for n in rec.names),
                    created=rec.created or "",
                    size=sum(s for _, s in sizes),
                    shared=shared,
                    unique=sum(s for _, s in sizes) - shared,
                    containers=in_use,
                )
            )
        referenced = set(users)
        total = sum(layer_size[c] for c in referenced if c in layer_size)
        reclaimable = sum(layer_size[c] for c in referenced - active_layers if c in layer_size)
        return DiskUsage(
            images=rows,
            images_total=total,
            images_reclaimable=reclaimable,
            layers=len(layer_size),
            blobs_bytes=store.blobs.total_size(),
        )

    def gc(self) -> GcResult:
        """Remove layers and blobs nothing references."""
        return self._store.gc()
