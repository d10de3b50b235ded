from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from layer_tars import Sandbox


@pytest.fixture
def sandbox(shm_tmp: Path) -> Sandbox:
    return Sandbox(shm_tmp).setup()
