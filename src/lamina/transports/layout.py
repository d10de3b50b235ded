"""Reading OCI image layouts from any :class:`~lamina.transports.source.Source`: a directory
(``oci:``), a tar of one (``oci-archive:``) or Docker 25+'s ``docker save`` output.

Every blob is checked against its descriptor: the stored size before any byte is hashed, then
the digest while it is read. Nested indexes are followed with platform selection; an index that
refers to itself, directly or through others, is refused, and so is nesting deeper than
:data:`MAX_INDEX_DEPTH`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Final

from msgspec import Struct

from lamina.digest import Digest
from lamina.errors import (
    ImageNotFoundError,
    InvalidManifestError,
    SizeMismatchError,
    UnsupportedMediaTypeError,
    UsageError,
)
from lamina.image.base import MAX_DOCUMENT_BYTES, ImageBase, read_verified
from lamina.image.layers import DescribedLayer
from lamina.image.model import Image, Layer
from lamina.oci import mediatype
from lamina.oci.descriptor import Descriptor, Platform
from lamina.oci.gojson import decode_object
from lamina.oci.manifest import Index, parse_manifest
from lamina.transports.source import Source, blob_name

REF_NAME: Final = "org.opencontainers.image.ref.name"
CONTAINERD_NAME: Final = "io.containerd.image.name"
LAYOUT_FILE: Final = "oci-layout"
INDEX_FILE: Final = "index.json"
LAYOUT_VERSION: Final = "1.0.0"
MAX_INDEX_DEPTH: Final = 8
# image-layout.md: ref ::= component ("/" component)*, separator ::= [-._:@+] | "--"
_REF_COMPONENT: Final = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
REF_NAME_RE: Final = re.compile(rf"{_REF_COMPONENT}(?:/{_REF_COMPONENT})*")


def open_blob(source: Source, desc: Descriptor, *, what: str) -> IO[bytes]:
    """The blob of ``desc``, after checking its stored size (unverified stream)."""
    name = blob_name(desc.digest)
    stored = source.size(name)
    if stored != desc.size:
        raise SizeMismatchError(expected=desc.size, actual=stored, what=what)
    return source.open(name)


def read_blob(source: Source, desc: Descriptor, *, what: str) -> bytes:
    return read_verified(open_blob(source, desc, what=what), desc, what=what)


def source_layer(source: Source, desc: Descriptor, diff_id: Digest) -> Layer:
    """A layer whose blob is in ``source`` (its stored size is checked when opened)."""
    return DescribedLayer(
        desc, diff_id=diff_id,
        opener=lambda: open_blob(source, desc, what=f"layer {desc.digest}"),
    )  # fmt: skip


class LayoutImage(ImageBase):
    """An image whose manifest, config and layers are blobs of a layout."""

    def __init__(self, source: Source, desc: Descriptor) -> None:
        super().__init__(declared_media_type=desc.media_type)
        self._source = source
        self._raw = read_blob(source, desc, what=f"manifest {desc.digest}")

    @property
    def raw_manifest(self) -> bytes:
        return self._raw

    def _read_blob(self, desc: Descriptor) -> bytes:
        return read_blob(self._source, desc, what="image config")

    def _layer(self, desc: Descriptor, diff_id: Digest) -> Layer:
        return source_layer(self._source, desc, diff_id)


def read_index(source: Source) -> Index:
    """The layout's ``index.json`` (after checking ``oci-layout``)."""
    if not source.exists(LAYOUT_FILE):
        raise InvalidManifestError("not an OCI layout: the oci-layout file is missing")
    with source.open(LAYOUT_FILE) as f:
        header = decode_object(f.read(4096), what=LAYOUT_FILE)
    version = header.get("imageLayoutVersion")
    if not isinstance(version, str) or not version.startswith("1."):
        raise UnsupportedMediaTypeError(f"imageLayoutVersion {version!r}", what="OCI layout")
    if source.size(INDEX_FILE) > MAX_DOCUMENT_BYTES:
        raise InvalidManifestError(f"{INDEX_FILE} is larger than {MAX_DOCUMENT_BYTES} bytes")
    with source.open(INDEX_FILE) as f:
        parsed = parse_manifest(f.read())
    if not isinstance(parsed, Index):
        raise InvalidManifestError(f"{INDEX_FILE} is a manifest, not an index")
    return parsed


def refs(source: Source) -> list[str]:
    """The ``ref.name`` annotations of the layout's top-level entries, in order."""
    return [
        d.annotations[REF_NAME] for d in read_index(source).manifests if REF_NAME in d.annotations
    ]


class Entry(Struct, frozen=True, kw_only=True):
    """One top-level entry of ``index.json``, and the image it resolves to."""

    descriptor: Descriptor
    image: Image

    @property
    def ref_name(self) -> str | None:
        return self.descriptor.annotations.get(REF_NAME)

    @property
    def full_name(self) -> str | None:
        """Docker 25+ and containerd record the whole reference here."""
        return self.descriptor.annotations.get(CONTAINERD_NAME)


def _resolve(
    source: Source, desc: Descriptor, platform: Platform, seen: tuple[Digest, ...]
) -> Image:
    if desc.digest in seen:
        raise InvalidManifestError(f"index {desc.digest} refers to itself")
    if len(seen) > MAX_INDEX_DEPTH:
        raise InvalidManifestError(f"indexes nested deeper than {MAX_INDEX_DEPTH}")
    if mediatype.is_manifest(desc.media_type):
        return LayoutImage(source, desc)
    if not mediatype.is_index(desc.media_type):
        raise UnsupportedMediaTypeError(desc.media_type, what=f"index entry {desc.digest}")
    raw = read_blob(source, desc, what=f"index {desc.digest}")
    index = parse_manifest(raw, desc.media_type)
    if not isinstance(index, Index):  # parse_manifest honours the declared type
        raise InvalidManifestError(f"{desc.digest} is not an index")
    chosen = index.select(platform)
    if chosen is None:
        unplatformed = [d for d in index.manifests if d.platform is None]
        if len(index.manifests) == 1 and unplatformed:
            chosen = unplatformed[0]
        else:
            offered = ", ".join(str(d.platform) for d in index.manifests if d.platform) or "none"
            raise ImageNotFoundError(
                f"no image for platform {platform} in index {desc.digest} (has: {offered})"
            )
    return _resolve(source, chosen, platform, (*seen, desc.digest))


def entries(source: Source, *, platform: Platform | None = None) -> Iterator[Entry]:
    """Every top-level entry resolved to an image for ``platform`` (default: the host)."""
    want = platform or Platform.host()
    for desc in read_index(source).manifests:
        yield Entry(descriptor=desc, image=_resolve(source, desc, want, ()))


def read_layout(source: Source, ref: str | None, *, platform: Platform | None = None) -> Image:
    """The image named ``ref`` (a ``ref.name``), or the only image when ``ref`` is None.

    Several entries with the same ref (one per platform, as some writers do) are narrowed by
    ``platform`` using the entries' own ``platform`` fields.
    """
    want = platform or Platform.host()
    index = read_index(source)
    if ref is not None:
        candidates = [d for d in index.manifests if d.annotations.get(REF_NAME) == ref]
        if not candidates:
            known = ", ".join(repr(r) for r in refs(source)) or "none"
            raise ImageNotFoundError(f"no image named {ref!r} in the layout (refs: {known})")
    else:
        candidates = list(index.manifests)
        if not candidates:
            raise ImageNotFoundError("the layout holds no image")
    if len(candidates) > 1:
        matching = [d for d in candidates if d.platform is not None and want.matches(d.platform)]
        if not matching:
            what = f"ref {ref!r}" if ref is not None else "the layout"
            raise UsageError(
                f"{what} has {len(candidates)} images; name one with :REF"
                + (f" (refs: {', '.join(refs(source))})" if ref is None else "")
            )
        candidates = matching[:1]
    return _resolve(source, candidates[0], want, ())


def check_ref_name(ref: str) -> str:
    if REF_NAME_RE.fullmatch(ref) is None:
        raise UsageError(f"invalid OCI layout reference {ref!r}: letters, digits and -._:@+ only")
    return ref
