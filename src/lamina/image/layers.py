"""Concrete layers: in memory, in a file lamina owns, or described by a descriptor."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import IO

from lamina.archive.compression import Compression, open_compressor, open_decompressor
from lamina.digest import Digest
from lamina.image.base import LayerBase
from lamina.oci import mediatype
from lamina.oci.descriptor import Descriptor


class BytesLayer(LayerBase):
    """A layer whose stored blob is held in memory (tests, small generated layers)."""

    def __init__(self, blob: bytes, *, media_type: str, diff_id: Digest) -> None:
        self._blob = blob
        self._media_type = media_type
        self._digest = Digest.of(blob)
        self._diff_id = diff_id

    @classmethod
    def from_tar(
        cls, tar: bytes, *, compression: Compression = Compression.GZIP, docker: bool = False
    ) -> BytesLayer:
        """Compress an uncompressed layer tar into a new layer (diff_id = digest of ``tar``)."""
        out = io.BytesIO()
        with open_compressor(out, compression) as w:
            w.write(tar)
        blob = out.getvalue() if compression is not Compression.NONE else tar
        media_type = mediatype.layer_media_type(compression.value, docker=docker)
        return cls(blob, media_type=media_type, diff_id=Digest.of(tar))

    @classmethod
    def from_blob(cls, blob: bytes, *, media_type: str) -> BytesLayer:
        """A layer from its stored blob; the diff_id is computed by decompressing it once."""
        comp = Compression.from_media_type(media_type)
        if comp is Compression.NONE:
            return cls(blob, media_type=media_type, diff_id=Digest.of(blob))
        with open_decompressor(io.BytesIO(blob), comp) as f:
            tar = f.read()
        return cls(blob, media_type=media_type, diff_id=Digest.of(tar))

    @property
    def digest(self) -> Digest:
        return self._digest

    @property
    def diff_id(self) -> Digest:
        return self._diff_id

    @property
    def size(self) -> int:
        return len(self._blob)

    @property
    def media_type(self) -> str:
        return self._media_type

    def _open_blob(self) -> IO[bytes]:
        return io.BytesIO(self._blob)


class FileLayer(LayerBase):
    """A layer whose blob is a regular file lamina owns (staging, a layout it verified)."""

    def __init__(
        self, path: Path, *, digest: Digest, size: int, media_type: str, diff_id: Digest
    ) -> None:
        self._path = path
        self._digest = digest
        self._size = size
        self._media_type = media_type
        self._diff_id = diff_id

    @property
    def digest(self) -> Digest:
        return self._digest

    @property
    def diff_id(self) -> Digest:
        return self._diff_id

    @property
    def size(self) -> int:
        return self._size

    @property
    def media_type(self) -> str:
        return self._media_type

    def _open_blob(self) -> IO[bytes]:
        return self._path.open("rb")


class DescribedLayer(LayerBase):
    """A layer known by its descriptor and diff_id, whose blob bytes ``opener`` returns
    (unverified: the base verifies them). The shape every medium's layers share."""

    def __init__(self, desc: Descriptor, *, diff_id: Digest, opener: Callable[[], IO[bytes]]
                 ) -> None:  # fmt: skip
        self._desc = desc
        self._diff_id = diff_id
        self._opener = opener

    @property
    def digest(self) -> Digest:
        return self._desc.digest

    @property
    def diff_id(self) -> Digest:
        return self._diff_id

    @property
    def size(self) -> int:
        return self._desc.size

    @property
    def media_type(self) -> str:
        return self._desc.media_type

    def _open_blob(self) -> IO[bytes]:
        return self._opener()
