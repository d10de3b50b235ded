"""Media types of OCI and Docker (schema 2) documents and blobs, and what they say about a blob.

Sources: image-spec ``media-types.md``; distribution ``manifest-v2-2.md``. Unknown media types
are data, not errors: the helpers answer ``False``/``None`` for them and callers decide.
"""

from __future__ import annotations

from typing import Final

from lamina.errors import UsageError

# OCI
OCI_DESCRIPTOR: Final = "application/vnd.oci.descriptor.v1+json"
OCI_LAYOUT_HEADER: Final = "application/vnd.oci.layout.header.v1+json"
OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG: Final = "application/vnd.oci.image.config.v1+json"
OCI_LAYER: Final = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP: Final = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD: Final = "application/vnd.oci.image.layer.v1.tar+zstd"
# Deprecated by image-spec 1.1: accepted on read, never produced.
OCI_LAYER_NONDISTRIBUTABLE: Final = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDISTRIBUTABLE_GZIP: Final = (
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
)
OCI_LAYER_NONDISTRIBUTABLE_ZSTD: Final = (
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
)
OCI_EMPTY: Final = "application/vnd.oci.empty.v1+json"

# Docker image manifest v2, schema 2
DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG: Final = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER: Final = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP: Final = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER_GZIP: Final = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
# Not in the schema 2 spec, but written by moby/containerd; accepted on read.
DOCKER_LAYER_ZSTD: Final = "application/vnd.docker.image.rootfs.diff.tar.zstd"
DOCKER_FOREIGN_LAYER: Final = "application/vnd.docker.image.rootfs.foreign.diff.tar"
DOCKER_PLUGIN_CONFIG: Final = "application/vnd.docker.plugin.v1+json"
# Schema 1 is obsolete; named only so it can be refused with a clear message.
DOCKER_MANIFEST_V1: Final = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_MANIFEST_V1_SIGNED: Final = "application/vnd.docker.distribution.manifest.v1+prettyjws"

MANIFEST_TYPES: Final = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES: Final = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
CONFIG_TYPES: Final = frozenset({OCI_CONFIG, DOCKER_CONFIG})

# Layer media type -> compression name ("none", "gzip", "zstd"); the names match
# lamina.archive.compression.Compression member values, which lamina.oci may not import.
_LAYER_COMPRESSION: Final[dict[str, str]] = {
    OCI_LAYER: "none",
    OCI_LAYER_GZIP: "gzip",
    OCI_LAYER_ZSTD: "zstd",
    OCI_LAYER_NONDISTRIBUTABLE: "none",
    OCI_LAYER_NONDISTRIBUTABLE_GZIP: "gzip",
    OCI_LAYER_NONDISTRIBUTABLE_ZSTD: "zstd",
    DOCKER_LAYER: "none",
    DOCKER_LAYER_GZIP: "gzip",
    DOCKER_FOREIGN_LAYER_GZIP: "gzip",
    DOCKER_LAYER_ZSTD: "zstd",
    DOCKER_FOREIGN_LAYER: "none",
}
LAYER_TYPES: Final = frozenset(_LAYER_COMPRESSION)
FOREIGN_LAYER_TYPES: Final = frozenset(
    {
        DOCKER_FOREIGN_LAYER_GZIP,
        DOCKER_FOREIGN_LAYER,
        OCI_LAYER_NONDISTRIBUTABLE,
        OCI_LAYER_NONDISTRIBUTABLE_GZIP,
        OCI_LAYER_NONDISTRIBUTABLE_ZSTD,
    }
)


def is_manifest(media_type: str) -> bool:
    """An image manifest (OCI or Docker schema 2)."""
    return media_type in MANIFEST_TYPES


def is_index(media_type: str) -> bool:
    """An OCI index or a Docker manifest list."""
    return media_type in INDEX_TYPES


def is_config(media_type: str) -> bool:
    return media_type in CONFIG_TYPES


def is_layer(media_type: str) -> bool:
    """A layer tar lamina knows how to read (any compression, foreign layers included)."""
    return media_type in _LAYER_COMPRESSION


def is_foreign(media_type: str) -> bool:
    """Layers that must not be pushed to a registry (Windows base layers, deprecated OCI kind)."""
    return media_type in FOREIGN_LAYER_TYPES


def is_docker(media_type: str) -> bool:
    """A Docker (not OCI) media type: the manifest family to write alongside it."""
    return media_type.startswith("application/vnd.docker.")


def layer_compression(media_type: str) -> str | None:
    """``"none"``, ``"gzip"`` or ``"zstd"`` for a known layer media type, else ``None``.

    This is what the descriptor *declares*; the archive code checks the bytes agree.
    """
    return _LAYER_COMPRESSION.get(media_type)


def layer_media_type(compression: str, *, docker: bool = False) -> str:
    """The media type lamina writes for a layer with ``compression`` (``none``/``gzip``/``zstd``).

    Docker schema 2 has no zstd layer type, so ``docker=True`` with zstd is a UsageError.
    """
    if docker:
        table = {"none": DOCKER_LAYER, "gzip": DOCKER_LAYER_GZIP}
    else:
        table = {"none": OCI_LAYER, "gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD}
    try:
        return table[compression]
    except KeyError:
        family = "Docker schema 2" if docker else "OCI"
        raise UsageError(
            f"{family} has no layer media type for compression {compression!r}"
        ) from None
