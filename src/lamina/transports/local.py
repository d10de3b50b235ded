"""``lamina:REF`` — lamina's own store as a transport, with the same verbs as the others.

``read(store, record)`` adapts a stored image to the :class:`~lamina.image.model.Image` view
(the manifest and config are the bytes that were stored, never re-serialised, so saving a loaded
image keeps its digests); ``write(store, image, names=...)`` ingests each layer in one pass
(verifying blob digest, size and diff_id) and records the image. The store itself never sees an
``Image``: this module is the adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lamina.digest import Digest, chain_ids
from lamina.errors import LaminaError
from lamina.image.base import ImageBase, LayerBase
from lamina.image.layers import DescribedLayer
from lamina.image.model import Image, Layer
from lamina.oci.descriptor import Descriptor
from lamina.store.images import ImageRecord
from lamina.store.layers import LayerRecord
from lamina.store.store import Store


class StoreImage(ImageBase):
    """A stored image as an :class:`Image` view."""

    def __init__(self, store: Store, record: ImageRecord) -> None:
        super().__init__(declared_media_type=record.manifest_media_type)
        self._store = store
        self.record = record
        self._raw_manifest = store.blobs.read_bytes(record.manifest_digest)

    @property
    def raw_manifest(self) -> bytes:
        return self._raw_manifest

    def _read_blob(self, desc: Descriptor) -> bytes:
        return self._store.blobs.read_bytes(desc.digest)

    def _layer(self, desc: Descriptor, diff_id: Digest) -> Layer:
        path = self._store.blobs.path(desc.digest)
        return DescribedLayer(desc, diff_id=diff_id, opener=lambda: open(path, "rb"))


def read(store: Store, record: ImageRecord) -> Image:
    return StoreImage(store, record)


LayerProgress = Callable[[int, int, Layer], None]


def write(
    store: Store,
    image: Image,
    *,
    names: Sequence[str] = (),
    built_locally: bool = False,
    on_layer: LayerProgress | None = None,
) -> ImageRecord:
    """Store ``image`` under ``names``. Layers already stored (same chain) are not read again.
    A failure leaves nothing of this image behind (layers stored before it stay only while
    another image uses them)."""
    layers = list(image.layers())
    config = image.config
    stored: list[LayerRecord] = []
    created: list[Digest] = []  # chains this call added (removed again if the write fails)
    parent: Digest | None = None
    try:
        for i, layer in enumerate(layers):
            if on_layer is not None:
                on_layer(i, len(layers), layer)
            chain = chain_ids([parent, layer.diff_id])[1] if parent else layer.diff_id
            existed = store.layers.find(Digest(chain)) is not None
            # With the expected diff_id, ingest returns an already stored chain without
            # reading the source (opening an archive member costs nothing).
            # ingest verifies the blob's digest and size while it reads: a view that can
            # hand out the raw bytes need not hash them first.
            opener = layer.open_unverified if isinstance(layer, LayerBase) else None
            with (opener or layer.open_compressed)() as src:
                rec = store.layers.ingest(
                    src,
                    parent=parent,
                    media_type=layer.media_type,
                    expected_blob_digest=layer.digest,
                    expected_blob_size=layer.size,
                    expected_diff_id=layer.diff_id,
                )
            stored.append(rec)
            if not existed:
                created.append(rec.chain_id)
            parent = rec.chain_id
        return store.images.add(
            config_bytes=image.raw_config,
            manifest_bytes=image.raw_manifest,
            manifest_media_type=image.media_type,
            layers=[r.chain_id for r in stored],
            names=list(names),
            created=config.created,
            built_locally=built_locally,
        )
    except BaseException:
        store.layers.release([r.chain_id for r in stored])
        # A failed write leaves the store as it was: drop the layers it added, top down, unless
        # something else (another process's image or import) took them meanwhile.
        for chain_id in reversed(created):
            try:
                store.layers.remove(chain_id)
            except LaminaError:
                break
        raise
    finally:
        store.layers.release([r.chain_id for r in stored])
