"""``--pid``, ``--ipc`` and ``--uts`` as docker 20.10 takes them at create and checks them at
start; the words are the ones it printed (``docker create --pid V busybox``, then
``docker start``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lamina.engine.container_namespaces import Donor, run_fields, shm_path
from lamina.engine.namespace_args import ipc_mode, pid_mode, uts_mode
from lamina.errors import ConflictError, ContainerNotFoundError, UsageError

IDS = {"donor": "d" * 64, "stopped": "5" * 64}


def _resolve(ref: str) -> str:
    try:
        return IDS[ref]
    except KeyError:
        raise ContainerNotFoundError(f"no such container: {ref}") from None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ""),
        ("host", "host"),
        ("container:donor", "container:" + "d" * 64),
        ("host:donor", "host:donor"),  # looked up, kept as given (a PID namespace of its own)
    ],
)
def test_pid_modes(value: str, expected: str) -> None:
    assert pid_mode(value, resolve=_resolve) == expected


def test_pid_mode_refusals() -> None:
    for value in ("bogus", "private", "container:", "container:donor:x", "Host"):
        with pytest.raises(UsageError, match=r"^--pid: invalid PID mode$"):
            pid_mode(value, resolve=_resolve)
    for value in ("container:nosuch", "host:nosuch"):
        with pytest.raises(ContainerNotFoundError):
            pid_mode(value, resolve=_resolve)


def test_ipc_modes() -> None:
    # docker inspect: "" -> "private"; container:NAME -> container:<id>; anything else kept
    # as given for the start to refuse ("Invalid IPC mode: bogus").
    assert ipc_mode("", resolve=_resolve) == "private"
    assert ipc_mode("container:donor", resolve=_resolve) == "container:" + "d" * 64
    for value in ("none", "private", "shareable", "host", "bogus", "shareable:x", "container:"):
        assert ipc_mode(value, resolve=_resolve) == value
    with pytest.raises(ContainerNotFoundError):
        ipc_mode("container:nosuch", resolve=_resolve)


def test_uts_modes() -> None:
    assert uts_mode("host", hostname=None) == "host"
    assert uts_mode("host:x", hostname="h") == "host:x"  # valid, and no host namespace
    assert uts_mode("", hostname="h") == ""
    for value in ("bogus", "private", "container:donor"):
        with pytest.raises(UsageError, match=r"^--uts: invalid UTS mode$"):
            uts_mode(value, hostname=None)
    with pytest.raises(UsageError, match=r"^conflicting options: hostname and the UTS mode$"):
        uts_mode("host", hostname="foo")


def _stored(**host_config: Any) -> dict[str, Any]:
    return {"HostConfig": {"ShmSize": 1 << 20, **host_config}, "Mounts": []}


def test_start_fields(tmp_path: Path) -> None:
    donors = {
        "d" * 64: Donor("d" * 64, 42, {"IpcMode": "host"}, tmp_path / "d"),
        "p" * 64: Donor("p" * 64, 7, {"IpcMode": "private"}, tmp_path / "p"),
        "5" * 64: Donor("5" * 64, None, {"IpcMode": "host"}, tmp_path / "s"),
    }

    def lookup(ref: str) -> Donor:
        try:
            return donors[ref]
        except KeyError:
            raise ContainerNotFoundError(f"no such container: {ref}") from None

    def fields(**hc: Any) -> dict[str, Any]:
        return run_fields(_stored(**hc), bundle=tmp_path, lookup=lookup)

    assert fields(IpcMode="private") == {}
    assert fields(IpcMode="none") == {"no_shm": True}
    assert fields(IpcMode="host", PidMode="host", UTSMode="host") == {
        "namespaces": {"ipc": "", "pid": "", "uts": ""},
        "shm": Path("/dev/shm"),
    }
    assert fields(UTSMode="host:x") == {}
    # Another's, through its init: a donor that shares the host's /dev/shm can be joined.
    assert fields(PidMode="container:" + "d" * 64, IpcMode="container:" + "d" * 64) == {
        "namespaces": {"ipc": "/proc/42/ns/ipc", "pid": "/proc/42/ns/pid"},
        "shm": Path("/dev/shm"),
    }
    # docker 20.10's refusals, at start
    d, p, gone = "5" * 64, "p" * 64, "9" * 64
    join_ipc = "can't join IPC of container"
    for hc, error, message in (
        ({"IpcMode": "bogus"}, UsageError, "Invalid IPC mode: bogus"),
        ({"IpcMode": "container:"}, UsageError, f'{join_ipc} : invalid name or ID supplied: ""'),
        (
            {"IpcMode": f"container:{d}"},
            ConflictError,
            f"{join_ipc} {d}: container {d} is not running",
        ),
        (
            {"IpcMode": f"container:{p}"},
            ConflictError,
            f"{join_ipc} {p}: non-shareable IPC (hint: use IpcMode:shareable for the donor "
            "container)",
        ),
        ({"PidMode": f"container:{d}"}, ConflictError, f"container {d} is not running"),
        (
            {"PidMode": f"container:{gone}"},
            ConflictError,
            f"cannot join PID of a non running container: {gone}: no such container: {gone}",
        ),
    ):
        with pytest.raises(error) as err:
            fields(**hc)
        assert str(err.value) == message
    # A shareable donor shares its /dev/shm only while it is mounted (its run).
    shareable = Donor("s" * 64, 9, {"IpcMode": "shareable"}, tmp_path / "gone")
    assert shm_path(shareable, lookup) is None
