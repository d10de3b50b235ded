from __future__ import annotations

import copy
import io
import json
import tarfile
from pathlib import Path

import pytest
from fixtures import BUSYBOX, MULTISTAGE, docker_busybox, inspect, podman_busybox

from lamina.errors import (
    BlobNotFoundError,
    DigestMismatchError,
    ImageNotFoundError,
    InvalidArchiveError,
    InvalidContentError,
    InvalidDigestError,
    InvalidManifestError,
    LimitExceededError,
    UnsafeArchivePathError,
    UsageError,
)
from lamina.image.validate import validate_image
from lamina.oci import mediatype as mt
from lamina.transports import docker_archive, oci_archive, oci_layout

ARCHIVES = [
    "busybox.docker-archive.skopeo.tar",  # <diffid>.tar + <v1id>/layer.tar symlink
    "busybox.docker-archive.podman.tar",
    "busybox.docker-save.tar",  # Docker 20.10 legacy <v1id>/layer.tar
]


@pytest.mark.parametrize("name", ARCHIVES)
def test_fixtures_match_peers(name: str) -> None:
    docker = docker_busybox()
    [archived] = docker_archive.read_all(BUSYBOX / name)
    img = archived.image
    validate_image(img)
    assert archived.names == ("localhost/busybox:latest",)
    assert img.image_id == docker["Id"]
    assert [str(d) for d in img.config.diff_ids] == docker["RootFS"]["Layers"]
    assert img.media_type == mt.DOCKER_MANIFEST
    assert [la.media_type for la in img.layers()] == [mt.DOCKER_LAYER]
    assert img.config.created == docker["Created"]


def test_podman_import_fixture() -> None:
    expected = inspect(BUSYBOX / "busybox-import.podman-image-inspect.json")
    img = docker_archive.read(BUSYBOX / "busybox-import.docker-archive.podman.tar")
    validate_image(img)
    assert img.image_id == "sha256:" + expected["Id"]
    assert [str(d) for d in img.config.diff_ids] == expected["RootFS"]["Layers"]


def test_ref_selection() -> None:
    path = BUSYBOX / "busybox.docker-save.tar"
    assert docker_archive.read(path, "localhost/busybox").image_id == docker_busybox()["Id"]
    assert docker_archive.read(path, "@0").image_id == docker_busybox()["Id"]
    with pytest.raises(ImageNotFoundError):
        docker_archive.read(path, "busybox")  # docker.io/library/busybox is another name
    with pytest.raises(ImageNotFoundError):
        docker_archive.read(path, "@1")


def test_write_round_trip_multi_image(tmp_path: Path) -> None:
    oci = oci_archive.read(BUSYBOX / "busybox.oci-layout.tar")  # gzip layer: inflated on write
    legacy = docker_archive.read(BUSYBOX / "busybox.docker-save.tar")
    other = oci_archive.read(MULTISTAGE / "multistage.oci-layout.tar")
    out = tmp_path / "out.tar"
    docker_archive.write_all(
        out,
        [(oci, ["busybox", "busybox:2"]), (other, ["m:1"]), (legacy, ["quay.io/a/b:1", "busybox"])],
    )
    with tarfile.open(out) as tf:
        names = tf.getnames()
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        repositories = json.load(tf.extractfile("repositories"))  # type: ignore[arg-type]
    layer_hex = podman_busybox()["RootFS"]["Layers"][0][7:]
    assert names.count(f"{layer_hex}.tar") == 1  # shared layer stored once
    # oci and legacy are one image (same config bytes): one entry, as docker save writes it,
    # each name once
    assert [m["RepoTags"] for m in manifest] == [
        ["busybox:latest", "busybox:2", "quay.io/a/b:1"],
        ["m:1"],
    ]
    assert repositories["busybox"]["2"] == layer_hex
    images = docker_archive.read_all(out)
    assert [a.names for a in images] == [
        (
            "docker.io/library/busybox:latest",
            "docker.io/library/busybox:2",
            "quay.io/a/b:1",
        ),
        ("docker.io/library/m:1",),
    ]
    assert legacy.image_id == oci.image_id
    for a in images:
        validate_image(a.image)
    assert images[0].image.config.diff_ids == oci.config.diff_ids
    assert images[1].image.image_id == other.image_id
    with pytest.raises(UsageError, match="2 images"):
        docker_archive.read(out)


def test_untagged_write(tmp_path: Path) -> None:
    img = docker_archive.read(BUSYBOX / "busybox.docker-save.tar")
    docker_archive.write(tmp_path / "u.tar", img)
    [a] = docker_archive.read_all(tmp_path / "u.tar")
    assert a.repo_tags == ()
    assert a.image.digest == img.digest


# --- hostile input -------------------------------------------------------------------------


def _rewrite(
    src: Path,
    dest: Path,
    *,
    manifest: object | None = None,
    replace: dict[str, bytes] | None = None,
    extra: list[tarfile.TarInfo] | None = None,
) -> Path:
    """Copy a docker-archive, optionally changing manifest.json, member bytes, or adding links."""
    replace = replace or {}
    with tarfile.open(src) as tf_in, tarfile.open(dest, "w") as tf:
        for m in tf_in.getmembers():
            data: bytes | None = None
            if m.name == "manifest.json" and manifest is not None:
                data = json.dumps(manifest).encode()
            elif m.name in replace:
                data = replace[m.name]
            elif m.isfile():
                f = tf_in.extractfile(m)
                assert f is not None
                data = f.read()
            if data is not None:
                m = copy.copy(m)
                m.size = len(data)
                tf.addfile(m, io.BytesIO(data))
            else:
                tf.addfile(m)
        for info in extra or []:
            tf.addfile(info)
    return dest


def _items(path: Path) -> list[dict[str, object]]:
    with tarfile.open(path) as tf:
        return json.load(tf.extractfile("manifest.json"))  # type: ignore[no-any-return,arg-type]


SAVE = BUSYBOX / "busybox.docker-save.tar"
SKOPEO = BUSYBOX / "busybox.docker-archive.skopeo.tar"


@pytest.mark.parametrize(
    "layer_path", ["../../etc/passwd", "/etc/passwd", "a/../../x.tar", "missing.tar"]
)
def test_escaping_layer_paths(tmp_path: Path, layer_path: str) -> None:
    items = _items(SAVE)
    items[0]["Layers"] = [layer_path]
    path = _rewrite(SAVE, tmp_path / "x.tar", manifest=items)
    with pytest.raises((UnsafeArchivePathError, BlobNotFoundError)) as err:
        docker_archive.read(path)
    assert isinstance(err.value, UnsafeArchivePathError) or layer_path == "missing.tar"


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.parametrize(
    "target", ["/etc/passwd", "../../etc/passwd", "../../outside.tar", "../loop.tar"]
)
def test_symlinks_out_are_refused(tmp_path: Path, target: str) -> None:
    items = _items(SAVE)
    items[0]["Layers"] = ["evil/layer.tar"]
    extra = [_link("evil/layer.tar", target), _link("loop.tar", "loop.tar")]
    path = _rewrite(SAVE, tmp_path / "x.tar", manifest=items, extra=extra)
    with pytest.raises(UnsafeArchivePathError):
        docker_archive.read(path)


def test_symlink_inside_is_followed() -> None:
    # skopeo's <v1id>/layer.tar -> ../<diffid>.tar
    items = _items(SKOPEO)
    with tarfile.open(SKOPEO) as tf:
        link = next(m for m in tf.getmembers() if m.issym())
    assert items[0]["Layers"] != [link.name]
    img = docker_archive.read(SKOPEO)
    validate_image(img)


def test_layer_content_mismatch(tmp_path: Path) -> None:
    with tarfile.open(SAVE) as tf:
        member = next(m for m in tf.getmembers() if m.name.endswith("layer.tar"))
        f = tf.extractfile(member)
        assert f is not None
        data = bytearray(f.read())
    data[600] ^= 1
    path = _rewrite(SAVE, tmp_path / "x.tar", replace={member.name: bytes(data)})
    with pytest.raises(DigestMismatchError):
        validate_image(docker_archive.read(path))


def test_config_name_mismatch(tmp_path: Path) -> None:
    items = _items(SAVE)
    config_name = str(items[0]["Config"])
    with tarfile.open(SAVE) as tf:
        raw = tf.extractfile(config_name).read()  # type: ignore[union-attr]
    path = _rewrite(SAVE, tmp_path / "x.tar", replace={config_name: raw + b" "})
    with pytest.raises(DigestMismatchError):
        docker_archive.read(path)


def test_bad_diff_id_string(tmp_path: Path) -> None:
    items = _items(SAVE)
    config_name = str(items[0]["Config"])
    with tarfile.open(SAVE) as tf:
        cfg = json.load(tf.extractfile(config_name))  # type: ignore[arg-type]
    cfg["rootfs"]["diff_ids"] = ["sha256:not-a-digest"]
    raw = json.dumps(cfg).encode()
    # Keep the member name, and drop the hex from the manifest's view of it so the name
    # check does not fire first: the diff_id string itself must be refused.
    items[0]["Config"] = "./" + config_name
    path = _rewrite(SAVE, tmp_path / "y.tar", manifest=items, replace={config_name: raw})
    with pytest.raises((InvalidDigestError, DigestMismatchError)):
        docker_archive.read(path)


def test_diff_ids_count_mismatch(tmp_path: Path) -> None:
    items = _items(SAVE)
    items[0]["Layers"] = [*items[0]["Layers"], *items[0]["Layers"]]  # type: ignore[misc]
    path = _rewrite(SAVE, tmp_path / "x.tar", manifest=items)
    with pytest.raises(InvalidManifestError, match="diff_ids"):
        docker_archive.read(path)


@pytest.mark.parametrize("manifest", [{"a": 1}, [1], [{"Config": 5, "Layers": []}]])
def test_malformed_manifest(tmp_path: Path, manifest: object) -> None:
    path = _rewrite(SAVE, tmp_path / "x.tar", manifest=manifest)
    with pytest.raises(InvalidManifestError):
        docker_archive.read(path)


def test_truncated(tmp_path: Path) -> None:
    data = SAVE.read_bytes()
    path = tmp_path / "t.tar"
    path.write_bytes(data[: len(data) - 600_000])
    with pytest.raises((InvalidArchiveError, InvalidContentError)):
        validate_image(docker_archive.read(path))


def test_no_manifest_json(tmp_path: Path) -> None:
    path = tmp_path / "x.tar"
    with tarfile.open(path, "w") as tf:
        tf.addfile(tarfile.TarInfo("repositories"), io.BytesIO(b""))
    with pytest.raises(InvalidManifestError, match=r"manifest\.json"):
        docker_archive.read(path)


def test_docker25_layout_form(tmp_path: Path) -> None:
    # Docker 25+: an OCI layout with uncompressed layers named by diff_id, plus manifest.json.
    src = docker_archive.read(SAVE)
    root = tmp_path / "d25"
    oci_layout.write(root, src, "latest")
    layer_hex = src.config.diff_ids[0].hex
    items = [
        {
            "Config": f"blobs/sha256/{src.image_id.hex}",
            "RepoTags": ["busybox:latest"],
            "Layers": [f"blobs/sha256/{layer_hex}"],
        }
    ]
    (root / "manifest.json").write_text(json.dumps(items))
    path = tmp_path / "d25.tar"
    with tarfile.open(path, "w") as tf:
        tf.add(root, arcname=".")
    expected = oci_layout.read(root, "latest")
    [archived] = docker_archive.read_all(path)
    assert archived.names == ("docker.io/library/busybox:latest",)
    img = archived.image
    validate_image(img)
    assert img.digest == expected.digest  # the layout's real manifest, not a synthesised one
    assert img.media_type == mt.OCI_MANIFEST
    assert img.image_id == src.image_id


def test_archive_with_too_many_members(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The index kept every member's header: a million empty members took ~600 MB and a
    minute to load before anything was refused."""
    from lamina.transports import source

    monkeypatch.setattr(source, "MAX_ARCHIVE_MEMBERS", 50)
    extra = [tarfile.TarInfo(f"junk/{i}") for i in range(60)]
    path = _rewrite(SAVE, tmp_path / "x.tar", extra=extra)
    with pytest.raises(LimitExceededError, match="member count"):
        docker_archive.read(path)
    _rewrite(SAVE, path, extra=extra[:40])
    validate_image(docker_archive.read(path))


@pytest.mark.parametrize("kind", ["pax", "gnu"])
def test_archive_with_a_huge_extended_header(tmp_path: Path, kind: str) -> None:
    """tarfile reads a PAX or GNU long-name header whole (a 64 MiB one cost ~280 MB), or tries
    to: a header claiming 8 GiB in a small file. Both are refused before they are read."""
    info = tarfile.TarInfo("x")
    if kind == "pax":
        info.pax_headers = {"comment": "A" * (2 << 20)}
        extra_fmt = tarfile.PAX_FORMAT
    else:
        info.name = "n" * (2 << 20)
        extra_fmt = tarfile.GNU_FORMAT
    path = tmp_path / "x.tar"
    with tarfile.open(path, "w", format=extra_fmt) as tf:
        tf.addfile(info)
        with tarfile.open(SAVE) as src:
            for m in src.getmembers():
                tf.addfile(m, src.extractfile(m) if m.isfile() else None)
    with pytest.raises(LimitExceededError, match="header size"):
        docker_archive.read(path)
    claims = tarfile.TarInfo("././@PaxHeader")
    claims.type = tarfile.XHDTYPE
    claims.size = 8 << 30
    path.write_bytes(claims.tobuf(tarfile.GNU_FORMAT) + bytes(10240))
    with pytest.raises(LimitExceededError, match="header size"):
        docker_archive.read(path)


@pytest.mark.parametrize("tag", ["UPPER:1", "evil\nname:latest", "a:b:c"])
def test_a_repo_tag_that_is_no_reference(tmp_path: Path, tag: str) -> None:
    """The archive's fault, not the command line's: it was a UsageError (exit 2). Docker 20.10
    refuses the load too ("invalid reference format")."""
    items = _items(SAVE)
    items[0]["RepoTags"] = ["busybox:ok", tag]
    path = _rewrite(SAVE, tmp_path / "x.tar", manifest=items)
    with pytest.raises(InvalidManifestError, match=r"RepoTags: invalid reference format"):
        docker_archive.read_all(path)
    with pytest.raises(InvalidManifestError, match=r"RepoTags"):
        docker_archive.read(path, "busybox:ok")
