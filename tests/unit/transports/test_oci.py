from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import oci_schemas
import pytest
from fixtures import BUSYBOX, MULTISTAGE, inspect, podman_busybox

from lamina.digest import Digest
from lamina.errors import (
    ConflictError,
    DigestMismatchError,
    FileError,
    ImageNotFoundError,
    InvalidArchiveError,
    InvalidContentError,
    InvalidDigestError,
    InvalidManifestError,
    SizeMismatchError,
    UnsafeArchivePathError,
    UsageError,
)
from lamina.image.layers import BytesLayer
from lamina.image.model import Image
from lamina.image.mutate import MemoryImage
from lamina.image.validate import validate_image
from lamina.oci import mediatype as mt
from lamina.oci.config import History, new_config
from lamina.oci.descriptor import Descriptor, Platform
from lamina.oci.manifest import Index
from lamina.transports import oci_archive, oci_layout

BUSYBOX_ARCHIVES = [
    "busybox.oci-layout.tar",
    "busybox.oci-layout-zstd.tar",
    "busybox.oci-archive.podman.tar",
]


@pytest.mark.parametrize("name", BUSYBOX_ARCHIVES)
def test_busybox_fixtures_match_podman(name: str) -> None:
    expected = podman_busybox()
    img = oci_archive.read(BUSYBOX / name)
    validate_image(img)
    assert img.image_id == "sha256:" + expected["Id"]
    assert [str(d) for d in img.config.diff_ids] == expected["RootFS"]["Layers"]
    assert list(img.config.config.cmd or ()) == expected["Config"]["Cmd"]
    oci_schemas.check("manifest", json.loads(img.raw_manifest))
    oci_schemas.check("config", json.loads(img.raw_config))


def test_zstd_fixture_declares_zstd() -> None:
    img = oci_archive.read(BUSYBOX / "busybox.oci-layout-zstd.tar", "latest")
    assert [la.media_type for la in img.layers()] == [mt.OCI_LAYER_ZSTD]


def test_umoci_and_multistage_fixtures() -> None:
    validate_image(oci_archive.read(BUSYBOX / "busybox.oci-layout.umoci.tar", "latest"))
    expected = inspect(MULTISTAGE / "multistage.podman-image-inspect.json")
    img = oci_archive.read(MULTISTAGE / "multistage.oci-layout.tar")
    validate_image(img)
    assert img.image_id == "sha256:" + expected["Id"]
    assert [str(d) for d in img.config.diff_ids] == expected["RootFS"]["Layers"]


def test_refs_and_unknown_ref() -> None:
    assert oci_archive.refs(BUSYBOX / "busybox.oci-archive.podman.tar") == [
        "localhost/busybox:latest"
    ]
    with pytest.raises(ImageNotFoundError, match="latest"):
        oci_archive.read(BUSYBOX / "busybox.oci-layout.tar", "nope")


def _extract(tar: Path, dest: Path) -> Path:
    with tarfile.open(tar) as tf:
        # Extraction filters are 3.11.4+ (Debian 12's python3 is 3.11.2); the fixture is ours.
        if hasattr(tarfile, "data_filter"):
            tf.extractall(dest, filter="data")
        else:
            tf.extractall(dest)
    return dest


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    return _extract(BUSYBOX / "busybox.oci-layout.tar", tmp_path / "layout")


def _small_image(content: bytes = b"hi") -> Image:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("f")
        info.size = len(content)
        tf.addfile(info, io.BytesIO(content))
    layer = BytesLayer.from_tar(buf.getvalue())
    raw = new_config(
        diff_ids=[layer.diff_id],
        history=[History(created_by="x")],
        created="2024-01-01T00:00:00Z",
        config={},
    )
    return MemoryImage(raw_config=raw, layers=[layer])


def test_dir_round_trip_and_ref_replacement(layout: Path) -> None:
    a, b = _small_image(b"a"), _small_image(b"b")
    oci_layout.write(layout, a, "a")
    oci_layout.write(layout, b, "a")  # same ref: replaces the entry
    oci_layout.write(layout, a, "other")
    assert oci_layout.refs(layout) == ["latest", "a", "other"]
    assert oci_layout.read(layout, "a").digest == b.digest
    assert oci_layout.read(layout, "other").image_id == a.image_id
    for entry in oci_layout.entries(layout):
        validate_image(entry.image)
    index = json.loads((layout / "index.json").read_bytes())
    oci_schemas.check("index", index)
    oci_schemas.check("layout", json.loads((layout / "oci-layout").read_bytes()))
    with pytest.raises(UsageError, match="name one"):
        oci_layout.read(layout)
    with pytest.raises(UsageError):
        oci_layout.write(layout, a, "bad ref!")


def test_a_layout_goes_into_a_new_or_empty_dir_or_a_layout_only(tmp_path: Path) -> None:
    """Never among other files: ``save --format oci -o /`` used to write blobs/, index.json
    and oci-layout into the root filesystem."""
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine\n")
    with pytest.raises(ConflictError, match="it holds other files"):
        oci_layout.write(busy, _small_image(), "x")
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    oci_layout.write(empty, _small_image(), "x")
    oci_layout.write(tmp_path / "new" / "deeper", _small_image(), "x")
    oci_layout.write(empty, _small_image(b"2"), "y")  # an existing layout takes more
    assert oci_layout.refs(empty) == ["x", "y"]
    with pytest.raises(FileError, match="File name too long"):
        oci_layout.write(tmp_path / ("n" * 300), _small_image(), "x")


@pytest.mark.parametrize("link", ["blobs", "blobs/sha256"])
def test_a_layout_with_a_symlinked_blob_dir_is_not_written_through(
    tmp_path: Path, link: str
) -> None:
    """Reading refuses such a layout; writing followed the link and put every blob wherever
    it pointed (skopeo follows it too)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "layout"
    (dest / link).parent.mkdir(parents=True)
    (dest / "oci-layout").write_bytes(oci_layout.LAYOUT_HEADER)
    (dest / link).symlink_to(outside)
    with pytest.raises(ConflictError, match=f"{link} is not a directory"):
        oci_layout.write(dest, _small_image(), "x")
    assert list(outside.iterdir()) == []
    assert not (dest / "index.json").exists()


def test_archive_round_trip_keeps_bytes(tmp_path: Path) -> None:
    src = oci_archive.read(BUSYBOX / "busybox.oci-layout.tar")
    out = tmp_path / "out.tar"
    oci_archive.write(out, src, "v1")
    with tarfile.open(out) as tf:
        names = tf.getnames()
    assert "index.json" in names
    assert not any(n.startswith("./") for n in names)
    again = oci_archive.read(out, "v1")
    validate_image(again)
    assert again.raw_manifest == src.raw_manifest
    assert again.raw_config == src.raw_config


# --- hostile input -------------------------------------------------------------------------


def _blob(root: Path, digest: Digest) -> Path:
    return root / "blobs" / "sha256" / digest.hex


def _index(root: Path) -> Index:
    index = oci_layout.layout.read_index(oci_layout.DirSource(root))
    return index


def test_blob_digest_mismatch(layout: Path) -> None:
    img = oci_layout.read(layout)
    layer = _blob(layout, img.manifest.layers[0].digest)
    data = bytearray(layer.read_bytes())
    data[100] ^= 0xFF
    layer.write_bytes(bytes(data))
    with pytest.raises(DigestMismatchError):
        validate_image(oci_layout.read(layout))


def test_blob_size_mismatch_is_found_before_hashing(layout: Path) -> None:
    img = oci_layout.read(layout)
    config = _blob(layout, img.manifest.config.digest)
    config.write_bytes(config.read_bytes() + b" ")
    with pytest.raises(SizeMismatchError):
        _ = oci_layout.read(layout).config


def test_manifest_tampered(layout: Path) -> None:
    desc = _index(layout).manifests[0]
    path = _blob(layout, desc.digest)
    path.write_bytes(path.read_bytes().replace(b'"size"', b'"size" '))
    with pytest.raises(SizeMismatchError):
        oci_layout.read(layout)


def test_bad_digest_string_in_index(layout: Path) -> None:
    raw = (layout / "index.json").read_text()
    desc = _index(layout).manifests[0]
    (layout / "index.json").write_text(raw.replace(desc.digest, "sha256:../../../etc/passwd"))
    with pytest.raises(InvalidDigestError):
        oci_layout.read(layout)


def test_symlinked_blob_is_refused(layout: Path, tmp_path: Path) -> None:
    img = oci_layout.read(layout)
    cfg = _blob(layout, img.manifest.config.digest)
    outside = tmp_path / "outside"
    shutil.copy(cfg, outside)
    cfg.unlink()
    cfg.symlink_to(outside)
    with pytest.raises(UnsafeArchivePathError):
        _ = oci_layout.read(layout).config


def _write_index_blob(root: Path, index: Index) -> Descriptor:
    raw = index.encode()
    desc = Descriptor.of(mt.OCI_INDEX, raw)
    _blob(root, desc.digest).write_bytes(raw)
    return desc


def test_nested_index_platform_selection_and_cycles(layout: Path) -> None:
    top = _index(layout)
    amd = Descriptor(
        media_type=top.manifests[0].media_type,
        digest=top.manifests[0].digest,
        size=top.manifests[0].size,
        platform=Platform.host(),
    )
    arm = Descriptor.of(mt.OCI_MANIFEST, b"{}", platform=Platform.parse("linux/arm64"))
    nested = _write_index_blob(layout, Index(manifests=(arm, amd)))
    entry = Descriptor(
        media_type=mt.OCI_INDEX,
        digest=nested.digest,
        size=nested.size,
        annotations={"org.opencontainers.image.ref.name": "multi"},
    )
    (layout / "index.json").write_bytes(Index(manifests=(*top.manifests, entry)).encode())
    assert oci_layout.read(layout, "multi").digest == amd.digest
    with pytest.raises(ImageNotFoundError, match="s390x"):
        oci_layout.read(layout, "multi", platform=Platform.parse("linux/s390x"))


def test_index_pointing_at_itself(layout: Path) -> None:
    # A blob stored under digest D listing D itself (its bytes cannot hash to D: the read is
    # refused either by the digest check or by the cycle check, never by recursing forever).
    name = Digest.of(b"self")
    size = 0
    for _ in range(3):
        raw = Index(manifests=(Descriptor(media_type=mt.OCI_INDEX, digest=name, size=size),))
        size = len(raw.encode())
    _blob(layout, name).write_bytes(raw.encode())
    entry = Descriptor(media_type=mt.OCI_INDEX, digest=name, size=size)
    (layout / "index.json").write_bytes(Index(manifests=(entry,)).encode())
    with pytest.raises(InvalidContentError):
        oci_layout.read(layout)


def test_index_that_is_a_manifest(layout: Path) -> None:
    img = oci_layout.read(layout)
    (layout / "index.json").write_bytes(img.raw_manifest)
    with pytest.raises(InvalidManifestError):
        oci_layout.read(layout)


def test_archive_with_symlink_member_is_refused(tmp_path: Path) -> None:
    src = oci_archive.read(BUSYBOX / "busybox.oci-layout.tar")
    out = tmp_path / "evil.tar"
    with tarfile.open(BUSYBOX / "busybox.oci-layout.tar") as tf_in, tarfile.open(out, "w") as tf:
        for m in tf_in.getmembers():
            if m.name.endswith(src.manifest.config.digest.hex):
                link = tarfile.TarInfo(m.name)
                link.type = tarfile.SYMTYPE
                link.linkname = "/etc/passwd"
                tf.addfile(link)
            else:
                tf.addfile(m, tf_in.extractfile(m) if m.isfile() else None)
    with pytest.raises(UnsafeArchivePathError):
        _ = oci_archive.read(out).config


def test_truncated_archive(tmp_path: Path) -> None:
    data = (BUSYBOX / "busybox.oci-layout.tar").read_bytes()
    out = tmp_path / "short.tar"
    out.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidContentError):
        validate_image(oci_archive.read(out))


def test_not_a_tar(tmp_path: Path) -> None:
    out = tmp_path / "x.tar"
    out.write_bytes(b"hello" * 200)
    with pytest.raises(InvalidArchiveError):
        oci_archive.read(out)
