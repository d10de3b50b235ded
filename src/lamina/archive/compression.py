"""Layer compression: detect it from the bytes, inflate and deflate in-process.

gzip goes through ``isal`` (about 2.5x zlib's inflate speed; stdlib ``zlib`` is the fallback),
zstd through ``backports.zstd`` (Python 3.14's ``compression.zstd``). No decompressor is ever
executed as a process: running ``xz``/``unpigz`` found on some PATH is how CVE-2026-41567 happened.

The format is decided by magic bytes, not by the media type a manifest claims; a claim that
disagrees with the bytes is refused (:class:`~lamina.errors.CompressionMismatchError`) rather
than silently trusted either way. xz and bzip2 are recognised only to be refused clearly.

Inflation is bounded: :class:`Inflater` never returns more than ``chunk`` bytes per step, so a
decompression bomb costs at most one chunk of memory before the caller's limit stops it.
"""

from __future__ import annotations

import enum
import io
import queue
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any, Final, Protocol, cast

from lamina.digest import Hasher
from lamina.errors import (
    CompressionMismatchError,
    InvalidContentError,
    LimitExceededError,
    SizeMismatchError,
    UnsupportedMediaTypeError,
)

try:
    from isal import igzip as _gzip_mod
    from isal import isal_zlib as _zlib_mod
except ImportError:  # pragma: no cover - isal is a declared dependency
    import gzip as _gzip_mod  # type: ignore[no-redef]
    import zlib as _zlib_mod  # type: ignore[no-redef]

from backports import zstd as _zstd

# isal's C gzip reader drops the GIL while it inflates; its Decompress objects do not, which
# serialised LayerPipe's producer with the extracting thread. Without it: Decompress objects.
_GzipReader: Final[Callable[..., Any] | None] = getattr(_zlib_mod, "_GzipReader", None)

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
    block = head[:512]
    if block.count(0) == 512:  # an empty archive starts with its end-of-archive block
        return True
    try:
        stored = int(block[148:156].split(b"\x00", 1)[0].strip() or b"-1", 8)
    except ValueError:
        return False
    unsigned = sum(block[:148]) + 8 * 0x20 + sum(block[156:])
    signed = unsigned - 2 * sum(b for b in block[:148] + block[156:] if b > 127)
    return stored in (unsigned, signed)


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
        self._chunk = chunk
        self._d = _zstd.ZstdDecompressor()
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self._d.eof:
                self._d = _zstd.ZstdDecompressor()
            self._started = True
            try:
                out = self._d.decompress(data, self._chunk)
                while True:
                    if out:
                        yield out
                    if self._d.eof or self._d.needs_input:
                        break
                    out = self._d.decompress(b"", self._chunk)
            except _zstd.ZstdError as exc:
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
        lvl = DEFAULT_GZIP_LEVEL if level is None else level
        gz = _gzip_mod.GzipFile(fileobj=dst, mode="wb", compresslevel=lvl, mtime=0)  # type: ignore[no-untyped-call]
        return cast(IO[bytes], gz)
    if c is Compression.ZSTD:
        lvl = DEFAULT_ZSTD_LEVEL if level is None else level
        return _zstd.ZstdFile(dst, mode="w", level=lvl)  # type: ignore[return-value]
    return _NonClosing(dst)  # type: ignore[return-value]


_DONE: Final = b""  # queue sentinel: the producer finished cleanly


class LayerPipe:
    """One pass over a layer blob, split across two threads.

    The producer thread reads ``source``, writes the raw bytes to ``tee``, hashes them (the
    layer digest), detects the compression from the magic bytes, inflates, hashes the output
    (the diff_id) and queues it. The consumer calls :meth:`read`. hashlib and isal's C gzip
    reader release the GIL (isal's Decompress objects do not: gzip goes through the reader), so
    on two cores the producer's work overlaps the consumer's parsing and writing.
    The queue is bounded, so memory stays at a few chunks whatever the layer's size.

    Errors in the producer (corrupt stream, limit, size mismatch, a failing ``source`` or
    ``tee``) are raised by the consumer's next :meth:`read`, in stream order.
    """

    def __init__(
        self,
        source: IO[bytes],
        *,
        declared: Compression | None,
        tee: IO[bytes] | None,
        max_uncompressed_bytes: int,
        expected_blob_size: int | None,
        chunk: int = 1 << 20,
    ) -> None:
        self._source = source
        self._declared = declared
        self._tee = tee
        self._max = max_uncompressed_bytes
        self._expected_size = expected_blob_size
        self._chunk = chunk
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=8)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="lamina-layer-read", daemon=True)
        self._buf = b""
        self._pos = 0
        self._done = False
        self.compression = Compression.NONE  # set by the producer before the first output
        self.blob = Hasher()
        self.diff = Hasher()

    def start(self) -> None:
        self._thread.start()

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` uncompressed bytes (fewer at chunk boundaries); ``b""`` at the end."""
        if self._pos >= len(self._buf):
            if self._done:
                return b""
            item = self._queue.get()
            if isinstance(item, BaseException):
                self._done = True
                raise item
            if not item:  # _DONE
                self._done = True
                return b""
            self._buf, self._pos = item, 0
        if self._pos == 0 and (n < 0 or n >= len(self._buf)):
            self._pos = len(self._buf)
            return self._buf
        end = len(self._buf) if n < 0 else self._pos + n
        out = self._buf[self._pos : end]
        self._pos += len(out)
        return out

    def drain(self) -> None:
        """Read to the end (trailing bytes after the tar's end count in the diff_id) and wait
        for the producer; raises whatever the producer raised."""
        while self.read(1 << 20):
            pass
        self._thread.join()

    def abort(self) -> None:
        """Stop the producer after a consumer-side error. Idempotent."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(timeout=0.05)

    def _put(self, item: bytes | BaseException) -> None:
        while True:
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                if self._stop.is_set():
                    raise _Stopped from None

    def _produce(self) -> None:
        try:
            head = self._read_head()
            detected = detect(head)
            if self._declared is not None and self._declared is not detected:
                raise CompressionMismatchError(
                    declared=self._declared.value, detected=detected.value
                )
            self.compression = detected
            if detected is Compression.GZIP and _GzipReader is not None:
                self._produce_gzip(head)
            elif detected is Compression.NONE:
                self._produce_plain(head)
            else:
                inflater = new_inflater(detected, chunk=self._chunk)
                data = head
                while data:
                    self._consume(data)
                    for out in inflater.feed(data):
                        self._emit(out)
                    data = self._source.read(self._chunk)
                inflater.finish()
            self._put(_DONE)
        except _Stopped:
            return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            try:
                self._put(exc)
            except _Stopped:
                return

    def _produce_plain(self, head: bytes) -> None:
        # An uncompressed layer's diff_id is its blob digest: hash the bytes once, not twice.
        self.diff = self.blob
        data = head
        while data:
            self._consume(data)
            if self.blob.size > self._max:
                raise LimitExceededError(
                    limit_name="max_uncompressed_bytes", limit=self._max, what="layer"
                )
            self._put(data)
            data = self._source.read(self._chunk)

    def _produce_gzip(self, head: bytes) -> None:
        assert _GzipReader is not None
        raw = _RawFeed(self, head)
        reader = _GzipReader(raw, self._chunk)
        try:
            while out := reader.read(self._chunk):
                self._emit(out)
        except (EOFError, OSError) as exc:
            if raw.error is not None:  # the source, the tee or a limit: not the gzip data
                raise raw.error from None
            if isinstance(exc, EOFError):
                raise InvalidContentError(
                    "gzip layer is truncated (stream ended mid-member) or has trailing garbage"
                ) from None
            raise InvalidContentError(f"corrupt gzip layer: {exc}") from exc

    def _read_head(self) -> bytes:
        head = b""
        while len(head) < HEAD_SIZE:
            data = self._source.read(self._chunk)
            if not data:
                break
            head += data
        return head

    def _consume(self, raw: bytes) -> None:
        """Account for compressed bytes read from the source: stop check, hash, size, tee."""
        if self._stop.is_set():
            raise _Stopped
        self.blob.update(raw)
        if self._expected_size is not None and self.blob.size > self._expected_size:
            raise SizeMismatchError(
                expected=self._expected_size, actual=self.blob.size, what="layer blob"
            )
        if self._tee is not None:
            self._tee.write(raw)

    def _emit(self, out: bytes) -> None:
        self.diff.update(out)
        if self.diff.size > self._max:
            raise LimitExceededError(
                limit_name="max_uncompressed_bytes", limit=self._max, what="layer"
            )
        self._put(out)


class _RawFeed(io.RawIOBase):
    """What isal's C gzip reader pulls compressed bytes from: the head already read, then the
    source, each piece accounted for (hash, size, tee) by the pipe. An exception raised here is
    kept so the pipe can tell it from a gzip error."""

    def __init__(self, pipe: LayerPipe, head: bytes) -> None:
        self._pipe = pipe
        self._head: bytes | None = head
        self._data = b""
        self._off = 0
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def _next(self) -> bytes:
        if self._head is not None:
            data, self._head = self._head, None
        else:
            data = self._pipe._source.read(self._pipe._chunk)
        if data:
            self._pipe._consume(data)
        return data

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            if self._off >= len(self._data):
                self._data, self._off = self._next(), 0
                if not self._data:
                    return 0
            n = min(len(b), len(self._data) - self._off)
            memoryview(b).cast("B")[:n] = memoryview(self._data)[self._off : self._off + n]
            self._off += n
            return n
        except BaseException as exc:
            self.error = exc
            raise


class _Stopped(Exception):
    """The consumer gave up; the producer just ends."""
