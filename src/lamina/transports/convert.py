"""Manifest conversion between Docker schema 2 and OCI, keeping config and layer bytes.

Only the manifest changes: the config blob and layer blobs are reused byte for byte (so the
image id and diff_ids stay the same), as ``skopeo copy`` does between formats.
"""

from __future__ import annotations

from typing import Final

from lamina.errors import UnsupportedMediaTypeError
from lamina.image.model import Image
from lamina.oci import mediatype
from lamina.oci.descriptor import Descriptor
from lamina.oci.manifest import Manifest

_DOCKER_TO_OCI_LAYER: Final = {
    mediatype.DOCKER_LAYER: mediatype.OCI_LAYER,
    mediatype.DOCKER_LAYER_GZIP: mediatype.OCI_LAYER_GZIP,
    mediatype.DOCKER_FOREIGN_LAYER_GZIP: mediatype.OCI_LAYER_NONDISTRIBUTABLE_GZIP,
    mediatype.DOCKER_FOREIGN_LAYER: mediatype.OCI_LAYER_NONDISTRIBUTABLE,
    mediatype.DOCKER_LAYER_ZSTD: mediatype.OCI_LAYER_ZSTD,
}


def _retype(desc: Descriptor, media_type: str) -> Descriptor:
    return Descriptor(
        media_type=media_type,
        digest=desc.digest,
        size=desc.size,
        annotations=desc.annotations,
        urls=desc.urls,
    )


def oci_manifest(image: Image) -> bytes:
    """The image's manifest bytes as OCI: the original bytes when already OCI."""
    if image.media_type == mediatype.OCI_MANIFEST:
        return image.raw_manifest
    m = image.manifest
    layers = []
    for d in m.layers:
        mt = _DOCKER_TO_OCI_LAYER.get(d.media_type, d.media_type)
        if not mediatype.is_layer(mt) or mediatype.is_docker(mt):
            raise UnsupportedMediaTypeError(d.media_type, what="layer (no OCI equivalent)")
        layers.append(_retype(d, mt))
    converted = Manifest(
        media_type=mediatype.OCI_MANIFEST,
        config=_retype(m.config, mediatype.OCI_CONFIG),
        layers=tuple(layers),
        annotations=m.annotations,
    )
    return converted.encode()
