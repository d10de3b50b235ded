from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from lamina.errors import UsageError
from lamina.oci import reference as r

HEX = "a" * 64


@pytest.mark.parametrize(
    ("text", "full", "short"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("index.docker.io/me/app", "docker.io/me/app:latest", "me/app:latest"),
        ("me/app:v1.0-rc_1", "docker.io/me/app:v1.0-rc_1", "me/app:v1.0-rc_1"),
        ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
        ("localhost:5000/a/b:tag", "localhost:5000/a/b:tag", "localhost:5000/a/b:tag"),
        ("host:5000/a/b:tag", "host:5000/a/b:tag", "host:5000/a/b:tag"),
        ("quay.io/a/b-c__d.e", "quay.io/a/b-c__d.e:latest", "quay.io/a/b-c__d.e:latest"),
        ("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest"),
        (f"busybox@sha256:{HEX}", f"docker.io/library/busybox@sha256:{HEX}",
         f"busybox@sha256:{HEX}"),
        (f"busybox:1@sha256:{HEX}", f"docker.io/library/busybox:1@sha256:{HEX}",
         f"busybox:1@sha256:{HEX}"),
        ("a---b", "docker.io/library/a---b:latest", "a---b:latest"),
    ],
)  # fmt: skip
def test_normalize(text: str, full: str, short: str) -> None:
    assert r.normalize(text) == full
    assert r.familiar(full) == short
    assert r.normalize(full) == full  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "", "Busybox", "me/App", "a b", "busybox:", ":tag", "-a", "a-", "a..b", "a___b",
        "busybox:-tag", "busybox:" + "t" * 129, "a:b:c", "x@sha256:12", "x@md5:" + HEX,
        HEX, "/x", "x/", "x//y", "host:port/x", "a/" * 130 + "a",
    ],
)  # fmt: skip
def test_invalid(text: str) -> None:
    with pytest.raises(UsageError):
        r.parse(text)


def test_lowercase_message() -> None:
    with pytest.raises(UsageError, match="must be lowercase"):
        r.parse("me/App")


def test_uppercase_registry_is_allowed() -> None:
    assert r.normalize("Registry.Example.com/x") == "Registry.Example.com/x:latest"


def test_candidates() -> None:
    assert r.candidates("busybox") == [
        "docker.io/library/busybox:latest",
        "localhost/busybox:latest",
    ]
    assert r.candidates("me/app:1") == ["docker.io/me/app:1", "localhost/me/app:1"]
    assert r.candidates("library/x") == ["docker.io/library/x:latest", "localhost/library/x:latest"]
    assert r.candidates("localhost/x") == ["localhost/x:latest"]
    assert r.candidates("docker.io/busybox") == ["docker.io/library/busybox:latest"]
    assert r.is_short_name("busybox")
    assert not r.is_short_name("quay.io/x")


components = st.from_regex(r"[a-z0-9]{1,5}(?:(?:[._]|__|-+)[a-z0-9]{1,5}){0,2}", fullmatch=True)
domains = st.sampled_from(["", "docker.io/", "localhost/", "quay.io/", "reg.example:5000/"])
tags = st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True))
digests = st.one_of(st.none(), st.from_regex(r"[0-9a-f]{64}", fullmatch=True))


@given(domains, st.lists(components, min_size=1, max_size=3), tags, digests)
def test_round_trip(domain: str, path: list[str], tag: str | None, dig: str | None) -> None:
    # Docker reads a first component with a "." as a registry; that case is tested above.
    assume(domain or "." not in path[0])
    text = domain + "/".join(path)
    if tag is not None:
        text += f":{tag}"
    if dig is not None:
        text += f"@sha256:{dig}"
    ref = r.parse(text)
    assert r.parse(str(ref)) == ref
    assert ref.tag == tag
    assert (ref.digest.hex if ref.digest else None) == dig
    if "." not in path[0]:
        # Docker's familiar form is ambiguous when a docker.io path starts like a registry
        # ("docker.io/a.b/c" -> "a.b/c"); lamina keeps Docker's behaviour.
        assert r.parse(r.familiar(str(ref))) == ref
    assert r.normalize(text).startswith(ref.name)
