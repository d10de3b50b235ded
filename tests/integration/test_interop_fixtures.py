"""Every image in ../shared/fixtures loads in lamina, and its merged tree equals the peer's view
of the same image: ``umoci unpack`` of the layout, or ``podman image mount`` after ``podman
load`` into a private store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from interop import FIXTURES, Lamina, assert_same_tree, podman_load, podman_tree, run, umoci_tree

from lamina.testing.peers import PodmanEnv

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_overlay, pytest.mark.slow]

LAYOUTS = [
    pytest.param("busybox/busybox.oci-layout.tar", id="oci-layout-gzip"),
    # umoci 0.4.7 cannot unpack zstd layers; podman checks that fixture below.
    pytest.param("busybox/busybox.oci-layout.umoci.tar", id="oci-layout-umoci"),
    pytest.param("multistage/multistage.oci-layout.tar", id="multistage"),
]

ARCHIVES = [
    pytest.param("busybox/busybox.oci-layout.tar", id="oci-layout-gzip"),
    pytest.param("busybox/busybox.oci-layout-zstd.tar", id="oci-layout-zstd"),
    pytest.param("busybox/busybox.oci-archive.podman.tar", id="oci-archive-podman"),
    pytest.param("busybox/busybox.docker-archive.skopeo.tar", id="docker-archive-skopeo"),
    pytest.param("busybox/busybox.docker-archive.podman.tar", id="docker-archive-podman"),
    pytest.param("busybox/busybox.docker-save.tar", id="docker-save-20.10"),
    pytest.param("busybox/busybox-import.docker-archive.podman.tar", id="busybox-import"),
    pytest.param("multistage/multistage.oci-layout.tar", id="multistage"),
]


def _extract(archive: Path, dest: Path) -> Path:
    dest.mkdir()
    run(["tar", "-xf", str(archive), "-C", str(dest)])
    return dest


@pytest.mark.needs_peer("umoci")
@pytest.mark.parametrize("name", LAYOUTS)
def test_layout_fixture_tree_equals_umoci_unpack(name: str, lamina: Lamina, shm_tmp: Path) -> None:
    layout = _extract(FIXTURES / name, shm_tmp / "layout")
    theirs = umoci_tree(layout, "latest", shm_tmp)
    image = lamina.load(layout)  # a layout dir loads like an archive (docker load detection)
    assert_same_tree(lamina.tree(image), theirs)


@pytest.mark.needs_peer("podman")
@pytest.mark.parametrize("name", ARCHIVES)
def test_fixture_tree_equals_podman_mount(
    name: str, lamina: Lamina, penv: PodmanEnv, shm_tmp: Path
) -> None:
    archive = FIXTURES / name
    if "oci-layout" in name or "multistage" in name:
        # podman load reads oci-archive; a tar of a layout is one (with ./ prefixes).
        shutil.copy(archive, shm_tmp / "in.tar")
        archive = shm_tmp / "in.tar"
    image_id = podman_load(penv, archive)
    theirs = podman_tree(penv, image_id)
    image = lamina.load(archive)
    assert lamina.image_id(image) == image_id  # same config bytes, same image id
    assert_same_tree(lamina.tree(image), theirs)
    penv.run("podman", "rmi", "-f", image_id, check=False)
