"""One pass over a layer blob in two threads: read -> tee -> hash blob -> inflate -> hash diff_id
-> queue, for :func:`lamina.archive.apply.apply_layer` to parse and extract from; in its spare
time the producer thread also hashes large file contents for the consumer."""

from __future__ import annotations

import contextlib
import io
import queue
import threading
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, Final

from lamina.archive.compression import HEAD_SIZE, Compression, detect, new_inflater
from lamina.digest import Hasher
from lamina.errors import (
    CompressionMismatchError,
    InvalidContentError,
    LimitExceededError,
    SizeMismatchError,
)

try:
    from isal import isal_zlib as _isal_zlib
except ImportError:  # pragma: no cover - isal is a declared dependency
    _isal_zlib = None  # type: ignore[assignment]

# isal's C gzip reader drops the GIL while it inflates; its Decompress objects do not, which
# serialised LayerPipe's producer with the extracting thread. Without it: Decompress objects.
_GzipReader: Final[Callable[..., Any] | None] = getattr(_isal_zlib, "_GzipReader", None)
_ISAL_ERROR: Final[type[Exception]] = getattr(_isal_zlib, "error", OSError)

if TYPE_CHECKING:
    from hashlib import _Hash

_DONE: Final = b""  # queue sentinel: the producer finished cleanly
# How long a producer with a full queue waits for a hash job before it tries the queue again.
# The queue holds several chunks of consumer work, so this latency never starves the consumer.
_POLL_SECONDS: Final = 0.002
# Hash jobs the producer lets wait while it keeps the queue filled (a slow source never fills
# it); past this it hashes first. A job's view keeps its whole chunk alive, so this bounds the
# memory jobs hold (a byte count would not: many small views can pin many chunks).
_MAX_JOBS_WAITING: Final = 32
_JOBS_WHEN_QUEUED: Final = 4  # chunks the consumer has in hand before the producer hashes


class LayerPipe:
    """One pass over a layer blob, split across two threads.

    The producer thread reads ``source``, writes the raw bytes to ``tee``, hashes them (the
    layer digest), detects the compression from the magic bytes, inflates, hashes the output
    (the diff_id) and queues it. The consumer calls :meth:`read`. hashlib and isal's C gzip
    reader release the GIL (isal's Decompress objects do not: gzip goes through the reader), so
    on two cores the producer's work overlaps the consumer's parsing and writing.
    The queue is bounded, so memory stays at a few chunks whatever the layer's size.

    Between large files the consumer is the slower side (parsing, policy and many small files'
    syscalls), and the producer mostly waits for queue space. So the consumer hands mid-size
    files' content hashes back with :meth:`hash_later` (when :meth:`ahead` says the producer has
    time to spare: not while it inflates gzip, say), and the producer runs them while the
    consumer has enough queued to work on, instead of sleeping; it hashes first only when more
    than ``_MAX_JOBS_WAITING`` wait (a slow source never fills the queue), which bounds the
    chunks the jobs' views keep alive. A third hashing thread was tried and lost: three busy threads
    on two cores slowed the consumer down more than it saved.

    Errors in the producer (corrupt stream, limit, size mismatch, a failing ``source`` or
    ``tee``) are raised by the consumer's next :meth:`read`, in stream order, or by
    :meth:`drain`.
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
        self._jobs: queue.SimpleQueue[tuple[_Hash, memoryview] | None] = queue.SimpleQueue()
        self._jobs_closed = False  # the consumer sent None: no more hash jobs
        self._jobs_in = 0  # counted by the consumer only
        self._jobs_done = 0  # counted by the producer only
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

    def ahead(self) -> bool:
        """Whether the producer is ahead of the consumer (enough output queued that it waits
        for space, not the consumer for data): the time to hand it work."""
        return self._queue.qsize() >= _JOBS_WHEN_QUEUED

    def hash_later(self, h: _Hash, view: memoryview) -> None:
        """``h.update(view)`` on the producer thread, after the updates handed over before it;
        all of them are done when :meth:`drain` returns."""
        self._jobs_in += 1
        self._jobs.put((h, view))

    @property
    def handed(self) -> int:
        """How many :meth:`hash_later` jobs the consumer handed over so far: a ticket for
        :meth:`hashed`."""
        return self._jobs_in

    def hashed(self, ticket: int) -> bool:
        """Whether the first ``ticket`` jobs are done (jobs run in the order handed over), so a
        hash whose last update was handed over before :attr:`handed` read ``ticket`` is final."""
        return self._jobs_done >= ticket

    def drain(self) -> None:
        """Read to the end (trailing bytes after the tar's end count in the diff_id), let the
        producer finish the hash jobs and wait for it; raises whatever the producer raised."""
        while self.read(1 << 20):
            pass
        self._jobs.put(None)
        self._thread.join()
        with contextlib.suppress(queue.Empty):  # what failed after the last output
            item = self._queue.get_nowait()
            if isinstance(item, BaseException):
                raise item

    def abort(self) -> None:
        """Stop the producer after a consumer-side error. Idempotent."""
        self._stop.set()
        self._jobs.put(None)
        while self._thread.is_alive():
            try:
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(timeout=0.05)

    def _put(self, item: bytes | BaseException, *, run_jobs: bool = True) -> None:
        """Queue ``item``. Meanwhile run hash jobs, one at a time, while the consumer has enough
        queued to work on (it waits for output, not for hashes: it needs those only at the
        end), or when too many bytes of them wait."""
        q = self._queue
        while True:
            if run_jobs and not self._jobs_closed:
                if (
                    q.qsize() >= _JOBS_WHEN_QUEUED
                    or self._jobs_in - self._jobs_done > _MAX_JOBS_WAITING
                ) and self._run_job(None):
                    continue
                try:
                    q.put_nowait(item)
                    return
                except queue.Full:
                    self._run_job(_POLL_SECONDS)
            else:
                try:
                    q.put(item, timeout=0.1)
                    return
                except queue.Full:
                    pass
            if self._stop.is_set():
                raise _Stopped

    def _run_job(self, wait: float | None) -> bool:
        """Run one hash job, waiting up to ``wait`` seconds for one; False if none ran."""
        try:
            job = self._jobs.get(timeout=wait) if wait else self._jobs.get_nowait()
        except queue.Empty:
            return False
        if job is None:
            self._jobs_closed = True
            return False
        job[0].update(job[1])
        self._jobs_done += 1
        return True

    def _finish_jobs(self) -> None:
        """After the last output: the consumer may still hand over jobs until it drains."""
        while not self._jobs_closed and not self._stop.is_set():
            self._run_job(0.1)

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
            self._finish_jobs()
        except _Stopped:
            return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            try:
                self._put(exc, run_jobs=False)
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
        except Exception as exc:
            if raw.error is not None:  # the source, the tee or a limit: not the gzip data
                raise raw.error from None
            if isinstance(exc, EOFError):
                raise InvalidContentError(
                    "gzip layer is truncated (stream ended mid-member) or has trailing garbage"
                ) from None
            # BadGzipFile (an OSError), isal's error for a bad deflate stream, OverflowError for
            # a gzip header larger than the reader's buffer.
            if isinstance(exc, (OSError, OverflowError, _ISAL_ERROR)):
                raise InvalidContentError(f"corrupt gzip layer: {exc}") from exc
            raise

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
