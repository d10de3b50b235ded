"""SHA-256 digests: a validated value type and streaming hashing/verifying readers.

A :class:`Digest` is a ``str`` that is always ``sha256:<64 lowercase hex>``; constructing one from
anything else raises :class:`~lamina.errors.InvalidDigestError`, so a ``Digest`` can be used as a
path component (``digest.hex``) without any further check.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import re
import sys
from typing import IO, TYPE_CHECKING, Any, Final

from lamina.errors import DigestMismatchError, InvalidDigestError, SizeMismatchError

if TYPE_CHECKING:
    import hashlib


# Two SHA-256s: OpenSSL's (hashlib), ~6x faster, but loading libcrypto costs ~3 ms of a CLI
# start, the time CPython's built-in one (what hashlib falls back to without OpenSSL) takes
# for ~1 MiB. So inputs of known size are hashed by the built-in until a process has spent
# this many bytes on it, and everything else (streams, layers) by OpenSSL: a container verb
# verifies a config or two of a few KiB and never loads libcrypto.
class _BuiltinBudget:
    bytes_left = 1 << 20


@functools.cache  # a failed import is not remembered: ask once
def _builtin_sha256() -> Any:
    for name in ("_sha2", "_sha256"):  # Python >= 3.12, 3.11
        with contextlib.suppress(ImportError):
            return importlib.import_module(name).sha256
    return None


def _sha256(
    data: bytes | bytearray | memoryview = b"", *, size: int | None = None
) -> hashlib._Hash:
    """A new sha256 over ``data``; ``size``: the total it will hash, when known."""
    if size is not None and size <= _BuiltinBudget.bytes_left and "_hashlib" not in sys.modules:
        builtin = _builtin_sha256()
        if builtin is not None:
            _BuiltinBudget.bytes_left -= size
            return builtin(data)  # type: ignore[no-any-return]
    import hashlib

    return hashlib.sha256(data)


_SHA256_RE: Final = re.compile(r"sha256:[0-9a-f]{64}")
ALGORITHM: Final = "sha256"


class Digest(str):
    """``sha256:<64 lowercase hex>``; nothing else can be constructed."""

    __slots__ = ()

    def __new__(cls, value: str) -> Digest:
        if isinstance(value, Digest):
            return value
        if not isinstance(value, str) or _SHA256_RE.fullmatch(value) is None:
            raise InvalidDigestError(str(value))
        return super().__new__(cls, value)

    @classmethod
    def from_hex(cls, hex_: str) -> Digest:
        return cls(f"sha256:{hex_}")

    @classmethod
    def of(cls, data: bytes | bytearray | memoryview) -> Digest:
        return cls("sha256:" + _sha256(data, size=len(data)).hexdigest())

    @property
    def hex(self) -> str:
        return self[7:]

    @property
    def short(self) -> str:
        """The 12-hex short id Docker prints."""
        return self[7:19]

    def __repr__(self) -> str:
        return f"Digest({str.__repr__(self)})"


def is_digest(value: str) -> bool:
    return _SHA256_RE.fullmatch(value) is not None


class Hasher:
    """Incremental sha256 with a byte count."""

    __slots__ = ("_h", "size")

    def __init__(self, *, expected_size: int | None = None) -> None:
        self._h = _sha256(size=expected_size)
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._h.update(data)
        self.size += len(data)

    def digest(self) -> Digest:
        return Digest("sha256:" + self._h.hexdigest())


class HashingReader:
    """Wraps a binary stream; hashes everything read through it."""

    def __init__(self, raw: IO[bytes], *, expected_size: int | None = None) -> None:
        self._raw = raw
        self.hasher = Hasher(expected_size=expected_size)

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.hasher.update(data)
        return data

    def readinto(self, buf: bytearray | memoryview) -> int:
        data = self._raw.read(len(buf))
        n = len(data)
        memoryview(buf)[:n] = data
        self.hasher.update(data)
        return n

    def drain(self, chunk: int = 1 << 20) -> None:
        while self.read(chunk):
            pass

    def digest(self) -> Digest:
        return self.hasher.digest()

    @property
    def size(self) -> int:
        return self.hasher.size


class VerifyingReader(HashingReader):
    """Reads at most ``size`` bytes (if given) and raises at EOF unless the digest matches.

    The check runs when the underlying stream is exhausted, so a caller must read to EOF
    (``drain()``) before trusting anything it read.
    """

    def __init__(
        self, raw: IO[bytes], *, expected: Digest, size: int | None = None, what: str = "blob"
    ) -> None:
        super().__init__(raw, expected_size=size)
        self.expected = expected
        self.expected_size = size
        self.what = what
        self._verified = False

    def read(self, n: int = -1) -> bytes:
        if self.expected_size is not None:
            remaining = self.expected_size - self.hasher.size
            # Read one byte past the declared size so an overlong blob is noticed.
            want = remaining + 1 if n < 0 else min(n, remaining + 1)
            data = self._raw.read(want) if want > 0 else b""
        else:
            data = self._raw.read(n)
        self.hasher.update(data)
        if self.expected_size is not None and self.hasher.size > self.expected_size:
            raise SizeMismatchError(
                expected=self.expected_size, actual=self.hasher.size, what=self.what
            )
        if not data or (n < 0):
            self._finish()
        return data

    def readinto(self, buf: bytearray | memoryview) -> int:
        data = self.read(len(buf))
        n = len(data)
        memoryview(buf)[:n] = data
        return n

    def _finish(self) -> None:
        if self._verified:
            return
        if self.expected_size is not None and self.hasher.size != self.expected_size:
            raise SizeMismatchError(
                expected=self.expected_size, actual=self.hasher.size, what=self.what
            )
        actual = self.hasher.digest()
        if actual != self.expected:
            raise DigestMismatchError(expected=self.expected, actual=actual, what=self.what)
        self._verified = True

    @property
    def verified(self) -> bool:
        return self._verified


def chain_ids(diff_ids: list[Digest]) -> list[Digest]:
    """OCI ChainIDs for a stack of diff_ids, bottom first."""
    out: list[Digest] = []
    for d in diff_ids:
        if not out:
            out.append(d)
        else:
            out.append(Digest.of(f"{out[-1]} {d}".encode("ascii")))
    return out


EMPTY_TAR_DIFF_ID: Final = Digest(
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
)
EMPTY_JSON_DIGEST: Final = Digest(
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
)
