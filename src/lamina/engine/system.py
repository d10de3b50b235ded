"""System service: info, verify, disk usage, prune."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from msgspec import Struct

from lamina.oci import reference
from lamina.store.buildcache import BuildCache
from lamina.store.store import GcResult, Problem, Store

if TYPE_CHECKING:
    from lamina.engine.container_list import ContainerSummary
    from lamina.engine.containers import ContainerService


class ImageUsage(Struct, frozen=True, kw_only=True):
    id: str
    names: tuple[str, ...]
    created: str
    size: int  # all its layers
    shared: int  # bytes of layers another image uses too
    unique: int  # bytes only this image holds
    containers: int


class VolumeUsage(Struct, frozen=True, kw_only=True):
    name: str
    links: int  # containers that use it (Docker's UsageData.RefCount)
    size: int  # bytes of its data (moby's directory.Size)


class DiskUsage(Struct, frozen=True, kw_only=True):
    """``docker system df``: images count layers shared between images once."""

    images: list[ImageUsage]  # as ``images`` lists them: no intermediate build images
    images_total: int  # bytes of all distinct layers
    images_reclaimable: int  # bytes no in-use image needs
    containers: list[ContainerSummary]  # every container, with its rw layer's size
    volumes: list[VolumeUsage]
    build_cache: int  # cached build steps' images (Docker's classic builder's intermediates)
    layers: int
    blobs_bytes: int


class SystemService:
    def __init__(self, store: Store, *, containers: Callable[[], ContainerService]) -> None:
        """``containers`` gives the engine's container service (``df`` asks it for each
        container's state and rw size)."""
        self._store = store
        self._containers = containers

    def info(self) -> dict[str, Any]:
        info = dict(self._store.info())
        info.setdefault("Root", str(self._store.root))
        info.setdefault("Driver", self._store.driver.name)
        return info

    def verify(self) -> list[Problem]:
        """Re-hash every blob; report mismatches, missing blobs and orphans."""
        return self._store.verify()

    def df(self) -> DiskUsage:
        """``docker system df``. Images are those ``images`` lists (an intermediate build
        image is counted as build cache, as Docker's classic builder's are not listed); their
        total is every layer they use, once; reclaimable is what no image a container uses
        needs (where Docker subtracts each in-use image's unshared bytes, counting layers it
        shares with an unused image as reclaimable)."""
        from lamina.engine.volumes import data_size

        store = self._store
        intermediates = BuildCache(db=store.db).intermediates()
        records = store.images.list()
        layer_size = {rec.chain_id: rec.content_size for rec in store.layers.list()}
        users = Counter(c for rec in records for c in set(rec.layers))
        rows: list[ImageUsage] = []
        active_layers: set[str] = set()
        for rec in records:
            in_use = len(store.images.users(rec.id))
            if in_use:
                active_layers.update(rec.layers)
            if not rec.names and rec.id in intermediates:
                continue
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
        volumes = [
            VolumeUsage(
                name=v.name,
                links=len({cid for cid, _ in store.volumes.users(v.name)}),
                size=data_size(v.mountpoint),
            )
            for v in store.volumes.list()
        ]
        return DiskUsage(
            images=rows,
            images_total=total,
            images_reclaimable=reclaimable,
            containers=self._containers().list(all_=True, size=True),
            volumes=volumes,
            build_cache=sum(1 for rec in records if not rec.names and rec.id in intermediates),
            layers=len(layer_size),
            blobs_bytes=store.blobs.total_size(),
        )

    def gc(self) -> GcResult:
        """Remove layers and blobs nothing references."""
        return self._store.gc()
