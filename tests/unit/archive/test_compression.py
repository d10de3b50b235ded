from __future__ import annotations

import bz2
import gzip
import io
import lzma

import pytest
from layer_tars import LayerTar, gz, zst

from lamina.archive.compression import (
    Compression,
    XzReader,
    detect,
    new_inflater,
    open_compressor,
    open_decompressor,
)
from lamina.archive.layerpipe import LayerPipe
from lamina.errors import (
    CompressionMismatchError,
    InvalidContentError,
    LimitExceededError,
    SizeMismatchError,
    UnsupportedMediaTypeError,
)

TAR = LayerTar().file("a", b"x" * 5000).bytes()


@pytest.mark.parametrize(
    ("media_type", "expected"),
    [
        ("application/vnd.oci.image.layer.v1.tar", Compression.NONE),
        ("application/vnd.oci.image.layer.v1.tar+gzip", Compression.GZIP),
        ("application/vnd.oci.image.layer.v1.tar+zstd", Compression.ZSTD),
        ("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Compression.GZIP),
        ("application/vnd.docker.image.rootfs.diff.tar.gzip", Compression.GZIP),
        ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", Compression.GZIP),
    ],
)
def test_from_media_type(media_type: str, expected: Compression) -> None:
    assert Compression.from_media_type(media_type) is expected


def test_from_media_type_unknown() -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        Compression.from_media_type("application/vnd.oci.image.layer.v1.tar+xz")


def test_detect() -> None:
    assert detect(gz(TAR)[:512]) is Compression.GZIP
    assert detect(zst(TAR)[:512]) is Compression.ZSTD
    assert detect(TAR[:512]) is Compression.NONE
    assert detect(bytes(1024)) is Compression.NONE


@pytest.mark.parametrize("blob", [lzma.compress(TAR), bz2.compress(TAR), b"hello world" * 100])
def test_detect_refuses_other_formats(blob: bytes) -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        detect(blob[:512])


@pytest.mark.parametrize("c", list(Compression))
def test_compress_round_trip(c: Compression) -> None:
    out = io.BytesIO()
    with open_compressor(out, c) as w:
        w.write(TAR)
    assert not out.closed
    blob = out.getvalue()
    assert detect(blob[:512]) is c
    assert open_decompressor(io.BytesIO(blob), c).read() == TAR


def test_gzip_output_is_deterministic() -> None:
    def once() -> bytes:
        out = io.BytesIO()
        with open_compressor(out, Compression.GZIP) as w:
            w.write(TAR)
        return out.getvalue()

    assert once() == once()
    assert gzip.decompress(once()) == TAR


def test_multi_member_gzip_and_nul_padding() -> None:
    blob = gzip.compress(b"abc") + gzip.compress(b"def") + bytes(7)
    assert open_decompressor(io.BytesIO(blob), Compression.GZIP).read() == b"abcdef"


def test_gzip_trailing_garbage_refused() -> None:
    with pytest.raises(InvalidContentError):
        open_decompressor(io.BytesIO(gzip.compress(b"abc") + b"\x00junk"), Compression.GZIP).read()


@pytest.mark.parametrize("c", [Compression.GZIP, Compression.ZSTD])
def test_truncated_stream_refused(c: Compression) -> None:
    blob = gz(TAR) if c is Compression.GZIP else zst(TAR)
    with pytest.raises(InvalidContentError, match="truncated"):
        open_decompressor(io.BytesIO(blob[: len(blob) // 2]), c).read()


def test_inflater_output_is_bounded() -> None:
    bomb = gzip.compress(bytes(64 << 20))
    pieces = new_inflater(Compression.GZIP, chunk=1 << 16).feed(bomb)
    assert max(len(next(pieces)) for _ in range(100)) <= 1 << 16


def _pipe(blob: bytes, **kw: object) -> LayerPipe:
    args: dict[str, object] = {
        "declared": None,
        "tee": None,
        "max_uncompressed_bytes": 1 << 40,
        "expected_blob_size": None,
    }
    args.update(kw)
    p = LayerPipe(io.BytesIO(blob), **args)  # type: ignore[arg-type]
    p.start()
    return p


def test_pipe_tees_and_hashes() -> None:
    import hashlib

    blob = gz(TAR) + b"\x00" * 3
    tee = io.BytesIO()
    p = _pipe(blob, tee=tee)
    out = b"".join(iter(lambda: p.read(1000), b""))
    p.drain()
    assert out == TAR
    assert tee.getvalue() == blob
    assert p.blob.digest().hex == hashlib.sha256(blob).hexdigest()
    assert p.diff.digest().hex == hashlib.sha256(TAR).hexdigest()
    assert p.compression is Compression.GZIP


def test_pipe_declared_mismatch() -> None:
    p = _pipe(gz(TAR), declared=Compression.ZSTD)
    with pytest.raises(CompressionMismatchError) as info:
        p.read()
    assert (info.value.declared, info.value.detected) == ("zstd", "gzip")
    p.abort()


def test_pipe_bomb_stops_at_limit() -> None:
    p = _pipe(gzip.compress(bytes(64 << 20)), max_uncompressed_bytes=4 << 20)
    with pytest.raises(LimitExceededError):
        p.drain()


def test_pipe_abort_unblocks_producer() -> None:
    p = _pipe(gz(bytes(32 << 20)))
    p.read(10)
    p.abort()  # must return although the producer is blocked on a full queue


def test_pipe_gzip_multi_member_and_errors() -> None:
    two = gzip.compress(TAR[:3000]) + gzip.compress(TAR[3000:])
    p = _pipe(two)
    assert b"".join(iter(lambda: p.read(1 << 20), b"")) == TAR
    p.drain()
    for blob, match in (
        (gz(TAR)[:-5], "truncated"),
        (gz(TAR) + b"\x00junk", "gzip"),
        (gz(TAR) + b"not gzip at all, certainly", "gzip"),
        (gz(TAR)[:-8] + b"\x00\x00\x00\x00" + gz(TAR)[-4:], "gzip"),  # bad CRC
        (gz(TAR)[:20] + bytes(b ^ 0x55 for b in gz(TAR)[20:200]) + gz(TAR)[200:], "gzip"),
        (b"\x1f\x8b\x08\x08\x00\x00\x00\x00\x00\xff" + b"n" * (3 << 20), "gzip"),  # huge FNAME
    ):
        p = _pipe(blob)
        with pytest.raises(InvalidContentError, match=match):
            p.drain()


class _FailingSource(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, n: int = -1) -> bytes:
        if not self._data:
            raise OSError("disk on fire")
        out, self._data = self._data[:4096], b""
        return out


def test_pipe_source_error_is_not_a_gzip_error() -> None:
    p = LayerPipe(
        _FailingSource(gz(bytes(1 << 20))),  # type: ignore[arg-type]
        declared=None,
        tee=None,
        max_uncompressed_bytes=1 << 40,
        expected_blob_size=None,
    )
    p.start()
    with pytest.raises(OSError, match="disk on fire"):
        p.drain()


def test_pipe_blob_size_limit_inside_gzip_reader() -> None:
    blob = gz(bytes(4 << 20))
    p = _pipe(blob, expected_blob_size=len(blob) - 1)
    with pytest.raises(SizeMismatchError):
        p.drain()


def test_pipe_plain_tar_hashes_once_for_both_digests() -> None:
    import hashlib

    blob = TAR + bytes(100)  # trailing bytes count in both digests
    tee = io.BytesIO()
    p = _pipe(blob, tee=tee)
    assert b"".join(iter(lambda: p.read(777), b"")) == blob
    p.drain()
    assert p.compression is Compression.NONE and tee.getvalue() == blob
    assert p.blob.digest().hex == p.diff.digest().hex == hashlib.sha256(blob).hexdigest()
    assert p.blob.size == p.diff.size == len(blob)
    p = _pipe(LayerTar().file("big", bytes(4 << 20)).bytes(), max_uncompressed_bytes=1 << 20)
    with pytest.raises(LimitExceededError):
        p.drain()


def _xz_asking_for(data: bytes, props: int) -> bytes:
    """An xz stream of ``data`` whose block header claims LZMA2 dictionary ``props`` (36 is
    1 GiB): the header byte patched and its CRC32 made anew, as a hostile file would be."""
    import struct
    import zlib

    xz = bytearray(lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32))
    start = 12  # after the stream header
    size = (xz[start] + 1) * 4
    header = xz[start : start + size]
    flags, at = header[1], 2
    for present in (0x40, 0x80):  # compressed / uncompressed size fields: skip their varints
        if flags & present:
            while header[at] & 0x80:
                at += 1
            at += 1
    assert header[at : at + 2] == b"\x21\x01"  # LZMA2, one property byte
    header[at + 2] = props
    header[-4:] = struct.pack("<I", zlib.crc32(bytes(header[:-4])))
    xz[start : start + size] = header
    return bytes(xz)


def test_xz_reader_bounds_the_decoders_memory() -> None:
    # Multiple streams and padding read as LZMAFile reads them.
    text = b"first stream\n" * 1000
    data = lzma.compress(text) + b"\0" * 8 + lzma.compress(b"second\n") + b"\0" * 4
    assert io.BufferedReader(XzReader(io.BytesIO(data))).read() == lzma.decompress(data)
    # A stream whose header asks for a 1 GiB dictionary: the stdlib's unbounded decoder reads
    # it (holding as much of the 1 GiB as the output fills), the bounded reader refuses it.
    hostile = _xz_asking_for(b"x" * 100, 36)
    assert lzma.decompress(hostile) == b"x" * 100
    with pytest.raises(lzma.LZMAError, match="Memory usage limit"):
        XzReader(io.BytesIO(hostile)).read()
    with pytest.raises(EOFError, match="truncated"):
        io.BufferedReader(XzReader(io.BytesIO(lzma.compress(text)[:-20]))).read()
