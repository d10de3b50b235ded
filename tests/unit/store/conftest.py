"""Fixtures for the store's unit tests (helpers live in store_fakes.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from store_fakes import open_fake_store

from lamina.store.store import Store


@pytest.fixture
def store(shm_tmp: Path) -> Iterator[Store]:
    s = open_fake_store(shm_tmp / "root")
    try:
        yield s
    finally:
        s.close()
