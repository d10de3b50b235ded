"""ImageBase and LayerBase: everything an :class:`~lamina.image.model.Image` or
:class:`~lamina.image.model.Layer` offers, derived from a small core a medium implements
(go-containerregistry's ``partial`` idea).

A layer medium implements ``digest``, ``diff_id``, ``size``, ``media_type`` and
:meth:`LayerBase._open_blob`; an image medium implements ``raw_manifest``,
:meth:`ImageBase._read_blob` (small documents) and :meth:`ImageBase._layer`. The base adds the
parsing, the verification of every byte read, and the manifest/config consistency checks.
"""

from __future__ import annotations

import abc
import functools
import io
from collections.abc import Sequence
from typing import IO, Final

from lamina.archive.compression import Compression, open_decompressor
from lamina.digest import Digest, Hasher
from lamina.errors import (
    DigestMismatchError,
    InvalidContentError,
    InvalidManifestError,
    LimitExceededError,
    SizeMismatchError,
)
from lamina.image.model import Layer
from lamina.oci import mediatype
from lamina.oci.config import ImageConfig
from lamina.oci.descriptor import Descriptor
from lamina.oci.manifest import Manifest, parse_manifest

# Manifests and configs are read into memory; distribution caps manifests at 4 MiB, and a real
# config with a long history stays well under this. Refusing larger ones bounds memory.
MAX_DOCUMENT_BYTES: Final = 8 << 20


class _VerifiedRaw(io.RawIOBase):
    """Passes bytes through; at EOF raises unless they had ``expected`` digest (and ``size``)."""

    def __init__(self, src: IO[bytes], *, expected: Digest, size: int | None, what: str) -> None:
        self._src = src
        self._expected = expected
        self._size = size
        self._what = what
        self._hasher = Hasher()
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._done:
            return 0
        want = len(b)
        if self._size is not None:
            # One byte past the declared size is enough to notice an overlong blob.
            want = max(1, min(want, self._size - self._hasher.size + 1))
        data = self._src.read(want)
        if not data:
            self._finish()
            return 0
        self._hasher.update(data)
        if self._size is not None and self._hasher.size > self._size:
            raise SizeMismatchError(expected=self._size, actual=self._hasher.size, what=self._what)
        n = len(data)
        memoryview(b)[:n] = data
        return n

    def _finish(self) -> None:
        self._done = True
        if self._size is not None and self._hasher.size != self._size:
            raise SizeMismatchError(expected=self._size, actual=self._hasher.size, what=self._what)
        actual = self._hasher.digest()
        if actual != self._expected:
            raise DigestMismatchError(expected=self._expected, actual=actual, what=self._what)

    def close(self) -> None:
        if not self.closed:
            self._src.close()
        super().close()


def verified_reader(
    src: IO[bytes], *, expected: Digest, size: int | None = None, what: str = "blob"
) -> IO[bytes]:
    """``src`` wrapped so that reading it to EOF raises unless the bytes match. Closing the
    result closes ``src``."""
    return io.BufferedReader(_VerifiedRaw(src, expected=expected, size=size, what=what), 1 << 20)


def read_verified(src: IO[bytes], desc: Descriptor, *, what: str) -> bytes:
    """All of ``src``, checked against ``desc`` (size first, then digest)."""
    if desc.size > MAX_DOCUMENT_BYTES:
        raise LimitExceededError(limit_name="document size", limit=MAX_DOCUMENT_BYTES, what=what)
    with verified_reader(src, expected=desc.digest, size=desc.size, what=what) as f:
        return f.read()


def check_bytes(data: bytes, desc: Descriptor, *, what: str) -> bytes:
    """``data`` if it has ``desc``'s size and digest, else the mismatch error."""
    if len(data) != desc.size:
        raise SizeMismatchError(expected=desc.size, actual=len(data), what=what)
    actual = Digest.of(data)
    if actual != desc.digest:
        raise DigestMismatchError(expected=desc.digest, actual=actual, what=what)
    return data


class _BlameBlob(io.RawIOBase):
    """Reads the decompressed stream; when inflating fails, finishes reading the verified blob
    so a tampered blob is reported as the digest/size mismatch it is, not as bad gzip."""

    def __init__(self, tar: IO[bytes], blob: IO[bytes]) -> None:
        self._tar = tar
        self._blob = blob

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            data = self._tar.read(len(b))
        except (DigestMismatchError, SizeMismatchError):
            raise
        except InvalidContentError as exc:
            try:
                while self._blob.read(1 << 20):
                    pass
            except (DigestMismatchError, SizeMismatchError) as mismatch:
                raise mismatch from exc
            raise
        n = len(data)
        memoryview(b)[:n] = data
        return n

    def close(self) -> None:
        if not self.closed:
            self._tar.close()
            self._blob.close()  # the decompressor does not close its source
        super().close()


class LayerBase(abc.ABC):
    """A :class:`Layer` from ``digest``, ``diff_id``, ``size``, ``media_type`` and a raw blob."""

    @property
    @abc.abstractmethod
    def digest(self) -> Digest: ...

    @property
    @abc.abstractmethod
    def diff_id(self) -> Digest: ...

    @property
    @abc.abstractmethod
    def size(self) -> int: ...

    @property
    @abc.abstractmethod
    def media_type(self) -> str: ...

    @abc.abstractmethod
    def _open_blob(self) -> IO[bytes]:
        """The stored blob bytes, unverified (the base verifies them)."""

    @property
    def compression(self) -> Compression:
        """As declared by the media type (``UnsupportedMediaTypeError`` for non-layers)."""
        return Compression.from_media_type(self.media_type)

    def open_compressed(self) -> IO[bytes]:
        return verified_reader(
            self._open_blob(), expected=self.digest, size=self.size, what=f"layer {self.digest}"
        )

    def open_unverified(self) -> IO[bytes]:
        """The blob bytes as stored, for a consumer that checks ``digest`` and ``size`` itself
        as it reads (the store's one-pass ingest does): saves hashing the blob twice."""
        return self._open_blob()

    def open_uncompressed(self) -> IO[bytes]:
        compression = self.compression
        blob = self.open_compressed()
        if compression is Compression.NONE:
            if self.diff_id == self.digest:
                return blob
            tar = blob
        else:
            tar = io.BufferedReader(_BlameBlob(open_decompressor(blob, compression), blob), 1 << 20)
        return verified_reader(tar, expected=self.diff_id, what=f"layer {self.digest} (diff_id)")


class ImageBase(abc.ABC):
    """An :class:`Image` from its manifest bytes, a small-blob reader and a layer factory.

    ``declared_media_type`` is what the referring descriptor said the manifest is; it must agree
    with the manifest's own ``mediaType`` when both are present.
    """

    def __init__(self, *, declared_media_type: str | None = None) -> None:
        self._declared = declared_media_type

    @property
    @abc.abstractmethod
    def raw_manifest(self) -> bytes: ...

    @abc.abstractmethod
    def _read_blob(self, desc: Descriptor) -> bytes:
        """The bytes of a small blob (the config); the base checks them against ``desc``."""

    @abc.abstractmethod
    def _layer(self, desc: Descriptor, diff_id: Digest) -> Layer:
        """The layer ``desc`` of the manifest, whose config diff_id is ``diff_id``."""

    @functools.cached_property
    def manifest(self) -> Manifest:
        parsed = parse_manifest(self.raw_manifest, self._declared)
        if not isinstance(parsed, Manifest):
            raise InvalidManifestError(f"{self.digest} is an index, not an image manifest")
        return parsed

    @property
    def media_type(self) -> str:
        return self.manifest.media_type or self._declared or mediatype.OCI_MANIFEST

    @functools.cached_property
    def digest(self) -> Digest:
        return Digest.of(self.raw_manifest)

    @functools.cached_property
    def raw_config(self) -> bytes:
        desc = self.manifest.config
        if desc.size > MAX_DOCUMENT_BYTES:
            raise LimitExceededError(
                limit_name="document size", limit=MAX_DOCUMENT_BYTES, what="image config"
            )
        return check_bytes(self._read_blob(desc), desc, what="image config")

    @functools.cached_property
    def config(self) -> ImageConfig:
        return ImageConfig.from_bytes(self.raw_config)

    @property
    def image_id(self) -> Digest:
        return self.manifest.config.digest

    def layers(self) -> Sequence[Layer]:
        descs = self.manifest.layers
        diff_ids = self.config.diff_ids
        if len(descs) != len(diff_ids):
            raise InvalidManifestError(
                f"image {self.digest}: manifest has {len(descs)} layers"
                f" but the config has {len(diff_ids)} diff_ids"
            )
        return [self._layer(d, diff) for d, diff in zip(descs, diff_ids, strict=True)]
