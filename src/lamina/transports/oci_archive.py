"""``oci-archive:FILE[:REF]`` — a tar of an OCI image layout (podman/skopeo ``oci-archive``).

Reading indexes the tar once and reads each blob straight from its member (``./`` prefixes or
not); nothing is extracted. Members that are links are refused: a layout has no reason to hold
any. Writing produces a new archive (no ``./`` prefixes, fixed metadata) via a temp file renamed
into place.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from lamina.atomic import atomic_writer
from lamina.image.model import Image
from lamina.oci.descriptor import Descriptor, Platform
from lamina.transports import layout
from lamina.transports.oci_layout import (
    LAYOUT_HEADER,
    Platforms,
    index_entry,
    item_blobs,
    merge_index,
    read_platforms,
)
from lamina.transports.source import TarSource, blob_name
from lamina.transports.tarout import TarOut


def _source(path: Path) -> TarSource:
    return TarSource(path, follow_links=False)


def read(path: Path, ref: str | None = None, *, platform: Platform | None = None) -> Image:
    return layout.read_layout(_source(path), ref, platform=platform)


def refs(path: Path) -> list[str]:
    return layout.refs(_source(path))


def entries(path: Path, *, platform: Platform | None = None) -> Iterator[layout.Entry]:
    return layout.entries(_source(path), platform=platform)


def platforms(path: Path, ref: str | None = None) -> Platforms | None:
    """Every platform of the index ``ref`` names (``copy --all``); None for a single image."""
    return read_platforms(_source(path), ref)


def write_all(path: Path, items: Sequence[tuple[Image | Platforms, str | None]]) -> None:
    """Write a new archive at ``path`` holding ``items`` (replacing any file there)."""
    with atomic_writer(path) as f:
        tar = TarOut(f)
        tar.add_bytes(layout.LAYOUT_FILE, LAYOUT_HEADER)
        tar.add_dir("blobs")
        tar.add_dir("blobs/sha256")
        written: set[str] = set()
        index_entries: list[Descriptor] = []
        for item, ref in items:
            mdesc, blobs = item_blobs(item)
            for blob in blobs:
                name = blob_name(blob.descriptor.digest)
                if name in written:
                    continue
                written.add(name)
                with blob.open() as src:
                    tar.add_stream(name, src, blob.descriptor.size)
            index_entries.append(index_entry(mdesc, ref))
        tar.add_bytes(layout.INDEX_FILE, merge_index(None, index_entries).encode())
        tar.close()


def write(path: Path, image: Image, ref: str | None = None) -> None:
    write_all(path, [(image, ref)])
