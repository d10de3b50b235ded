"""ADD's archive test, as docker 20.10's ``isArchivePath``: the bytes, decompressed when they
start with a compression magic, must begin with a tar header; anything else is copied."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from lamina.build.addsource import is_archive


def _tar(fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        info = tarfile.TarInfo("a")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    return buf.getvalue()


def _v7(tar: bytes) -> bytes:
    """The archive with its first header's ustar magic blanked and checksum redone (a v7
    header, which Go's archive/tar reads too)."""
    head = bytearray(tar[:512])
    head[257:265] = bytes(8)
    head[148:156] = b" " * 8
    head[148:156] = b"%06o\0 " % sum(head)
    return bytes(head) + tar[512:]


_COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "plain": lambda b: b,
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
}


def _check(tmp: Path, data: bytes) -> bool:
    path = tmp / "src"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        return is_archive(fd)
    finally:
        os.close(fd)


@pytest.mark.parametrize("kind", sorted(_COMPRESS))
def test_a_tar_in_any_compression_is_an_archive(tmp_path: Path, kind: str) -> None:
    assert _check(tmp_path, _COMPRESS[kind](_tar()))
    assert _check(tmp_path, _COMPRESS[kind](_tar(tarfile.GNU_FORMAT)))
    assert _check(tmp_path, _COMPRESS[kind](_v7(_tar(tarfile.USTAR_FORMAT))))


@pytest.mark.parametrize("kind", sorted(_COMPRESS))
def test_anything_else_is_copied_as_docker_does(tmp_path: Path, kind: str) -> None:
    # docker 20.10: `ADD single.gz /single/` (gzip of a text file) copies single.gz as it is;
    # `ADD zeros.tar /z/` (1024 zero bytes: only an end-of-archive) copies it too.
    assert not _check(tmp_path, _COMPRESS[kind](b"just some text\n" * 100))
    assert not _check(tmp_path, _COMPRESS[kind](bytes(1024)))
    assert not _check(tmp_path, _COMPRESS[kind](b""))


def test_a_broken_stream_is_copied(tmp_path: Path) -> None:
    assert not _check(tmp_path, gzip.compress(_tar())[:12])  # truncated inside the deflate
    assert not _check(tmp_path, b"\x1f\x8b" + os.urandom(600))  # gzip magic, then garbage
    corrupt = bytearray(_tar())
    corrupt[0] ^= 0xFF  # the name changed under the checksum
    assert not _check(tmp_path, bytes(corrupt))
