"""System service: info and verify."""

from __future__ import annotations

from typing import Any

from lamina.store.store import Problem, Store


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
