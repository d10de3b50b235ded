from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import oci_schemas
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lamina.digest import Digest
from lamina.errors import InvalidContentError, InvalidManifestError, UnsupportedMediaTypeError
from lamina.oci import mediatype as mt
from lamina.oci.descriptor import Descriptor, Platform
from lamina.oci.manifest import Index, Manifest, docker_manifest, parse_manifest

FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures"


def _layout_blob(tar_path: Path, name: str) -> bytes:
    with tarfile.open(tar_path) as tf:
        for m in tf.getmembers():
            if m.name.removeprefix("./") == name:
                f = tf.extractfile(m)
                assert f is not None
                return f.read()
    raise KeyError(name)


def _cfg() -> Descriptor:
    return Descriptor.of(mt.OCI_CONFIG, b'{"architecture":"amd64"}')


def _layer(n: int) -> Descriptor:
    return Descriptor.of(mt.OCI_LAYER_GZIP, bytes([n]))


@pytest.mark.parametrize(
    "tar_name",
    ["busybox/busybox.oci-layout.tar", "busybox/busybox.oci-layout-zstd.tar",
     "busybox/busybox.oci-layout.umoci.tar", "busybox/busybox.oci-archive.podman.tar",
     "multistage/multistage.oci-layout.tar"],
)  # fmt: skip
def test_fixture_documents(tar_name: str) -> None:
    path = FIXTURES / tar_name
    raw_index = _layout_blob(path, "index.json")
    index = parse_manifest(raw_index)
    assert isinstance(index, Index)
    oci_schemas.check("index", json.loads(raw_index))
    desc = index.manifests[0]
    raw = _layout_blob(path, f"blobs/sha256/{desc.digest.hex}")
    assert Digest.of(raw) == desc.digest
    assert len(raw) == desc.size
    manifest = parse_manifest(raw, desc.media_type)
    assert isinstance(manifest, Manifest)
    assert manifest.layers
    assert all(mt.is_layer(d.media_type) for d in manifest.layers)
    oci_schemas.check("manifest", json.loads(raw))


@given(
    st.lists(st.integers(0, 255), min_size=1, max_size=4),
    st.dictionaries(st.sampled_from(["a.b", "org.example.x"]), st.text(max_size=5)),
)
def test_manifest_round_trip(layers: list[int], annotations: dict[str, str]) -> None:
    m = Manifest(config=_cfg(), layers=tuple(map(_layer, layers)), annotations=annotations)
    raw = m.encode()
    assert parse_manifest(raw) == m
    assert parse_manifest(raw, mt.OCI_MANIFEST) == m
    oci_schemas.check("manifest", json.loads(raw))


def test_index_round_trip_and_select() -> None:
    amd = Descriptor(
        media_type=mt.OCI_MANIFEST, digest=Digest.of(b"1"), size=1,
        platform=Platform(os="linux", architecture="amd64"),
    )  # fmt: skip
    arm = Descriptor(
        media_type=mt.OCI_MANIFEST, digest=Digest.of(b"2"), size=1,
        platform=Platform(os="linux", architecture="arm64", variant="v8"),
    )  # fmt: skip
    idx = Index(manifests=(arm, amd), annotations={"x.y": "z"})
    raw = idx.encode()
    assert parse_manifest(raw) == idx
    oci_schemas.check("index", json.loads(raw))
    assert idx.select(Platform.host()) == amd
    assert idx.select(Platform.parse("linux/arm64")) == arm
    assert idx.select(Platform.parse("linux/s390x")) is None


def test_docker_manifest() -> None:
    m = docker_manifest(config=_cfg(), layers=[_layer(1)])
    raw = m.encode()
    assert json.loads(raw)["mediaType"] == mt.DOCKER_MANIFEST
    assert parse_manifest(raw, mt.DOCKER_MANIFEST) == m
    assert m.is_docker


def _doc(**kw: Any) -> bytes:
    base: dict[str, Any] = {
        "schemaVersion": 2,
        "config": _cfg().to_json(),
        "layers": [_layer(1).to_json()],
    }
    base.update(kw)
    return json.dumps({k: v for k, v in base.items() if v is not None}).encode()


def test_media_type_confusion() -> None:
    # CVE-2021-41190: a document that is both a manifest and an index is refused either way.
    both = _doc(manifests=[_layer(2).to_json()])
    with pytest.raises(InvalidManifestError):
        parse_manifest(both, mt.OCI_MANIFEST)
    with pytest.raises(InvalidManifestError):
        parse_manifest(both, mt.OCI_INDEX)
    with pytest.raises(InvalidManifestError):
        parse_manifest(_doc(mediaType=mt.OCI_MANIFEST), mt.OCI_INDEX)  # declared vs own
    with pytest.raises(InvalidManifestError):
        Manifest.from_json(json.loads(_doc(mediaType=mt.OCI_INDEX)))
    index_with_layers = {"schemaVersion": 2, "manifests": [], "layers": []}
    with pytest.raises(InvalidManifestError):
        parse_manifest(json.dumps(index_with_layers).encode())


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"[]",
        b"\xff",
        b'{"schemaVersion":2,"schemaVersion":2,"layers":[]}',
        _doc(schemaVersion=3),
        _doc(schemaVersion=True),
        _doc(schemaVersion=None),
        _doc(layers=None),
        _doc(config=None),
        _doc(layers=[{"mediaType": mt.OCI_LAYER, "digest": "sha256:abc", "size": 1}]),
        _doc(layers="x"),
        b'{"schemaVersion":2}',
    ],
)
def test_invalid(raw: bytes) -> None:
    with pytest.raises(InvalidContentError):
        parse_manifest(raw)


def test_unsupported() -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        parse_manifest(_doc(), "application/x-unknown")
    with pytest.raises(UnsupportedMediaTypeError):
        parse_manifest(_doc(schemaVersion=1))
