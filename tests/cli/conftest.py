from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def busybox_tar() -> Iterator[Path]:
    """The demo's busybox rootfs (Debian busybox-static), gzip-compressed."""
    d = Path(tempfile.mkdtemp(prefix="lamina-bb-", dir="/dev/shm"))
    out = d / "busybox.tar.gz"
    subprocess.run([str(REPO / "scripts" / "make-busybox-rootfs"), str(out)], check=True)
    yield out
    out.unlink()
    d.rmdir()
