from __future__ import annotations

import pytest

from lamina.errors import UsageError
from lamina.oci import mediatype as mt


def test_kinds() -> None:
    assert mt.is_manifest(mt.OCI_MANIFEST)
    assert mt.is_manifest(mt.DOCKER_MANIFEST)
    assert mt.is_index(mt.OCI_INDEX)
    assert mt.is_index(mt.DOCKER_MANIFEST_LIST)
    assert not mt.is_manifest(mt.OCI_INDEX)
    assert not mt.is_index(mt.OCI_MANIFEST)
    assert mt.is_config(mt.DOCKER_CONFIG)
    assert mt.is_config(mt.OCI_CONFIG)
    assert not mt.is_layer("application/x-unknown")
    assert mt.is_foreign(mt.DOCKER_FOREIGN_LAYER_GZIP)


@pytest.mark.parametrize(
    ("media_type", "compression"),
    [
        (mt.OCI_LAYER, "none"),
        (mt.OCI_LAYER_GZIP, "gzip"),
        (mt.OCI_LAYER_ZSTD, "zstd"),
        (mt.OCI_LAYER_NONDISTRIBUTABLE_ZSTD, "zstd"),
        (mt.DOCKER_LAYER, "none"),
        (mt.DOCKER_LAYER_GZIP, "gzip"),
        (mt.DOCKER_FOREIGN_LAYER_GZIP, "gzip"),
        ("application/octet-stream", None),
    ],
)
def test_layer_compression(media_type: str, compression: str | None) -> None:
    assert mt.layer_compression(media_type) == compression


def test_layer_media_type_round_trip() -> None:
    for c in ("none", "gzip", "zstd"):
        assert mt.layer_compression(mt.layer_media_type(c)) == c
    assert mt.layer_media_type("gzip", docker=True) == mt.DOCKER_LAYER_GZIP
    with pytest.raises(UsageError):
        mt.layer_media_type("zstd", docker=True)
