from __future__ import annotations

import base64
from typing import Any

import oci_schemas
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lamina.digest import Digest
from lamina.errors import (
    DigestMismatchError,
    InvalidContentError,
    InvalidDigestError,
    InvalidManifestError,
    UsageError,
)
from lamina.oci import mediatype as mt
from lamina.oci.descriptor import Descriptor, Platform

HEX = "a" * 64
GOOD: dict[str, Any] = {"mediaType": mt.OCI_MANIFEST, "digest": f"sha256:{HEX}", "size": 503}

media_types = st.sampled_from(
    [mt.OCI_MANIFEST, mt.OCI_LAYER_GZIP, mt.DOCKER_CONFIG, "application/vnd.example+json"]
)
platforms = st.builds(
    Platform,
    os=st.sampled_from(["linux", "windows"]),
    architecture=st.sampled_from(["amd64", "arm64", "arm"]),
    variant=st.one_of(st.none(), st.sampled_from(["v7", "v8"])),
    os_version=st.one_of(st.none(), st.just("10.0.17763")),
    os_features=st.lists(st.sampled_from(["win32k"]), max_size=1).map(tuple),
)
descriptors = st.builds(
    Descriptor,
    media_type=media_types,
    digest=st.binary(max_size=8).map(Digest.of),
    size=st.integers(min_value=0, max_value=(1 << 63) - 1),
    annotations=st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=3),
    platform=st.one_of(st.none(), platforms),
    urls=st.lists(st.just("https://example.com/blob"), max_size=1).map(tuple),
    artifact_type=st.one_of(st.none(), media_types),
)


@given(descriptors)
def test_round_trip(desc: Descriptor) -> None:
    doc = desc.to_json()
    assert Descriptor.from_json(doc) == desc
    oci_schemas.check("descriptor", doc)


def test_embedded_data_round_trip_and_check() -> None:
    desc = Descriptor.of(mt.OCI_EMPTY, b"{}", data=b"{}")
    doc = desc.to_json()
    assert doc["data"] == "e30="
    assert (
        str(desc.digest)
        == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    )
    assert Descriptor.from_json(doc) == desc
    oci_schemas.check("descriptor", doc)
    bad = dict(doc, data=base64.b64encode(b"[]").decode())
    with pytest.raises(DigestMismatchError):
        Descriptor.from_json(bad)
    with pytest.raises(InvalidManifestError):
        Descriptor.from_json(dict(doc, data="not base64!"))


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"digest": "sha256:" + "A" * 64}, InvalidDigestError),
        ({"digest": "sha256:abc"}, InvalidDigestError),
        ({"digest": "../../etc/passwd"}, InvalidDigestError),
        ({"digest": "sha512:" + "a" * 128}, InvalidDigestError),
        ({"digest": 5}, InvalidManifestError),
        ({"size": -1}, InvalidManifestError),
        ({"size": 1.5}, InvalidManifestError),
        ({"size": True}, InvalidManifestError),
        ({"size": "5"}, InvalidManifestError),
        ({"size": 1 << 63}, InvalidManifestError),
        ({"size": None}, InvalidManifestError),
        ({"mediaType": "nope"}, InvalidManifestError),
        ({"mediaType": None}, InvalidManifestError),
        ({"annotations": {"a": 1}}, InvalidManifestError),
        ({"urls": "http://x"}, InvalidManifestError),
        ({"platform": {"os": "linux"}}, InvalidManifestError),
    ],
)
def test_strict(change: dict[str, Any], error: type[InvalidContentError]) -> None:
    with pytest.raises(error):
        Descriptor.from_json({**GOOD, **change})


def test_not_an_object() -> None:
    with pytest.raises(InvalidManifestError):
        Descriptor.from_json([GOOD])


def test_constructor_validates() -> None:
    with pytest.raises(InvalidDigestError):
        Descriptor(media_type=mt.OCI_LAYER, digest="sha256:x", size=1)  # type: ignore[arg-type]
    with pytest.raises(InvalidManifestError):
        Descriptor(media_type=mt.OCI_LAYER, digest=Digest.of(b""), size=-1)
    d = Descriptor(media_type=mt.OCI_LAYER, digest=f"sha256:{HEX}", size=0)  # type: ignore[arg-type]
    assert isinstance(d.digest, Digest)


def test_unknown_fields_are_ignored() -> None:
    assert Descriptor.from_json({**GOOD, "future": 1}).size == 503


def test_platform_parse_and_match() -> None:
    host = Platform.host()
    assert str(host) == "linux/amd64"
    assert host.matches(Platform(os="linux", architecture="amd64", variant="v2"))
    assert not host.matches(Platform(os="linux", architecture="arm64"))
    want = Platform.parse("linux/arm64/v8")
    assert want.matches(Platform(os="linux", architecture="arm64"))  # v8 implied
    assert not Platform.parse("linux/arm/v6").matches(
        Platform(os="linux", architecture="arm", variant="v7")
    )
    for bad in ("linux", "linux/", "a/b/c/d"):
        with pytest.raises(UsageError):
            Platform.parse(bad)


def test_platform_json_keys() -> None:
    p = Platform(os="windows", architecture="amd64", os_version="10.0", os_features=("win32k",))
    assert p.to_json() == {
        "architecture": "amd64",
        "os": "windows",
        "os.version": "10.0",
        "os.features": ["win32k"],
    }
    assert Platform.from_json(p.to_json()) == p
