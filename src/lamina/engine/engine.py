"""The composition root: one store, the services built on it."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from lamina.store.paths import default_root
from lamina.store.store import Store

if TYPE_CHECKING:
    from lamina.engine.builds import BuildService
    from lamina.engine.containers import ContainerService
    from lamina.engine.forensics import ForensicsService
    from lamina.engine.images import ImageService
    from lamina.engine.system import SystemService
    from lamina.engine.volumes import VolumeService


class Engine:
    """``Engine.open(root)`` → ``.images``, ``.containers``, ``.volumes``, ``.system``,
    ``.builds``. Close it (or use ``with``)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._images: ImageService | None = None
        self._containers: ContainerService | None = None
        self._volumes: VolumeService | None = None
        self._forensics: ForensicsService | None = None
        self._builds: BuildService | None = None
        self._system: SystemService | None = None

    # Services are built on first use, so a command imports only what it needs (each CLI
    # call is a new process: start-up time is user-visible).

    @property
    def images(self) -> ImageService:
        if self._images is None:
            from lamina.engine.images import ImageService

            self._images = ImageService(self.store, running=self._container_running)
        return self._images

    def _container_running(self, container_id: str) -> bool:
        # The container service is made only when an image turns out to have containers.
        return self.containers.is_running(container_id)

    @property
    def containers(self) -> ContainerService:
        if self._containers is None:
            from lamina.engine.containers import ContainerService

            self._containers = ContainerService(self.store, images=lambda: self.images)
        return self._containers

    @property
    def system(self) -> SystemService:
        if self._system is None:
            from lamina.engine.system import SystemService

            self._system = SystemService(self.store, containers=lambda: self.containers)
        return self._system

    @property
    def volumes(self) -> VolumeService:
        if self._volumes is None:
            from lamina.engine.volumes import VolumeService

            self._volumes = VolumeService(self.store)
        return self._volumes

    @property
    def builds(self) -> BuildService:
        """``lamina build`` (built on first use: the Dockerfile parser loads only for builds)."""
        if self._builds is None:
            from lamina.engine.builds import BuildService

            self._builds = BuildService(self.store, images=self.images)
        return self._builds

    @property
    def forensics(self) -> ForensicsService:
        """Layer stories, traces, recovery, secrets, waste, deep verify (built on first use:
        its rule set is compiled at import)."""
        if self._forensics is None:
            from lamina.engine.forensics import ForensicsService

            self._forensics = ForensicsService(self.store, resolve=self.images.resolve)
        return self._forensics

    @classmethod
    def open(cls, root: Path | str | None = None, *, driver: str | None = None) -> Engine:
        return cls(Store.open(Path(root) if root is not None else default_root(), driver=driver))

    @property
    def root(self) -> Path:
        return self.store.root

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
