"""``--volumes-from`` as docker 20.10's daemon reads and resolves it (the words are the ones
it printed for ``docker create --volumes-from V busybox``)."""

from __future__ import annotations

from typing import Any

import pytest

from lamina.engine.volumes_from import inherit, parse, without
from lamina.errors import ContainerNotFoundError, UsageError


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("src", ("src", True)),
        ("src:", ("src", True)),
        ("src:rw", ("src", True)),
        ("src:ro", ("src", False)),
        ("src:z", ("src", True)),
        ("src:ro,z", ("src", False)),
        ("src:ro,Z,cached", ("src", False)),
    ],
)
def test_specs(spec: str, expected: tuple[str, bool]) -> None:
    assert parse(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "volumes-from specification cannot be an empty string"),
        ("src:rw,rprivate", "invalid mode: rw,rprivate"),  # no propagation
        ("src:nocopy", "invalid mode: nocopy"),  # no copy mode
        ("src:bogus", "invalid mode: bogus"),
        ("src:ro:rw", "invalid mode: ro:rw"),
        ("src:ro,ro", "invalid mode: ro,ro"),
        ("src:rw,Z,z", "invalid mode: rw,Z,z"),
    ],
)
def test_refused_specs(spec: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        parse(spec)
    assert str(err.value) == message


def _volume(name: str, dest: str, *, mode: str = "z", rw: bool = True) -> dict[str, Any]:
    return {
        "Type": "volume", "Name": name, "Source": f"/v/{name}/_data", "Destination": dest,
        "Driver": "local", "Mode": mode, "RW": rw, "Propagation": "",
    }  # fmt: skip


def _bind(source: str, dest: str, *, rw: bool = True) -> dict[str, Any]:
    return {
        "Type": "bind", "Source": source, "Destination": dest, "Mode": "ro" if not rw else "",
        "RW": rw, "Propagation": "rprivate",
    }  # fmt: skip


CONTAINERS: dict[str, dict[str, Any]] = {
    "src": {
        "HostConfig": {},
        "Mounts": [
            _volume("a", "/anon", mode=""),
            _volume("nv", "/named"),
            _bind("/h", "/b", rw=False),
        ],
        "NonRecursiveBinds": ["/b"],
    },
    "other": {"HostConfig": {}, "Mounts": [_volume("o", "/anon"), _bind("/h2", "/b")]},
    "tmp": {"HostConfig": {}, "Mounts": [{"Type": "tmpfs", "Source": "", "Destination": "/t"}]},
}


def _config(ref: str) -> dict[str, Any]:
    try:
        return CONTAINERS[ref]
    except KeyError:
        raise ContainerNotFoundError(f"no such container: {ref}") from None


def _inherit(*specs: str) -> Any:
    return inherit(
        specs, config_of=_config, non_recursive_of=lambda c: c.get("NonRecursiveBinds") or ()
    )


def test_mounts_as_docker_copies_them() -> None:
    # docker inspect of `create --volumes-from src`: the source's Mounts, Mode "", RW the
    # source's; with :ro every one read-only.
    got = _inherit("src")
    assert got.mounts == [
        {**_volume("a", "/anon"), "Mode": ""},
        {**_volume("nv", "/named"), "Mode": ""},
        {**_bind("/h", "/b", rw=False), "Mode": ""},
    ]
    assert got.non_recursive == ["/b"]
    assert [m["RW"] for m in _inherit("src:ro").mounts] == [False, False, False]


def test_a_later_source_wins_and_own_mounts_win_over_all() -> None:
    got = _inherit("src", "other")
    assert {m["Destination"]: m.get("Name", m["Source"]) for m in got.mounts} == {
        "/named": "nv", "/anon": "o", "/b": "/h2",
    }  # fmt: skip
    assert got.non_recursive == []  # other's bind at /b is recursive
    assert [m["Destination"] for m in without(_inherit("src"), ["/b"]).mounts] == [
        "/anon",
        "/named",
    ]
    assert without(_inherit("src"), ["/b"]).non_recursive == []


def test_refusals() -> None:
    with pytest.raises(ContainerNotFoundError):
        _inherit("nosuch")
    # docker 20.10 refuses a source with a --mount type=tmpfs: "get: no such volume".
    with pytest.raises(UsageError, match="its tmpfs mount at /t is no volume"):
        _inherit("tmp")
