"""The composition root: one store, the services built on it."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from lamina.engine.images import ImageService
from lamina.engine.system import SystemService
from lamina.store.paths import default_root
from lamina.store.store import Store


class Engine:
    """``Engine.open(root)`` → ``.images``, ``.system``. Close it (or use ``with``)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.images = ImageService(store)
        self.system = SystemService(store)

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
