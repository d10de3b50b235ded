from __future__ import annotations

import hashlib
import io
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lamina.digest import (
    EMPTY_TAR_DIFF_ID,
    Digest,
    HashingReader,
    VerifyingReader,
    chain_ids,
)
from lamina.errors import DigestMismatchError, InvalidDigestError, SizeMismatchError

HEX = "a" * 64


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "sha256:",
        f"sha256:{HEX[:-1]}",
        f"sha256:{HEX}0",
        f"sha256:{HEX.upper()}",
        f"SHA256:{HEX}",
        f"sha512:{'a' * 128}",
        "sha256:../../etc/passwd" + "a" * 40,
        f"sha256:{HEX}\n",
        f" sha256:{HEX}",
        f"sha256:{'a' * 63}/",
        f"sha256/{HEX}",
    ],
)
def test_invalid_digests_refused(bad: str) -> None:
    with pytest.raises(InvalidDigestError):
        Digest(bad)


@given(st.binary(max_size=256))
def test_of_matches_hashlib_and_round_trips(data: bytes) -> None:
    d = Digest.of(data)
    assert d == "sha256:" + hashlib.sha256(data).hexdigest()
    assert Digest(str(d)) == d
    assert Digest.from_hex(d.hex) == d
    assert d.short == d.hex[:12]
    assert "/" not in d.hex and len(d.hex) == 64


def test_empty_tar_diff_id() -> None:
    assert Digest.of(bytes(1024)) == EMPTY_TAR_DIFF_ID


def test_chain_ids_follow_the_oci_formula() -> None:
    a, b, c = (Digest.of(x) for x in (b"a", b"b", b"c"))
    ab = Digest.of(f"{a} {b}".encode())
    abc = Digest.of(f"{ab} {c}".encode())
    assert chain_ids([a, b, c]) == [a, ab, abc]
    assert chain_ids([]) == []


@given(st.binary(max_size=4096), st.integers(min_value=1, max_value=512))
def test_verifying_reader_accepts_exact_content(data: bytes, chunk: int) -> None:
    r = VerifyingReader(io.BytesIO(data), expected=Digest.of(data), size=len(data))
    out = b""
    while piece := r.read(chunk):
        out += piece
    assert out == data and r.verified


def test_verifying_reader_rejects_flipped_byte() -> None:
    data = b"hello world"
    r = VerifyingReader(io.BytesIO(b"hellO world"), expected=Digest.of(data), size=len(data))
    with pytest.raises(DigestMismatchError) as info:
        r.read()
    assert info.value.expected == Digest.of(data)


def test_verifying_reader_rejects_overlong_and_short() -> None:
    data = b"abc"
    with pytest.raises(SizeMismatchError):
        VerifyingReader(io.BytesIO(b"abcd"), expected=Digest.of(data), size=3).read()
    with pytest.raises(SizeMismatchError):
        VerifyingReader(io.BytesIO(b"ab"), expected=Digest.of(data), size=3).read()


def test_hashing_reader_counts_and_hashes() -> None:
    r = HashingReader(io.BytesIO(b"x" * 100))
    r.read(10)
    r.drain()
    assert r.size == 100 and r.digest() == Digest.of(b"x" * 100)


def test_small_known_sizes_hash_without_openssl_and_agree_with_it() -> None:
    """Inputs of known size are hashed by CPython's built-in sha256 until 1 MiB is spent,
    without loading libcrypto; the digests are OpenSSL's, and past the budget it takes over."""
    sizes = [0, 1, 55, 56, 64, 4096, 65_537, 600_000]
    script = (
        "import io, sys\n"
        "from lamina.digest import Digest, VerifyingReader\n"
        f"sizes = {sizes!r}\n"
        "out = [Digest.of(bytes(range(256)) * (n // 256) + b'x' * (n % 256)) for n in sizes]\n"
        "data = b'v' * 300_000\n"
        f"r = VerifyingReader(io.BytesIO(data), expected=Digest({Digest.of(b'v' * 300_000)!r}),"
        " size=len(data))\n"
        "r.drain()\n"
        "print(' '.join(out), r.verified, '_hashlib' in sys.modules)\n"
        "big = Digest.of(b'y' * 200_000)\n"  # past the budget: OpenSSL
        "print(big, '_hashlib' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    first, second = r.stdout.splitlines()
    *digests, verified, loaded = first.split()
    expected = [
        "sha256:" + hashlib.sha256(bytes(range(256)) * (n // 256) + b"x" * (n % 256)).hexdigest()
        for n in sizes
    ]
    assert digests == expected
    assert (verified, loaded) == ("True", "False")
    assert second.split() == [f"sha256:{hashlib.sha256(b'y' * 200_000).hexdigest()}", "True"]
