"""``validate_image``: the whole-image consistency check every produced image must pass.

It reads every layer once (uncompressed, which verifies the blob digest and size on the way)
so it costs a full read of the image; use it in tests and ``verify``, not on hot paths.
"""

from __future__ import annotations

from lamina.errors import InvalidManifestError
from lamina.image.model import Image
from lamina.oci import mediatype


def validate_image(img: Image, *, read_layers: bool = True) -> None:
    """Raise the first inconsistency found in ``img``; return ``None`` when it is sound.

    Checks: the manifest parses as an image manifest; the config blob matches its descriptor and
    parses (rootfs type, diff_id digests, no more non-empty history entries than diff_ids);
    the manifest's layer count equals the config's diff_ids; each layer's descriptor (media
    type, digest, size) agrees with the layer view; and, with ``read_layers``, each layer's
    bytes hash to its digest and its uncompressed tar to its diff_id.
    """
    manifest = img.manifest
    if manifest.config.digest != img.image_id:
        raise InvalidManifestError(
            f"image id {img.image_id} is not the manifest's config digest {manifest.config.digest}"
        )
    config = img.config  # parsing checks rootfs, diff_ids and history
    if config.digest != img.image_id:
        raise InvalidManifestError(f"config bytes do not hash to the image id {img.image_id}")
    layers = img.layers()  # checks layer count == diff_id count
    for i, (desc, layer, diff_id) in enumerate(
        zip(manifest.layers, layers, config.diff_ids, strict=True)
    ):
        where = f"layer {i} ({desc.digest})"
        if (layer.digest, layer.size, layer.media_type) != (
            desc.digest,
            desc.size,
            desc.media_type,
        ):
            raise InvalidManifestError(f"{where}: the layer view disagrees with its descriptor")
        if layer.diff_id != diff_id:
            raise InvalidManifestError(f"{where}: diff_id {layer.diff_id} is not {diff_id}")
        if not mediatype.is_layer(desc.media_type):
            # Unknown layer types are kept as opaque blobs; only their bytes can be checked.
            if read_layers:
                with layer.open_compressed() as f:
                    while f.read(1 << 20):
                        pass
            continue
        if read_layers:
            with layer.open_uncompressed() as f:
                while f.read(1 << 20):
                    pass
