"""An :class:`Image` view that reports each layer as a writer opens it (for progress)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import IO

from lamina.digest import Digest
from lamina.image.model import Image, Layer
from lamina.oci.config import ImageConfig
from lamina.oci.manifest import Manifest

LayerCallback = Callable[[int, int, Layer], None]


class _ObservedLayer:
    def __init__(self, layer: Layer, index: int, total: int, on_open: LayerCallback) -> None:
        self._layer = layer
        self._index = index
        self._total = total
        self._on_open = on_open

    @property
    def digest(self) -> Digest:
        return self._layer.digest

    @property
    def diff_id(self) -> Digest:
        return self._layer.diff_id

    @property
    def size(self) -> int:
        return self._layer.size

    @property
    def media_type(self) -> str:
        return self._layer.media_type

    def open_compressed(self) -> IO[bytes]:
        self._on_open(self._index, self._total, self._layer)
        return self._layer.open_compressed()

    def open_uncompressed(self) -> IO[bytes]:
        self._on_open(self._index, self._total, self._layer)
        return self._layer.open_uncompressed()


class ObservedImage:
    """``image`` unchanged (same bytes, same digests), with ``on_open`` called per layer."""

    def __init__(self, image: Image, on_open: LayerCallback) -> None:
        self._image = image
        self._on_open = on_open

    @property
    def raw_manifest(self) -> bytes:
        return self._image.raw_manifest

    @property
    def manifest(self) -> Manifest:
        return self._image.manifest

    @property
    def media_type(self) -> str:
        return self._image.media_type

    @property
    def raw_config(self) -> bytes:
        return self._image.raw_config

    @property
    def config(self) -> ImageConfig:
        return self._image.config

    @property
    def digest(self) -> Digest:
        return self._image.digest

    @property
    def image_id(self) -> Digest:
        return self._image.image_id

    def layers(self) -> Sequence[Layer]:
        layers = self._image.layers()
        return [_ObservedLayer(la, i, len(layers), self._on_open) for i, la in enumerate(layers)]


def observe(image: Image, on_open: LayerCallback | None) -> Image:
    return image if on_open is None else ObservedImage(image, on_open)
