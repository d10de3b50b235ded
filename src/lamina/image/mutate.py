"""Mutation returns a new view: ``append_layer`` and ``with_config``.

The result is an in-memory image whose manifest (and, for ``append_layer``, config) is written
canonically once; the base image's layers are reused as they are, never re-read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lamina.digest import Digest
from lamina.errors import InvalidManifestError
from lamina.image.base import ImageBase
from lamina.image.model import Image, Layer
from lamina.oci import mediatype
from lamina.oci.config import History, history_for_layers
from lamina.oci.descriptor import Descriptor
from lamina.oci.gojson import encode_json
from lamina.oci.manifest import Manifest


class MemoryImage(ImageBase):
    """An image assembled from a config and layer views (the manifest is written here)."""

    def __init__(self, *, raw_config: bytes, layers: Sequence[Layer], docker: bool = False) -> None:
        super().__init__()
        self._raw_config_bytes = raw_config
        self._layer_list = list(layers)
        config_type = mediatype.DOCKER_CONFIG if docker else mediatype.OCI_CONFIG
        manifest = Manifest(
            media_type=mediatype.DOCKER_MANIFEST if docker else mediatype.OCI_MANIFEST,
            config=Descriptor.of(config_type, raw_config),
            layers=tuple(
                Descriptor(media_type=la.media_type, digest=la.digest, size=la.size)
                for la in self._layer_list
            ),
        )
        self._raw = manifest.encode()

    @property
    def raw_manifest(self) -> bytes:
        return self._raw

    def _read_blob(self, desc: Descriptor) -> bytes:
        return self._raw_config_bytes

    def _layer(self, desc: Descriptor, diff_id: Digest) -> Layer:
        for layer in self._layer_list:
            if layer.digest == desc.digest and layer.diff_id == diff_id:
                return layer
        raise InvalidManifestError(f"layer {desc.digest} is not part of this image")


def _docker(img: Image) -> bool:
    return mediatype.is_docker(img.media_type)


def with_config(base: Image, raw_config: bytes) -> Image:
    """``base`` with another config (same layers); the new config must still describe them."""
    return MemoryImage(raw_config=raw_config, layers=base.layers(), docker=_docker(base))


def append_layer(base: Image, layer: Layer, *, history: History) -> Image:
    """``base`` plus ``layer`` on top, with ``history`` recorded for it.

    The config is rewritten canonically (new bytes, new image id): every field of the base
    config is kept, ``rootfs.diff_ids`` and ``history`` grow by one.
    """
    obj: dict[str, Any] = base.config.json()
    rootfs = obj.setdefault("rootfs", {"type": "layers"})
    rootfs["diff_ids"] = [*(rootfs.get("diff_ids") or []), str(layer.diff_id)]
    if history.empty_layer:
        raise InvalidManifestError("append_layer: the history of a new layer cannot be empty_layer")
    # The base's entries as they are (unknown keys kept), then one {} per layer they do not
    # describe (see history_for_layers).
    gap = len(history_for_layers(base.config.history, len(base.config.diff_ids)))
    gap -= len(base.config.history)
    obj["history"] = [*(obj.get("history") or []), *({} for _ in range(gap)), history.to_json()]
    raw = encode_json(dict(sorted(obj.items())))
    return MemoryImage(raw_config=raw, layers=[*base.layers(), layer], docker=_docker(base))
