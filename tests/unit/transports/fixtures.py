"""Expected values for the peers' fixtures, read from the peers' own inspect JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures"
BUSYBOX = FIXTURES / "busybox"
MULTISTAGE = FIXTURES / "multistage"


def inspect(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text())
    return doc[0] if isinstance(doc, list) else doc


def podman_busybox() -> dict[str, Any]:
    return inspect(BUSYBOX / "busybox.podman-image-inspect.json")


def docker_busybox() -> dict[str, Any]:
    return inspect(BUSYBOX / "busybox.docker-image-inspect.json")
