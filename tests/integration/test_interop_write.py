"""Every image lamina writes is read by the peers that read that format, and the merged tree
each peer shows equals lamina's: docker-archive by ``docker load`` (dockerd 20.10), ``podman
load`` and skopeo; oci-archive by ``podman load`` and skopeo; an OCI layout dir by skopeo and
``umoci unpack``. The JSON lamina writes validates against the OCI schemas, and saving an image
loaded from a peer keeps its layer digests and config bytes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from interop import (
    FIXTURES,
    REPO,
    Lamina,
    assert_same_tree,
    docker_tree,
    podman_load,
    podman_tree,
    run,
    umoci_tree,
)

from lamina.testing.peers import DockerDaemon, PodmanEnv

sys.path.insert(0, str(REPO / "tests" / "unit" / "oci"))
import oci_schemas

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_overlay, pytest.mark.slow]

# Two layers (a busybox-based builder stage copied into scratch, plus the config's history):
# richer than one layer, and written by buildah (so the blobs are a peer's).
MULTISTAGE = FIXTURES / "multistage" / "multistage.oci-layout.tar"
BUSYBOX = FIXTURES / "busybox" / "busybox.docker-save.tar"


def _blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def _check_layout_json(layout: Path) -> dict[str, Any]:
    """Validate index.json, the manifest and the config of a one-image layout; the manifest."""
    oci_schemas.check("layout", json.loads((layout / "oci-layout").read_text()))
    index = json.loads((layout / "index.json").read_text())
    oci_schemas.check("index", index)
    manifest: dict[str, Any] = json.loads(_blob(layout, index["manifests"][0]["digest"]))
    oci_schemas.check("manifest", manifest)
    oci_schemas.check("config", json.loads(_blob(layout, manifest["config"]["digest"])))
    return manifest


@pytest.fixture(params=[BUSYBOX, MULTISTAGE], ids=["busybox-docker-save", "multistage"])
def loaded(request: pytest.FixtureRequest, lamina: Lamina) -> str:
    """The image loaded into lamina, tagged (the multistage layout carries no usable name)."""
    lamina("tag", lamina.load(request.param), "localhost/interop:latest")
    return "localhost/interop:latest"


@pytest.mark.needs_peer("dockerd", "podman", "skopeo", "umoci")
def test_docker_archive_is_read_by_docker_podman_and_skopeo(
    loaded: str,
    lamina: Lamina,
    dockerd: DockerDaemon,
    penv: PodmanEnv,
    shm_tmp: Path,
) -> None:
    ours = lamina.tree(loaded)
    image_id = lamina.image_id(loaded)
    archive = shm_tmp / "out.docker-archive.tar"
    lamina("save", "-o", str(archive), loaded)

    dockerd.run("load", "-i", str(archive))
    try:
        assert_same_tree(ours, docker_tree(dockerd, image_id, shm_tmp))
    finally:
        dockerd.run("rmi", "-f", image_id, check=False)

    assert podman_load(penv, archive) == image_id
    try:
        assert_same_tree(ours, podman_tree(penv, image_id))
    finally:
        penv.run("podman", "rmi", "-f", image_id, check=False)

    inspect = json.loads(penv.run("skopeo", "inspect", f"docker-archive:{archive}").stdout)
    assert len(inspect["Layers"]) == len(
        json.loads(lamina("inspect", loaded))[0]["RootFS"]["Layers"]
    )
    layout = shm_tmp / "via-skopeo"
    penv.run("skopeo", *penv.policy_args(), "copy", f"docker-archive:{archive}", f"oci:{layout}:x")
    assert_same_tree(ours, umoci_tree(layout, "x", shm_tmp))


@pytest.mark.needs_peer("podman", "skopeo")
@pytest.mark.parametrize("compress", [None, "gzip", "zstd", "none"])
def test_oci_archive_is_read_by_podman_and_skopeo(
    compress: str | None, loaded: str, lamina: Lamina, penv: PodmanEnv, shm_tmp: Path
) -> None:
    ours = lamina.tree(loaded)
    image_id = lamina.image_id(loaded)
    archive = shm_tmp / "out.oci-archive.tar"
    extra = ["--compress", compress] if compress else []
    lamina("save", "-o", str(archive), "--format", "oci-archive", *extra, loaded)

    raw = json.loads(penv.run("skopeo", "inspect", "--raw", f"oci-archive:{archive}").stdout)
    oci_schemas.check("manifest", raw)
    if compress == "zstd":
        assert {d["mediaType"] for d in raw["layers"]} == {
            "application/vnd.oci.image.layer.v1.tar+zstd"
        }
    elif compress == "none":
        assert {d["mediaType"] for d in raw["layers"]} == {"application/vnd.oci.image.layer.v1.tar"}
    assert raw["config"]["digest"] == image_id  # config bytes unchanged whatever --compress says

    assert podman_load(penv, archive) == image_id
    try:
        assert_same_tree(ours, podman_tree(penv, image_id))
    finally:
        penv.run("podman", "rmi", "-f", image_id, check=False)


@pytest.mark.needs_peer("skopeo", "umoci")
@pytest.mark.parametrize("compress", [None, "gzip", "none"])  # umoci 0.4.7 has no zstd
def test_oci_layout_is_read_by_skopeo_and_umoci(
    compress: str | None, loaded: str, lamina: Lamina, penv: PodmanEnv, shm_tmp: Path
) -> None:
    ours = lamina.tree(loaded)
    layout = shm_tmp / "layout"
    extra = ["--compress", compress] if compress else []
    lamina("save", "-o", str(layout), "--format", "oci", *extra, loaded)
    manifest = _check_layout_json(layout)
    ref = json.loads((layout / "index.json").read_text())["manifests"][0]["annotations"][
        "org.opencontainers.image.ref.name"
    ]
    raw = json.loads(penv.run("skopeo", "inspect", "--raw", f"oci:{layout}:{ref}").stdout)
    assert raw == manifest
    # skopeo copy re-verifies every blob against its descriptor.
    penv.run("skopeo", *penv.policy_args(), "copy", f"oci:{layout}:{ref}", f"oci:{shm_tmp}/c:x")
    assert_same_tree(ours, umoci_tree(layout, ref, shm_tmp))


def test_save_keeps_peer_layer_digests_and_config_bytes(lamina: Lamina, shm_tmp: Path) -> None:
    """buildah's layout in, lamina's layout out: same layer blobs, same config bytes."""
    src = shm_tmp / "src"
    src.mkdir()
    run(["tar", "-xf", str(MULTISTAGE), "-C", str(src)])
    src_index = json.loads((src / "index.json").read_text())
    src_manifest = json.loads(_blob(src, src_index["manifests"][0]["digest"]))
    image = lamina.load(src)
    out = shm_tmp / "out"
    lamina("save", "-o", str(out), "--format", "oci", image)
    manifest = _check_layout_json(out)
    assert [d["digest"] for d in manifest["layers"]] == [
        d["digest"] for d in src_manifest["layers"]
    ]
    assert manifest["config"]["digest"] == src_manifest["config"]["digest"]
    config = _blob(out, manifest["config"]["digest"])
    assert config == _blob(src, src_manifest["config"]["digest"])
    for d in manifest["layers"]:
        assert _blob(out, d["digest"]) == _blob(src, d["digest"])

    # docker-archive: config file bytes and layer tars (diff_ids) as the peer's.
    archive = shm_tmp / "out.tar"
    lamina("save", "-o", str(archive), image)
    listing = run(["tar", "-tf", str(archive)]).stdout.decode().split()
    diff_ids = json.loads(config)["rootfs"]["diff_ids"]
    assert set(listing) == {
        "manifest.json",
        "repositories",
        f"{manifest['config']['digest'].removeprefix('sha256:')}.json",
        *(f"{d.removeprefix('sha256:')}.tar" for d in diff_ids),
    }


def test_compressed_archives_load(lamina: Lamina, shm_tmp: Path) -> None:
    """``docker save | gzip`` (docker load accepts it) and zstd, from a file and from stdin."""
    gz = shm_tmp / "busybox.tar.gz"
    zst = shm_tmp / "busybox.tar.zst"
    run(["sh", "-c", f"gzip -c {BUSYBOX} > {gz} && zstd -q -c {BUSYBOX} > {zst}"])
    plain = lamina.load(BUSYBOX)
    expected = lamina.image_id(plain)
    lamina("rmi", plain)
    assert lamina.image_id(lamina.load(gz)) == expected
    lamina("rmi", plain)
    out = lamina("load", "-q", input=zst.read_bytes())
    assert lamina.image_id(out.strip().rsplit(" ", 1)[-1]) == expected
