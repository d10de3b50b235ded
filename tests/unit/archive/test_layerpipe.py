"""LayerPipe's hash jobs: done in order by the producer, complete when drain returns, and a
failing one is raised rather than lost."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from lamina.archive.layerpipe import LayerPipe


def _pipe(data: bytes) -> LayerPipe:
    pipe = LayerPipe(
        io.BytesIO(data),
        declared=None,
        tee=None,
        max_uncompressed_bytes=1 << 30,
        expected_blob_size=None,
        chunk=4096,
    )
    pipe.start()
    return pipe


@pytest.mark.timeout(30)
def test_jobs_run_in_order_and_finish_by_drain() -> None:
    data = os.urandom(64 << 10)
    pipe = _pipe(bytes(1024) + data)  # a plain stream: the pipe does not parse it
    h = hashlib.sha256()
    view = memoryview(data)
    for i in range(0, len(data), 1000):  # many small updates of one hash
        pipe.hash_later(h, view[i : i + 1000])
        pipe.read(1000)
    pipe.drain()
    assert h.hexdigest() == hashlib.sha256(data).hexdigest()


class _Broken:
    def update(self, data: memoryview) -> None:
        raise MemoryError("no room to hash")


@pytest.mark.timeout(30)
def test_a_failing_job_is_raised_by_drain() -> None:
    pipe = _pipe(bytes(1024))
    pipe.hash_later(_Broken(), memoryview(b"x" * 4096))  # type: ignore[arg-type]
    with pytest.raises(MemoryError):
        pipe.drain()


@pytest.mark.timeout(30)
def test_abort_with_jobs_pending() -> None:
    pipe = _pipe(os.urandom(1 << 20))
    h = hashlib.sha256()
    for _ in range(100):
        pipe.hash_later(h, memoryview(bytes(1 << 16)))
    pipe.abort()
    pipe.abort()  # idempotent


class _Counting:
    def __init__(self) -> None:
        self.updates = 0

    def update(self, data: memoryview) -> None:
        self.updates += 1


@pytest.mark.timeout(30)
def test_waiting_jobs_are_bounded() -> None:
    # Each job's view keeps a whole chunk alive: past a few dozen waiting jobs the producer
    # hashes before it makes more output, whether or not its queue is full.
    pipe = _pipe(bytes(64 * 4096))
    counter = _Counting()
    for _ in range(100):
        pipe.hash_later(counter, memoryview(b"x"))  # type: ignore[arg-type]
    for _ in range(12):  # the queue holds 8 chunks: these reads need new output
        pipe.read(4096)
    assert counter.updates >= 100 - 32
    pipe.drain()
    assert counter.updates == 100
