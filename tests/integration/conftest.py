"""Session-scoped peers for the interop tests (helpers live in ``interop.py``).

Every store lives under one tmpfs dir per session (/dev/shm): podman/buildah/skopeo with a
private config, dockerd 20.10 on a private socket, lamina roots per test (``shm_tmp``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests are not a package

from interop import REPO, Lamina, run

from lamina.testing.peers import DockerDaemon, PodmanEnv


@pytest.fixture(scope="session")
def session_shm() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="lamina-interop-", dir="/dev/shm"))
    try:
        yield d
    finally:
        subprocess.run(["umount", "-R", "-l", str(d)], capture_output=True, check=False)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def penv(session_shm: Path) -> Iterator[PodmanEnv]:
    env = PodmanEnv.create(session_shm / "podman")
    try:
        yield env
    finally:
        env.run("podman", "rm", "-af", check=False)
        env.reset()


@pytest.fixture(scope="session")
def dockerd(session_shm: Path) -> Iterator[DockerDaemon]:
    daemon = DockerDaemon(session_shm / "docker").start()
    try:
        yield daemon
    finally:
        daemon.run("system", "prune", "-af", check=False)
        daemon.stop()


@pytest.fixture(scope="session")
def busybox_rootfs_tar(session_shm: Path) -> Path:
    out = session_shm / "busybox-rootfs.tar"
    run([str(REPO / "scripts" / "make-busybox-rootfs"), str(out)])
    return out


@pytest.fixture
def lamina(shm_tmp: Path) -> Lamina:
    # shm_tmp unmounts and removes everything under it, image mounts included.
    return Lamina(shm_tmp / "root")
