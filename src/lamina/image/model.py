"""The read-only views every medium hands out: :class:`Image` and :class:`Layer`.

Views may be lazy and may do I/O (a layer of an archive opens the archive when read). Every
stream they return verifies what it yields: a reader raises
:class:`~lamina.errors.DigestMismatchError`/:class:`~lamina.errors.SizeMismatchError` when it
reaches EOF with the wrong bytes, so a consumer must read to EOF before trusting the content.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, Protocol, runtime_checkable

from lamina.digest import Digest
from lamina.oci.config import ImageConfig
from lamina.oci.manifest import Manifest


@runtime_checkable
class Layer(Protocol):
    """One layer of an image: a blob as stored (maybe compressed) and its uncompressed tar."""

    @property
    def digest(self) -> Digest:
        """Digest of the blob as stored or sent (the manifest's ``layers[].digest``)."""
        ...

    @property
    def diff_id(self) -> Digest:
        """Digest of the uncompressed tar (the config's ``rootfs.diff_ids`` entry)."""
        ...

    @property
    def size(self) -> int:
        """Size in bytes of the blob as stored."""
        ...

    @property
    def media_type(self) -> str:
        """The media type the manifest declares (the bytes are checked by the reader)."""
        ...

    def open_compressed(self) -> IO[bytes]:
        """The blob as stored; verified against :attr:`digest` and :attr:`size` at EOF."""
        ...

    def open_uncompressed(self) -> IO[bytes]:
        """The layer tar; verified against :attr:`diff_id` (and the blob) at EOF."""
        ...


@runtime_checkable
class Image(Protocol):
    """One image: a manifest, its config and its layers, base first."""

    @property
    def raw_manifest(self) -> bytes:
        """The manifest bytes exactly as hashed into :attr:`digest`."""
        ...

    @property
    def manifest(self) -> Manifest: ...

    @property
    def media_type(self) -> str:
        """The manifest's media type (OCI or Docker schema 2)."""
        ...

    @property
    def raw_config(self) -> bytes:
        """The config bytes exactly as hashed into :attr:`image_id`."""
        ...

    @property
    def config(self) -> ImageConfig: ...

    @property
    def digest(self) -> Digest:
        """The manifest digest."""
        ...

    @property
    def image_id(self) -> Digest:
        """The config digest (Docker's image id)."""
        ...

    def layers(self) -> Sequence[Layer]:
        """The layers, base first, paired with the config's diff_ids."""
        ...
