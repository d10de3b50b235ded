"""``oci:DIR[:REF]`` — an OCI image layout directory (image-spec ``image-layout.md``).

``read`` resolves REF through the ``org.opencontainers.image.ref.name`` annotations of
``index.json`` (nested indexes included, host platform by default) and returns a lazy view whose
blobs are verified as they are read. ``write`` adds an image to a new or existing layout: blobs
already present with the right size are kept, ``index.json`` is replaced atomically, and an
entry with the same REF is replaced (as skopeo does). Docker schema 2 images are written with
an OCI manifest; config and layer bytes are kept as they are.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from msgspec import Struct

from lamina.atomic import atomic_writer, write_atomic
from lamina.digest import Digest
from lamina.errors import (
    BlobNotFoundError,
    ConflictError,
    FileError,
    UnsupportedMediaTypeError,
)
from lamina.image.model import Image
from lamina.oci import mediatype
from lamina.oci.descriptor import Descriptor, Platform
from lamina.oci.manifest import Index, parse_manifest
from lamina.transports import layout
from lamina.transports.convert import oci_manifest
from lamina.transports.source import DirSource, Source

LAYOUT_HEADER = b'{"imageLayoutVersion":"1.0.0"}'


def read(path: Path, ref: str | None = None, *, platform: Platform | None = None) -> Image:
    """The image ``ref`` of the layout at ``path`` (the only one when ``ref`` is None)."""
    return layout.read_layout(DirSource(path), ref, platform=platform)


def refs(path: Path) -> list[str]:
    """The refs the layout at ``path`` names, in ``index.json`` order."""
    return layout.refs(DirSource(path))


class Blob(Struct, frozen=True, kw_only=True):
    """One blob to put into a layout: its descriptor and how to read its bytes."""

    descriptor: Descriptor
    data: bytes | None = None  # small documents
    image: Image | None = None  # layers: read from the image's layer views

    def open(self) -> IO[bytes]:
        if self.data is not None:
            return io.BytesIO(self.data)
        for layer in self.image.layers() if self.image is not None else ():
            if layer.digest == self.descriptor.digest:
                return layer.open_compressed()
        raise BlobNotFoundError(f"layer {self.descriptor.digest} is not in the image")


def image_blobs(image: Image) -> tuple[Descriptor, list[Blob]]:
    """The OCI manifest descriptor of ``image`` and every blob a layout needs for it
    (layers, config, manifest: the order a reader can verify them in)."""
    raw = oci_manifest(image)
    mdesc = Descriptor.of(mediatype.OCI_MANIFEST, raw)
    blobs: list[Blob] = []
    seen: set[Digest] = set()
    for layer in image.layers():
        if layer.digest not in seen:
            seen.add(layer.digest)
            desc = Descriptor(media_type=layer.media_type, digest=layer.digest, size=layer.size)
            blobs.append(Blob(descriptor=desc, image=image))
    cdesc = Descriptor.of(mediatype.OCI_CONFIG, image.raw_config)
    blobs.append(Blob(descriptor=cdesc, data=image.raw_config))
    blobs.append(Blob(descriptor=mdesc, data=raw))
    return mdesc, blobs


class Platforms(Struct, frozen=True, kw_only=True):
    """An index and the image of each of its entries: what ``copy --all`` carries over."""

    media_type: str
    raw_index: bytes
    children: tuple[tuple[Descriptor, Image], ...]  # the index's entry, and its image


def read_platforms(source: Source, ref: str | None) -> Platforms | None:
    """Every platform of the index that ``ref`` (or the layout's only entry) names; None when
    that entry is a single image, which the caller then reads as usual."""
    index = layout.read_index(source)
    cands = [d for d in index.manifests if ref is None or d.annotations.get(layout.REF_NAME) == ref]
    if len(cands) != 1 or not mediatype.is_index(cands[0].media_type):
        return None
    desc = cands[0]
    raw = layout.read_blob(source, desc, what=f"index {desc.digest}")
    parsed = parse_manifest(raw, desc.media_type)
    if not isinstance(parsed, Index):
        raise UnsupportedMediaTypeError(desc.media_type, what=f"index {desc.digest}")
    children = []
    for child in parsed.manifests:
        # Nested indexes are refused rather than flattened: flattening would change the
        # digests a --all copy promises to keep (and rules out index cycles).
        if not mediatype.is_manifest(child.media_type):
            raise UnsupportedMediaTypeError(
                child.media_type, what=f"entry {child.digest} of index {desc.digest} (--all)"
            )
        children.append((child, layout.LayoutImage(source, child)))
    return Platforms(media_type=desc.media_type, raw_index=raw, children=tuple(children))


def platforms_blobs(item: Platforms) -> tuple[Descriptor, list[Blob]]:
    """The index descriptor of ``item`` and every blob a layout needs for it. The index bytes
    are kept unless a child's manifest had to change (Docker -> OCI, recompression)."""
    blobs: list[Blob] = []
    entries: list[Descriptor] = []
    changed = False
    for old, image in item.children:
        mdesc, child_blobs = image_blobs(image)
        blobs += child_blobs
        changed |= mdesc.digest != old.digest
        entries.append(
            Descriptor(
                media_type=mdesc.media_type,
                digest=mdesc.digest,
                size=mdesc.size,
                platform=old.platform,
                annotations=old.annotations,
            )
        )
    if changed:
        before = parse_manifest(item.raw_index, item.media_type)
        assert isinstance(before, Index)
        raw = Index(manifests=tuple(entries), annotations=before.annotations).encode()
        idesc = Descriptor.of(mediatype.OCI_INDEX, raw)
    else:
        raw = item.raw_index
        idesc = Descriptor.of(item.media_type, raw)
    blobs.append(Blob(descriptor=idesc, data=raw))
    return idesc, blobs


def item_blobs(item: Image | Platforms) -> tuple[Descriptor, list[Blob]]:
    """:func:`image_blobs` or :func:`platforms_blobs`, whichever ``item`` needs."""
    return platforms_blobs(item) if isinstance(item, Platforms) else image_blobs(item)


def index_entry(mdesc: Descriptor, ref: str | None) -> Descriptor:
    annotations = {layout.REF_NAME: layout.check_ref_name(ref)} if ref is not None else {}
    return Descriptor(
        media_type=mdesc.media_type, digest=mdesc.digest, size=mdesc.size, annotations=annotations
    )


def merge_index(old: Index | None, new: Sequence[Descriptor]) -> Index:
    """``old`` with ``new`` appended; older entries with the same ref name lose that entry."""
    names = {d.annotations[layout.REF_NAME] for d in new if layout.REF_NAME in d.annotations}
    kept = [
        d
        for d in (old.manifests if old else ())
        if d.annotations.get(layout.REF_NAME) not in names or layout.REF_NAME not in d.annotations
    ]
    return Index(manifests=(*kept, *new), annotations=old.annotations if old else {})


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_blobs_dir(path: Path) -> int:
    """An fd of ``path/blobs/sha256`` (made if missing). A symlink there is refused: the
    layout's reader refuses one, and blobs written through it landed wherever it pointed,
    outside the destination."""
    fd = os.open(path, _DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        for part, shown in (("blobs", "blobs"), ("sha256", "blobs/sha256")):
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=fd)
            try:
                nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                raise ConflictError(
                    f"refusing to write an OCI layout into {path}: {shown} is not a directory"
                    " (a symlink or a file)"
                ) from exc
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _write_blob(blobs_fd: int, blob: Blob) -> None:
    # Through the fd's /proc link: the dir opened (and checked) is the one written into.
    dest = Path(f"/proc/self/fd/{blobs_fd}") / blob.descriptor.digest.hex
    if dest.is_file() and not dest.is_symlink() and dest.stat().st_size == blob.descriptor.size:
        return  # content-addressed: same name and size is the same blob (verified on read)
    with blob.open() as src, atomic_writer(dest) as out:
        shutil.copyfileobj(src, out, 1 << 20)
        src.read()  # reach EOF so a verifying reader checks the digest before the rename


def write_all(path: Path, items: Sequence[tuple[Image | Platforms, str | None]]) -> None:
    """Add several images or indexes (each with an optional ref) to the layout at ``path``:
    a new dir, an empty one or an existing layout, never a dir of other files (``-o /`` or
    ``-o .`` would scatter blobs/, index.json and oci-layout among them)."""
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        names = []
    except OSError as exc:
        raise FileError(f"cannot write an OCI layout to {path}: {exc.strerror}") from exc
    if names and layout.LAYOUT_FILE not in names:
        refused = ConflictError(
            f"refusing to write an OCI layout into {path}: it holds other files"
        )
        refused.hint = (
            f"give a new or empty directory, or an OCI layout (with {layout.LAYOUT_FILE})"
        )
        raise refused
    try:
        path.mkdir(parents=True, exist_ok=True)
        blobs_fd = _open_blobs_dir(path)
    except OSError as exc:
        raise FileError(f"cannot write an OCI layout to {path}: {exc.strerror}") from exc
    try:
        if not (path / layout.LAYOUT_FILE).exists():
            write_atomic(path / layout.LAYOUT_FILE, LAYOUT_HEADER)
        source = DirSource(path)
        old = layout.read_index(source) if source.exists(layout.INDEX_FILE) else None
        entries = []
        for item, ref in items:
            mdesc, blobs = item_blobs(item)
            for blob in blobs:
                _write_blob(blobs_fd, blob)
            entries.append(index_entry(mdesc, ref))
        write_atomic(path / layout.INDEX_FILE, merge_index(old, entries).encode())
    finally:
        os.close(blobs_fd)


def write(path: Path, image: Image, ref: str | None = None) -> None:
    """Add ``image`` to the layout at ``path`` (created if missing), named ``ref``."""
    write_all(path, [(image, ref)])


def entries(path: Path, *, platform: Platform | None = None) -> Iterator[layout.Entry]:
    """Every top-level entry of the layout, resolved to an image."""
    return layout.entries(DirSource(path), platform=platform)


def platforms(path: Path, ref: str | None = None) -> Platforms | None:
    """Every platform of the index ``ref`` names (``copy --all``); None for a single image."""
    return read_platforms(DirSource(path), ref)
