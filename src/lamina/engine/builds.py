"""Build service: ``lamina build`` wired to the store, the image resolver and the runtime."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from lamina.build.builder import Builder, BuildRequest, BuildResult, CachePolicy, RunOutput
from lamina.build.instructions import NetworkMode
from lamina.engine.images import ImageService
from lamina.image.model import Image
from lamina.oci import reference
from lamina.store.store import Store

if TYPE_CHECKING:
    from lamina.runtime import Runtime

__all__ = [
    "BuildRequest",
    "BuildResult",
    "BuildService",
    "CachePolicy",
    "NetworkMode",
    "RunOutput",
]


class BuildService:
    def __init__(self, store: Store, *, images: ImageService) -> None:
        self._store = store
        self._images = images

    def _resolve_base(self, ref: str) -> Image:
        # Only local images: lamina has no registry client yet, and a build never pulls.
        from lamina.transports import local

        return local.read(self._store, self._images.resolve(ref))

    def _runtime(self) -> Runtime:
        from lamina.runtime import Runtime

        return Runtime(state_dir=self._store.containers.runtime_dir)

    def build(
        self,
        request: BuildRequest,
        *,
        tags: Sequence[str] = (),
        report: Callable[[str], None],
    ) -> BuildResult:
        """Build ``request``; tag the result with ``tags`` (normalised before anything runs,
        so a bad name fails fast)."""
        names = [reference.normalize(t) for t in tags]
        builder = Builder(
            store=self._store,
            resolve_base=self._resolve_base,
            runtime=self._runtime,
            # <root>/buildcache: RUN --mount=type=cache dirs, named by a hash of their id.
            cache_root=self._store.root / "buildcache",
            report=report,
        )
        result = builder.build(request)
        for name in names:
            self._store.images.tag(result.image_id, name)
        return result
