"""Content-addressed blobs under ``<root>/blobs/sha256/<hex>``.

Written to a held temp file in ``<root>/tmp``, fsynced, then renamed into place (so a reader
never sees a partial blob and a crash leaves only a temp that the next open sweeps). Every read
is verified: :meth:`BlobStore.open` returns a reader that raises at EOF unless the bytes hash to
the name. A blob nobody's record references is garbage: write a blob and the record that
references it under the store lock (see store/store.py), or ``gc`` may take it.
"""

from __future__ import annotations

import contextlib
import os
import types
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final

from lamina.atomic import fsync_dir
from lamina.digest import Digest, Hasher, VerifyingReader, is_digest
from lamina.errors import (
    BlobNotFoundError,
    DigestMismatchError,
    SizeMismatchError,
    StoreError,
)
from lamina.store.lock import HeldTemp, held_temp
from lamina.store.paths import StorePaths

_CHUNK: Final = 1 << 20
BLOB_MODE: Final = 0o644


class BlobWriter:
    """Bytes written here are hashed as they go; :meth:`commit` renames them into place.

    A writer is a plain binary sink (``write``), so it can be the ``tee`` of a layer apply.
    Leaving :meth:`BlobStore.writer`'s block without ``commit`` deletes the temp."""

    def __init__(self, store: BlobStore, temp: HeldTemp, *, hashing: bool = True) -> None:
        self._store = store
        self._temp = temp
        self._file = os.fdopen(os.dup(temp.fd), "wb", buffering=_CHUNK)
        self._hasher = Hasher() if hashing else None
        self._size = 0
        self._committed: Digest | None = None

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._committed is not None:
            raise StoreError("blob writer already committed")
        if self._hasher is not None:
            self._hasher.update(data)
        self._size += len(data)
        return self._file.write(data)

    @property
    def size(self) -> int:
        return self._size

    def digest(self) -> Digest:
        """Digest of everything written so far (a hashing writer only)."""
        if self._hasher is None:
            raise StoreError("this blob writer does not hash: its caller vouches for the digest")
        return self._hasher.digest()

    def commit(self, *, expected: Digest | None = None, size: int | None = None) -> Digest:
        """fsync and rename into place; return the digest. Idempotent if the blob exists. A
        non-hashing writer needs ``expected`` (computed by the caller over these same bytes)."""
        if self._committed is not None:
            return self._committed
        if size is not None and size != self._size:
            raise SizeMismatchError(expected=size, actual=self._size, what="blob")
        if self._hasher is None:
            if expected is None:
                raise StoreError("a non-hashing blob writer needs the expected digest")
            actual = Digest(expected)
        else:
            actual = self._hasher.digest()
        if expected is not None and Digest(expected) != actual:
            raise DigestMismatchError(expected=expected, actual=actual, what="blob")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        target = self._store.paths.blob(actual)
        if not target.exists():
            os.chmod(self._temp.path, BLOB_MODE)
            os.rename(self._temp.path, target)
            fsync_dir(target.parent)
        self._committed = actual
        return actual

    @property
    def committed(self) -> Digest | None:
        return self._committed

    def _close(self) -> None:
        if not self._file.closed:
            self._file.close()


class BlobStore:
    """The blob half of the store. All methods take a :class:`Digest` (or a str that is one)."""

    def __init__(self, paths: StorePaths) -> None:
        self.paths = paths

    def path(self, digest: Digest) -> Path:
        """Where the blob lives (it may not exist). Readers should prefer :meth:`open`."""
        return self.paths.blob(digest)

    def exists(self, digest: Digest) -> bool:
        return self.paths.blob(digest).is_file()

    def size(self, digest: Digest) -> int:
        try:
            return self.paths.blob(digest).stat().st_size
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {digest} not found") from None

    def open(self, digest: Digest) -> BlobReader:
        """A reader that raises DigestMismatchError at EOF unless the content matches ``digest``.
        Close it with ``reader.close()`` or use it as a context manager."""
        d = Digest(digest)
        try:
            f = open(self.paths.blob(d), "rb")  # noqa: SIM115 - handed to the caller
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {d} not found") from None
        return BlobReader(f, expected=d, size=os.fstat(f.fileno()).st_size)

    def read_bytes(self, digest: Digest) -> bytes:
        """The whole blob, verified."""
        with self.open(digest) as r:
            return r.read()

    def put_bytes(self, data: bytes, *, expected: Digest | None = None) -> Digest:
        """Store ``data``; return its digest. Idempotent."""
        actual = Digest.of(data)
        if expected is not None and Digest(expected) != actual:
            raise DigestMismatchError(expected=expected, actual=actual, what="blob")
        if self.exists(actual):
            return actual
        with self.writer() as w:
            w.write(data)
            return w.commit()

    def put_stream(
        self, src: IO[bytes], *, expected: Digest | None = None, size: int | None = None
    ) -> Digest:
        """Copy ``src`` to EOF into the store, verifying ``expected``/``size`` when given.
        Nothing is stored when a check fails. Idempotent."""
        with self.writer() as w:
            while chunk := src.read(_CHUNK):
                w.write(chunk)
                if size is not None and w.size > size:
                    raise SizeMismatchError(expected=size, actual=w.size, what="blob")
            return w.commit(expected=expected, size=size)

    @contextlib.contextmanager
    def writer(self, *, hashing: bool = True) -> Iterator[BlobWriter]:
        """A :class:`BlobWriter`; the temp is removed unless ``commit()`` ran in the block.
        ``hashing=False`` is for a tee whose bytes the caller hashes itself in-process (a
        layer apply): the blob is not hashed twice."""
        with held_temp(self.paths.tmp, prefix="blob-") as temp:
            w = BlobWriter(self, temp, hashing=hashing)
            try:
                yield w
            finally:
                w._close()

    def delete(self, digest: Digest) -> None:
        """Remove the blob. Idempotent."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.paths.blob(digest))

    def iter_digests(self) -> Iterator[Digest]:
        """Every stored blob's digest (files whose name is not a digest are skipped)."""
        try:
            names = os.listdir(self.paths.blobs)
        except FileNotFoundError:
            return
        for name in sorted(names):
            if is_digest(f"sha256:{name}"):
                yield Digest.from_hex(name)

    def verify(self, digest: Digest) -> None:
        """Re-hash the blob; raise DigestMismatchError (or BlobNotFoundError) if it is not whole."""
        with self.open(digest) as r:
            r.drain(_CHUNK)

    def total_size(self) -> int:
        total = 0
        for d in self.iter_digests():
            with contextlib.suppress(FileNotFoundError):
                total += self.paths.blob(d).stat().st_size
        return total


class BlobReader(VerifyingReader):
    """A verifying reader of one blob that owns its file (``close()``, ``with``). Raises
    DigestMismatchError at EOF unless the bytes match; trust nothing read before EOF."""

    def __init__(self, raw: IO[bytes], *, expected: Digest, size: int) -> None:
        super().__init__(raw, expected=expected, size=size, what=f"blob {expected}")
        self._owned = raw

    def close(self) -> None:
        self._owned.close()

    @property
    def closed(self) -> bool:
        return self._owned.closed

    def readable(self) -> bool:
        return True

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()
