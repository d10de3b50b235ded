"""Layer compression: detect it from the bytes, inflate and deflate in-process.

gzip goes through ``isal`` (about 2.5x zlib's inflate speed; stdlib ``zlib`` is the fallback),
zstd through ``backports.zstd`` (Python 3.14's ``compression.zstd``). No decompressor is ever
executed as a process: running ``xz``/``unpigz`` found on some PATH is how CVE-2026-41567 happened.

The format is decided by magic bytes, not by the media type a manifest claims; a claim that
disagrees with the bytes is refused (:class:`~lamina.errors.CompressionMismatchError`) rather
than silently trusted either way. xz and bzip2 are recognised only to be refused clearly (as
layers: ``cp -`` and ADD inflate xz through :class:`XzReader`, whose memory is bounded).

Inflation is bounded: :class:`Inflater` never returns more than ``chunk`` bytes per step, so a
decompression bomb costs at most one chunk of memory before the caller's limit stops it.
"""

from __future__ import annotations

import enum
import io
from collections.abc import Iterator
from typing import IO, Final, Protocol, cast

from lamina.errors import (
    InvalidContentError,
    UnsupportedMediaTypeError,
)

try:
    from isal import isal_zlib as _zlib_mod
except ImportError:  # pragma: no cover - isal is a declared dependency
    import zlib as _zlib_mod  # type: ignore[no-redef]

_ZLIB_ERROR: Final[type[Exception]] = _zlib_mod.error  # type: ignore[assignment]

GZIP_MAGIC: Final = b"\x1f\x8b"
ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
XZ_MAGIC: Final = b"\xfd7zXZ\x00"
BZIP2_MAGIC: Final = b"BZh"
HEAD_SIZE: Final = 512  # enough to see a tar header checksum when there is no compression
DEFAULT_GZIP_LEVEL: Final = 1  # isal level 1: ~440 MB/s deflate, ratio close to gzip -6
DEFAULT_ZSTD_LEVEL: Final = 3
_GZIP_WBITS: Final = 31  # 16 + 15: gzip header and trailer, 32 KiB window


class Compression(enum.Enum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"

    @classmethod
    def from_media_type(cls, media_type: str) -> Compression:
        """Compression implied by an OCI or Docker layer media type."""
        try:
            return _MEDIA_TYPES[media_type]
        except KeyError:
            raise UnsupportedMediaTypeError(media_type, "layer") from None


_MEDIA_TYPES: Final[dict[str, Compression]] = {
    "application/vnd.oci.image.layer.v1.tar": Compression.NONE,
    "application/vnd.oci.image.layer.v1.tar+gzip": Compression.GZIP,
    "application/vnd.oci.image.layer.v1.tar+zstd": Compression.ZSTD,
    "application/vnd.oci.image.layer.nondistributable.v1.tar": Compression.NONE,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": Compression.GZIP,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": Compression.ZSTD,
    "application/vnd.docker.image.rootfs.diff.tar": Compression.NONE,
    "application/vnd.docker.image.rootfs.diff.tar.gzip": Compression.GZIP,
    "application/vnd.docker.image.rootfs.diff.tar.zstd": Compression.ZSTD,
    "application/vnd.docker.image.rootfs.foreign.diff.tar": Compression.NONE,
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": Compression.GZIP,
}


def _looks_like_tar(head: bytes) -> bool:
    if len(head) < 512:
        return False
    if head[:512].count(0) == 512:  # an empty archive starts with its end-of-archive block
        return True
    return tar_header_valid(head)


def tar_header_valid(head: bytes) -> bool:
    """Whether ``head`` starts with a 512-byte tar header whose checksum holds (unsigned or
    signed sums, as Go's archive/tar accepts v7, ustar and GNU headers)."""
    if len(head) < 512:
        return False
    block = head[:512]
    try:
        stored = int(block[148:156].split(b"\x00", 1)[0].strip() or b"-1", 8)
    except ValueError:
        return False
    unsigned = sum(block[:148]) + 8 * 0x20 + sum(block[156:])
    signed = unsigned - 2 * sum(b for b in block[:148] + block[156:] if b > 127)
    return stored in (unsigned, signed)


XZ_MEMLIMIT: Final = 256 << 20  # what the xz decoder may hold: `xz -9e` streams need ~65 MiB


class XzReader(io.RawIOBase):
    """An xz file (one or more concatenated streams) inflated in-process with the decoder's
    memory bounded by ``memlimit``: a stream whose header asks for a bigger dictionary (the
    format allows 1.5 GiB) fails with ``lzma.LZMAError`` instead of holding it. The stdlib's
    ``lzma.LZMAFile`` takes no limit. Bytes after the last stream that start no new one (stream
    padding, trailing garbage) end the file, as ``LZMAFile`` ends it."""

    def __init__(self, raw: IO[bytes], *, memlimit: int = XZ_MEMLIMIT) -> None:
        import lzma

        self._lzma = lzma
        self._raw = raw
        self._memlimit = memlimit
        self._decoder = lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=memlimit)
        self._first = True  # still in the first stream: an error there is the file's
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._done:
            if self._decoder.eof:
                rest = self._decoder.unused_data or self._raw.read(1 << 16)
                if not rest:
                    self._done = True
                    break
                self._decoder = self._lzma.LZMADecompressor(
                    self._lzma.FORMAT_XZ, memlimit=self._memlimit
                )
                self._first = False
                try:
                    data = self._decoder.decompress(rest, max_length=len(b))
                except self._lzma.LZMAError:
                    self._done = True  # not another stream: the end, as LZMAFile reads it
                    break
            else:
                chunk = b""
                if self._decoder.needs_input:
                    chunk = self._raw.read(1 << 16)
                    if not chunk:
                        raise EOFError("the xz stream is truncated")
                data = self._decoder.decompress(chunk, max_length=len(b))
            if data:
                b[: len(data)] = data
                return len(data)
        return 0


def detect(head: bytes) -> Compression:
    """Compression of a layer from its first bytes (pass at least 512 when available)."""
    if head.startswith(GZIP_MAGIC):
        return Compression.GZIP
    # A zstd stream may start with a skippable frame (magic 0x184D2A50..5F, little endian).
    if head.startswith(ZSTD_MAGIC) or (
        len(head) >= 4 and head[1:4] == b"\x2a\x4d\x18" and head[0] & 0xF0 == 0x50
    ):
        return Compression.ZSTD
    if head.startswith(XZ_MAGIC):
        raise UnsupportedMediaTypeError("xz", "layer (xz layers are not supported)")
    if head.startswith(BZIP2_MAGIC):
        raise UnsupportedMediaTypeError("bzip2", "layer (bzip2 layers are not supported)")
    if _looks_like_tar(head):
        return Compression.NONE
    raise UnsupportedMediaTypeError(
        "unknown", f"layer (neither gzip, zstd nor tar; starts with {head[:8].hex()})"
    )


class Inflater(Protocol):
    def feed(self, data: bytes) -> Iterator[bytes]:
        """Inflate ``data``; yield output pieces of at most the configured chunk size."""
        ...

    def finish(self) -> None:
        """Raise unless the compressed stream ended cleanly."""
        ...


class _Identity:
    def __init__(self, chunk: int) -> None:
        self._chunk = chunk

    def feed(self, data: bytes) -> Iterator[bytes]:
        if len(data) <= self._chunk:
            if data:
                yield data
            return
        view = memoryview(data)
        for i in range(0, len(data), self._chunk):
            yield bytes(view[i : i + self._chunk])

    def finish(self) -> None:
        pass


class _Gzip:
    """Multi-member gzip (``cat a.gz b.gz``). NUL padding after the last member is tolerated;
    anything else after it is refused (Go's multistream reader refuses it too)."""

    def __init__(self, chunk: int) -> None:
        self._chunk = chunk
        self._d = _zlib_mod.decompressobj(wbits=_GZIP_WBITS)
        self._started = False  # bytes of the current member were seen
        self._padding = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self._padding:
                if data.count(0) != len(data):
                    raise InvalidContentError("gzip layer has trailing garbage after its end")
                return
            if self._d.eof:
                if data.startswith(b"\x00"):
                    self._padding = True
                    continue
                self._d = _zlib_mod.decompressobj(wbits=_GZIP_WBITS)
            self._started = True
            try:
                out = self._d.decompress(data, self._chunk)
                while True:
                    if out:
                        yield out
                    if self._d.eof or not self._d.unconsumed_tail:
                        break
                    out = self._d.decompress(self._d.unconsumed_tail, self._chunk)
            except _ZLIB_ERROR as exc:
                raise InvalidContentError(f"corrupt gzip layer: {exc}") from exc
            data = self._d.unused_data if self._d.eof else b""

    def finish(self) -> None:
        if self._started and not self._d.eof:
            raise InvalidContentError("gzip layer is truncated (stream ended mid-member)")


class _Zstd:
    """Multi-frame zstd; skippable frames are handled by the decompressor."""

    def __init__(self, chunk: int) -> None:
        # backports.zstd (~1.3 ms to import) is imported where it is used: most commands never
        # meet a zstd layer.
        from backports import zstd

        self._chunk = chunk
        self._zstd = zstd
        self._d = zstd.ZstdDecompressor()
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self._d.eof:
                self._d = self._zstd.ZstdDecompressor()
            self._started = True
            try:
                out = self._d.decompress(data, self._chunk)
                while True:
                    if out:
                        yield out
                    if self._d.eof or self._d.needs_input:
                        break
                    out = self._d.decompress(b"", self._chunk)
            except self._zstd.ZstdError as exc:
                raise InvalidContentError(f"corrupt zstd layer: {exc}") from exc
            data = self._d.unused_data if self._d.eof else b""

    def finish(self) -> None:
        if self._started and not self._d.eof:
            raise InvalidContentError("zstd layer is truncated (stream ended mid-frame)")


def new_inflater(compression: Compression, *, chunk: int = 1 << 20) -> Inflater:
    """A bounded incremental decompressor for ``compression``."""
    if compression is Compression.GZIP:
        return _Gzip(chunk)
    if compression is Compression.ZSTD:
        return _Zstd(chunk)
    return _Identity(chunk)


class _DecompressingReader(io.RawIOBase):
    def __init__(self, src: IO[bytes], inflater: Inflater, head: bytes) -> None:
        self._src = src
        self._inflater = inflater
        self._pending: Iterator[bytes] = inflater.feed(head)
        self._buf = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            piece = next(self._pending, None)
            if piece is not None:
                self._buf = piece
                continue
            if self._eof:
                return 0
            raw = self._src.read(1 << 20)
            if not raw:
                self._eof = True
                self._inflater.finish()
            else:
                self._pending = self._inflater.feed(raw)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def open_decompressor(src: IO[bytes], c: Compression) -> IO[bytes]:
    """A reader of the uncompressed bytes of ``src`` (which must be compressed as ``c``)."""
    return io.BufferedReader(_DecompressingReader(src, new_inflater(c), b""), 1 << 20)


class _NonClosing(io.RawIOBase):
    def __init__(self, dst: IO[bytes]) -> None:
        self._dst = dst

    def writable(self) -> bool:
        return True

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._dst.write(b)
        return len(b)

    def flush(self) -> None:
        self._dst.flush()


def open_compressor(dst: IO[bytes], c: Compression, *, level: int | None = None) -> IO[bytes]:
    """A writer that compresses into ``dst``; closing it finishes the stream but leaves ``dst``
    open. gzip output is deterministic (mtime 0, no file name)."""
    if c is Compression.GZIP:
        try:  # imported here, as zstd: compressing is rare
            from isal import igzip as gzip_mod
        except ImportError:  # pragma: no cover - isal is a declared dependency
            import gzip as gzip_mod  # type: ignore[no-redef]
        lvl = DEFAULT_GZIP_LEVEL if level is None else level
        gz = gzip_mod.GzipFile(fileobj=dst, mode="wb", compresslevel=lvl, mtime=0)  # type: ignore[no-untyped-call]
        return cast(IO[bytes], gz)
    if c is Compression.ZSTD:
        from backports import zstd

        lvl = DEFAULT_ZSTD_LEVEL if level is None else level
        return zstd.ZstdFile(dst, mode="w", level=lvl)  # type: ignore[return-value]
    return _NonClosing(dst)  # type: ignore[return-value]
