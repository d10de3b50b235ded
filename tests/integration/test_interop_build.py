"""Richer images built by the peers (buildah bud --layers, docker 20.10's legacy builder) from
tests/data/build/rich -- whiteouts, an opaque dir, hardlinks, symlinks, a FIFO, a char device,
setuid/setgid, Unicode names, a file added then deleted, security.capability -- saved by the
peer, loaded by lamina: lamina's merged tree equals the peer's own view of the image."""

from __future__ import annotations

import shutil
import struct
import tarfile
from pathlib import Path
from typing import Any

import pytest
from interop import BUILD_DATA, Lamina, assert_same_tree, docker_tree, podman_tree

from lamina.testing.peers import DockerDaemon, PodmanEnv

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_overlay, pytest.mark.slow]

# VFS_CAP_REVISION_2 with the effective bit, cap_net_raw (13) permitted: what `setcap
# cap_net_raw+ep` writes.
CAPABILITY = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)
TAG = "localhost/rich:latest"


def _context(dest: Path) -> Path:
    shutil.copytree(BUILD_DATA / "rich", dest)
    with tarfile.open(dest / "caps.tar", "w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind in (("caps", tarfile.DIRTYPE), ("caps/ping", tarfile.REGTYPE)):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = 0o755
            if kind == tarfile.REGTYPE:
                data = b"#!/bin/sh\necho ping\n"
                info.size = len(data)
                info.pax_headers = {
                    "SCHILY.xattr.security.capability": CAPABILITY.decode(
                        "utf-8", "surrogateescape"
                    ),
                    "SCHILY.xattr.user.note": "kept?",
                }
                import io

                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return dest


@pytest.fixture(scope="session")
def buildah_rich(penv: PodmanEnv, busybox_rootfs_tar: Path, session_shm: Path) -> dict[str, Path]:
    """The rich image built by buildah, saved as docker-archive and oci-archive by podman."""
    ctx = _context(session_shm / "ctx-buildah")
    penv.run("podman", "import", str(busybox_rootfs_tar), "localhost/bbase:latest")
    penv.run("buildah", "bud", "--layers", "--network", "none", "-t", TAG, str(ctx))
    out = {
        "docker-archive": session_shm / "rich.buildah.docker-archive.tar",
        "oci-archive": session_shm / "rich.buildah.oci-archive.tar",
    }
    penv.run("podman", "save", "--format", "docker-archive", "-o", str(out["docker-archive"]), TAG)
    penv.run("podman", "save", "--format", "oci-archive", "-o", str(out["oci-archive"]), TAG)
    return out


@pytest.fixture(scope="session")
def docker_rich(dockerd: DockerDaemon, busybox_rootfs_tar: Path, session_shm: Path) -> Path:
    ctx = _context(session_shm / "ctx-docker")
    dockerd.run("import", str(busybox_rootfs_tar), "localhost/bbase:latest")
    r = dockerd.run("build", "--network", "none", "-t", TAG, str(ctx), check=False)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-3000:]
    out = session_shm / "rich.docker-save.tar"
    dockerd.run("save", "-o", str(out), TAG)
    return out


def _check_rich(tree: dict[str, tuple[Any, ...]]) -> None:
    """The cases the Dockerfile sets up are really in the peer's tree (so equality means
    something)."""
    assert "data/gone" not in tree and "data/added-then-deleted" not in tree
    assert "data/opq/new" in tree and "data/opq/old" not in tree and "data/opq/sub" not in tree
    # Linking h4 to h1 in the last layer copied h1 up: the merged tree has two link groups.
    assert tree["data/h1"][7] == ("data/h1", "data/h4")
    assert tree["data/h2"][7] == ("data/h2", "data/keep/h3")
    assert tree["data/fifo"][0] == "fifo" and tree["data/null"][:1] == ("char",)
    assert tree["data/null"][5] == "1:3"
    assert tree["data/suid"][1] == 0o4755 and tree["data/sgid"][1] == 0o2711
    assert tree["data/ünïcödé ✓/日本語.txt"][0] == "file"
    assert tree["data/keep/f"][2:4] == (1000, 1000)
    assert ("security.capability", CAPABILITY) in tree["caps/ping"][6]


@pytest.mark.needs_peer("buildah", "podman")
@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_buildah_image_tree_equals_podman_mount(
    fmt: str, buildah_rich: dict[str, Path], penv: PodmanEnv, lamina: Lamina
) -> None:
    theirs = podman_tree(penv, TAG)
    _check_rich(theirs)
    image = lamina.load(buildah_rich[fmt])
    assert_same_tree(lamina.tree(image), theirs)


@pytest.mark.needs_peer("dockerd")
def test_docker_image_tree_equals_dockerd(
    docker_rich: Path, dockerd: DockerDaemon, lamina: Lamina, shm_tmp: Path
) -> None:
    theirs = docker_tree(dockerd, TAG, shm_tmp)
    _check_rich(theirs)
    image = lamina.load(docker_rich)
    assert_same_tree(lamina.tree(image), theirs)
