from __future__ import annotations

import io
import tarfile
from typing import IO

import pytest

from lamina.archive.compression import Compression
from lamina.digest import Digest
from lamina.errors import DigestMismatchError, InvalidManifestError, SizeMismatchError
from lamina.image.base import LayerBase
from lamina.image.layers import BytesLayer
from lamina.image.model import Image, Layer
from lamina.image.mutate import MemoryImage, append_layer, with_config
from lamina.image.validate import validate_image
from lamina.oci import mediatype as mt
from lamina.oci.config import History, new_config


def _tar(name: str, content: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        tf.addfile(info, io.BytesIO(content))
    return out.getvalue()


def _image(*layers: Layer, docker: bool = False) -> MemoryImage:
    raw = new_config(
        diff_ids=[la.diff_id for la in layers],
        history=[History(created_by=f"step {i}") for i in range(len(layers))],
        created="2024-01-01T00:00:00Z",
        config={"Cmd": ["/bin/sh"]},
    )
    return MemoryImage(raw_config=raw, layers=layers, docker=docker)


@pytest.mark.parametrize("compression", list(Compression))
def test_bytes_layer_round_trip(compression: Compression) -> None:
    tar = _tar("a", b"hello")
    layer = BytesLayer.from_tar(tar, compression=compression)
    assert layer.diff_id == Digest.of(tar)
    assert mt.layer_compression(layer.media_type) == compression.value
    with layer.open_uncompressed() as f:
        assert f.read() == tar
    with layer.open_compressed() as f:
        assert Digest.of(f.read()) == layer.digest
    again = BytesLayer.from_blob(layer._blob, media_type=layer.media_type)
    assert again.diff_id == layer.diff_id
    assert isinstance(layer, Layer)


def test_memory_image_is_valid() -> None:
    img = _image(BytesLayer.from_tar(_tar("a", b"1")), BytesLayer.from_tar(_tar("b", b"2")))
    assert isinstance(img, Image)
    validate_image(img)
    assert img.digest == Digest.of(img.raw_manifest)
    assert img.image_id == Digest.of(img.raw_config)
    assert img.media_type == mt.OCI_MANIFEST
    assert len(img.layers()) == 2


def test_append_layer_and_with_config() -> None:
    base = _image(BytesLayer.from_tar(_tar("a", b"1")), docker=True)
    top = BytesLayer.from_tar(_tar("b", b"2"), docker=True)
    img = append_layer(base, top, history=History(created_by="COPY b /"))
    validate_image(img)
    assert img.config.diff_ids == (*base.config.diff_ids, top.diff_id)
    assert img.config.history[-1].created_by == "COPY b /"
    assert img.media_type == mt.DOCKER_MANIFEST
    same = with_config(img, img.raw_config)
    assert same.digest == img.digest
    with pytest.raises(InvalidManifestError):
        append_layer(base, top, history=History(empty_layer=True))


class _Tampered(LayerBase):
    """A layer whose stored bytes differ from what its descriptor says."""

    def __init__(self, good: BytesLayer, blob: bytes) -> None:
        self.good = good
        self.blob = blob

    digest = property(lambda self: self.good.digest)
    diff_id = property(lambda self: self.good.diff_id)
    size = property(lambda self: self.good.size)
    media_type = property(lambda self: self.good.media_type)

    def _open_blob(self) -> IO[bytes]:
        return io.BytesIO(self.blob)


def test_tampered_layers_are_refused() -> None:
    good = BytesLayer.from_tar(_tar("a", b"1"), compression=Compression.NONE)
    flipped = bytearray(good._blob)
    flipped[600] ^= 1
    for blob, error in [
        (bytes(flipped), DigestMismatchError),
        (good._blob + b"x", SizeMismatchError),
        (good._blob[:-1], SizeMismatchError),
    ]:
        img = _image(_Tampered(good, blob))  # type: ignore[abstract]
        with pytest.raises(error):
            validate_image(img)


def test_diff_id_mismatch_is_refused() -> None:
    gz = BytesLayer.from_tar(_tar("a", b"1"))
    wrong = BytesLayer(gz._blob, media_type=gz.media_type, diff_id=Digest.of(b"other"))
    with pytest.raises(DigestMismatchError):
        validate_image(_image(wrong))


def test_layer_count_mismatch() -> None:
    layer = BytesLayer.from_tar(_tar("a", b"1"))
    raw = new_config(diff_ids=[], history=[], created="2024-01-01T00:00:00Z", config={})
    with pytest.raises(InvalidManifestError, match="diff_ids"):
        validate_image(MemoryImage(raw_config=raw, layers=[layer]))
