"""``copy --all`` keeps every platform of an index (read back by skopeo), ``--platform``
chooses one, and two images sharing a layer store it once: removing one keeps the other whole."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from interop import FIXTURES, Lamina, assert_same_tree, run, umoci_tree

from lamina.testing.peers import PodmanEnv

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_overlay]

INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def _put(layout: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _multi_platform_layout(dest: Path) -> tuple[Path, bytes]:
    """busybox's layout plus an arm64 twin (same layer, own config) behind one index named
    ``multi``; returns the layout and the index bytes. (The twin is only data: nothing runs.)"""
    dest.mkdir()
    run(["tar", "-xf", str(FIXTURES / "busybox" / "busybox.oci-layout.tar"), "-C", str(dest)])
    top = json.loads((dest / "index.json").read_text())["manifests"][0]
    amd64 = json.loads((dest / "blobs" / "sha256" / top["digest"][7:]).read_bytes())
    config = json.loads((dest / "blobs" / "sha256" / amd64["config"]["digest"][7:]).read_bytes())
    config["architecture"] = "arm64"
    config["variant"] = "v8"
    arm_config = _put(dest, json.dumps(config).encode())
    arm = dict(amd64, config=dict(amd64["config"], **arm_config))
    arm_desc = _put(dest, json.dumps(arm).encode())
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX_TYPE,
        "manifests": [
            {
                "mediaType": MANIFEST_TYPE,
                **{k: top[k] for k in ("digest", "size")},
                "platform": {"architecture": "amd64", "os": "linux"},
            },
            {
                "mediaType": MANIFEST_TYPE,
                **arm_desc,
                "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
            },
        ],
    }
    raw = json.dumps(index).encode()
    entry = {"mediaType": INDEX_TYPE, **_put(dest, raw)}
    entry["annotations"] = {"org.opencontainers.image.ref.name": "multi"}
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    return dest, raw


@pytest.mark.needs_peer("skopeo")
def test_copy_all_keeps_every_platform(lamina: Lamina, penv: PodmanEnv, shm_tmp: Path) -> None:
    src, raw_index = _multi_platform_layout(shm_tmp / "src")
    lamina("copy", "-q", "--all", f"oci:{src}:multi", f"oci:{shm_tmp}/dst:multi")
    # Nothing had to change, so the index is kept byte for byte.
    got = penv.run("skopeo", "inspect", "--raw", f"oci:{shm_tmp}/dst:multi").stdout
    assert got == raw_index
    # skopeo --all re-reads and verifies every child manifest and blob.
    for arch in ("amd64", "arm64"):
        out = penv.run(
            "skopeo", "--override-arch", arch, "inspect", f"oci:{shm_tmp}/dst:multi"
        ).stdout
        assert json.loads(out)["Architecture"] == arch
    penv.run(
        "skopeo", *penv.policy_args(), "copy", "--all",
        f"oci:{shm_tmp}/dst:multi", f"oci:{shm_tmp}/again:multi",
    )  # fmt: skip

    # Recompressed: a new index (children changed), both platforms, zstd layers.
    out_tar = shm_tmp / "multi.oci-archive.tar"
    lamina(
        "copy", "-q", "--all", "--compress", "zstd", f"oci:{src}:multi", f"oci-archive:{out_tar}:m"
    )
    index = json.loads(penv.run("skopeo", "inspect", "--raw", f"oci-archive:{out_tar}:m").stdout)
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64", "arm64"]
    penv.run(
        "skopeo", *penv.policy_args(), "copy", "--all",
        f"oci-archive:{out_tar}:m", f"oci:{shm_tmp}/from-archive:m",
    )  # fmt: skip
    got_dir = shm_tmp / "got"
    got_dir.mkdir()
    run(["tar", "-xf", str(out_tar), "-C", str(got_dir)])
    for entry in index["manifests"]:
        child = json.loads((got_dir / "blobs" / "sha256" / entry["digest"][7:]).read_bytes())
        assert {d["mediaType"] for d in child["layers"]} == {
            "application/vnd.oci.image.layer.v1.tar+zstd"
        }


def test_platform_choice(lamina: Lamina, shm_tmp: Path) -> None:
    src, _ = _multi_platform_layout(shm_tmp / "src")
    lamina("copy", "-q", f"oci:{src}:multi", "lamina:localhost/host:latest")
    lamina(
        "copy", "-q", "--platform", "linux/arm64/v8", f"oci:{src}:multi", "lamina:localhost/arm:1"
    )
    inspect = json.loads(lamina("inspect", "localhost/host:latest", "localhost/arm:1"))
    assert [i["Architecture"] for i in inspect] == ["amd64", "arm64"]


@pytest.mark.needs_peer("umoci")
def test_shared_layer_stored_once_and_survives_rmi(lamina: Lamina, shm_tmp: Path) -> None:
    src, _ = _multi_platform_layout(shm_tmp / "src")
    lamina("copy", "-q", f"oci:{src}:multi", "lamina:localhost/a:latest")
    lamina("copy", "-q", "--platform", "linux/arm64/v8", f"oci:{src}:multi", "lamina:localhost/b:1")
    a, b = json.loads(lamina("inspect", "localhost/a:latest", "localhost/b:1"))
    assert a["Id"] != b["Id"] and a["RootFS"]["Layers"] == b["RootFS"]["Layers"]
    layer_dirs = [p for p in (lamina.root / "overlay").iterdir() if p.name not in ("l", "empty")]
    assert len(layer_dirs) == 1  # one layer record for both images
    blob = a["RootFS"]["Layers"][0]  # uncompressed diff_id; the stored blob is the gzip one
    assert blob.startswith("sha256:")

    lamina("rmi", "localhost/a:latest")
    lamina("verify")  # exits 1 on any problem
    plain = shm_tmp / "plain"  # umoci 0.4.7 cannot pick a platform from an index
    plain.mkdir()
    run(["tar", "-xf", str(FIXTURES / "busybox" / "busybox.oci-layout.tar"), "-C", str(plain)])
    theirs = umoci_tree(plain, "latest", shm_tmp)
    assert_same_tree(lamina.tree("localhost/b:1"), theirs)
