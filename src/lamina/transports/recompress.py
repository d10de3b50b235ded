"""An image view whose layers are re-encoded with another compression (``--compress``).

Used when writing ``oci:``/``oci-archive:`` with ``--compress gzip|zstd|none``. Each layer whose
blob is not already in the wanted compression is read once as its tar (verified against its
diff_id), compressed into a temp file while the output is hashed, and then offered with its new
digest, size and OCI media type. The manifest is new (OCI, written once canonically); the config
bytes are kept, so the image id and the diff_ids do not change — only layer digests do.

A layer already in the wanted compression is kept byte for byte (as ``skopeo copy
--dest-compress-format`` does): re-encoding it would change its digest for no gain.

gzip is written with isal at level 1 and zstd at level 3 (``open_compressor``'s defaults).
Layers are encoded on a small thread pool: isal, zstd and hashlib release the GIL, so on two
cores two layers compress at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Final

from lamina.archive.compression import Compression, open_compressor
from lamina.atomic import remove_tree
from lamina.digest import Digest, Hasher
from lamina.errors import UnsupportedMediaTypeError
from lamina.image.base import ImageBase
from lamina.image.layers import FileLayer
from lamina.image.model import Image, Layer
from lamina.oci import mediatype
from lamina.oci.descriptor import Descriptor
from lamina.oci.manifest import Manifest

_WORKERS: Final = 2  # the machines this targets have two cores; more only adds contention
_CHUNK: Final = 1 << 20


class _HashingWriter:
    """Writes through to ``dst`` and hashes what was written (the new blob digest)."""

    def __init__(self, dst: IO[bytes]) -> None:
        self._dst = dst
        self.hasher = Hasher()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.hasher.update(data)
        return self._dst.write(data)

    def flush(self) -> None:
        self._dst.flush()


def _wanted(layer: Layer, compression: Compression) -> bool:
    """Whether ``layer`` is already stored with ``compression``."""
    try:
        return Compression.from_media_type(layer.media_type) is compression
    except UnsupportedMediaTypeError:
        return False


def _encode(layer: Layer, compression: Compression, workdir: Path) -> Layer:
    """``layer`` re-encoded into a temp file under ``workdir`` (a :class:`FileLayer`)."""
    fd, name = tempfile.mkstemp(prefix="layer-", suffix=".blob", dir=workdir)
    with os.fdopen(fd, "wb") as raw:
        out = _HashingWriter(raw)
        # open_compressor leaves ``out`` open when it is closed; NONE writes straight through.
        comp = open_compressor(out, compression)  # type: ignore[arg-type]
        with layer.open_uncompressed() as src, comp:
            shutil.copyfileobj(src, comp, _CHUNK)
    return FileLayer(
        Path(name),
        digest=out.hasher.digest(),
        size=out.hasher.size,
        media_type=mediatype.layer_media_type(compression.value),
        diff_id=layer.diff_id,
    )


def _oci_type(media_type: str) -> str:
    """A kept layer's media type in the OCI family (the manifest written is OCI)."""
    comp = mediatype.layer_compression(media_type)
    if (
        comp is not None
        and mediatype.is_docker(media_type)
        and not mediatype.is_foreign(media_type)
    ):
        return mediatype.layer_media_type(comp)
    return media_type


class RecompressedImage(ImageBase):
    """``source`` with layers in ``compression``; build it with :func:`recompressed`."""

    def __init__(self, source: Image, layers: Sequence[Layer]) -> None:
        super().__init__(declared_media_type=mediatype.OCI_MANIFEST)
        self._source = source
        self._layers = list(layers)
        old = source.manifest
        descs = []
        for new, before in zip(self._layers, old.layers, strict=True):
            kept = new.digest == before.digest
            descs.append(
                Descriptor(
                    media_type=_oci_type(before.media_type) if kept else new.media_type,
                    digest=new.digest,
                    size=new.size,
                    # Annotations describe the old blob (e.g. an estargz TOC digest): only a
                    # kept blob keeps them.
                    annotations=before.annotations if kept else {},
                    urls=before.urls if kept else (),
                )
            )
        manifest = Manifest(
            media_type=mediatype.OCI_MANIFEST,
            config=Descriptor.of(mediatype.OCI_CONFIG, source.raw_config),
            layers=tuple(descs),
            annotations=old.annotations,
        )
        self._raw = manifest.encode()

    @property
    def raw_manifest(self) -> bytes:
        return self._raw

    def _read_blob(self, desc: Descriptor) -> bytes:
        return self._source.raw_config  # the only small blob a manifest names

    def _layer(self, desc: Descriptor, diff_id: Digest) -> Layer:
        for layer in self._layers:
            if layer.digest == desc.digest:
                return layer
        raise AssertionError(f"layer {desc.digest} is not one of this image's")  # pragma: no cover


@contextlib.contextmanager
def recompressed(
    image: Image, *, compression: Compression, workdir: Path
) -> Iterator[RecompressedImage]:
    """``image`` with every layer in ``compression``; the temp blobs live under ``workdir``
    until the context exits."""
    # Imported here: every ``load``/``save`` imports this module, few recompress (~3 ms).
    from concurrent.futures import ThreadPoolExecutor

    tmp = Path(tempfile.mkdtemp(prefix="recompress-", dir=workdir))
    try:
        source_layers = list(image.layers())
        todo = {
            layer.digest: layer
            for layer in source_layers
            if not _wanted(layer, compression)  # a repeated layer is encoded once
        }
        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            futures = {
                d: pool.submit(_encode, layer, compression, tmp) for d, layer in todo.items()
            }
            done = {d: f.result() for d, f in futures.items()}
        yield RecompressedImage(image, [done.get(layer.digest, layer) for layer in source_layers])
    finally:
        remove_tree(tmp, ignore_errors=True)


@contextlib.contextmanager
def recompressed_all(
    images: Sequence[Image], *, compression: Compression | None, workdir: Path
) -> Iterator[list[Image]]:
    """Every image of ``images`` recompressed (or as it is when ``compression`` is None)."""
    with contextlib.ExitStack() as stack:
        if compression is None:
            yield list(images)
            return
        yield [
            stack.enter_context(recompressed(img, compression=compression, workdir=workdir))
            for img in images
        ]
