"""``--pid``, ``--ipc`` and ``--uts`` at create, as docker 20.10 takes them: its CLI checks
``--pid`` and ``--uts`` (``--pid: invalid PID mode``), its daemon resolves the container a
mode names to its full id (``container:NAME`` -> ``container:<id>``; "No such container")
and refuses ``--uts host`` with a ``--hostname``; an IPC mode it does not know is refused
only by the start (:mod:`lamina.engine.container_namespaces`), as Docker's is.

HostConfig keeps Docker's values: ``PidMode`` and ``UTSMode`` "" unless given, ``IpcMode``
"private" (Docker 20.10's default IPC mode: a namespace and a /dev/shm of the container's
own, which no other container can join).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from lamina.errors import UsageError

DEFAULT_IPC_MODE: Final = "private"


def pid_mode(value: str, *, resolve: Callable[[str], str]) -> str:
    """``--pid``: "", ``host`` or ``container:NAME`` (the CLI's ``PidMode.Valid``); the
    daemon looks up whatever follows the first colon as a container (``resolve`` gives its
    id, or raises), and keeps ``container:<id>``."""
    parts = value.split(":")
    if parts[0] not in ("", "host") and not (
        parts[0] == "container" and len(parts) == 2 and parts[1]
    ):
        raise UsageError("--pid: invalid PID mode")
    kind, colon, ref = value.partition(":")
    if not colon:
        return value
    cid = resolve(ref)
    return f"container:{cid}" if kind == "container" else value


def ipc_mode(value: str, *, resolve: Callable[[str], str]) -> str:
    """``--ipc``, as the daemon keeps it: "" is ``private``; ``container:NAME`` is
    ``container:<id>`` (an empty NAME is left for the start to refuse); anything else as
    given, for the start to check."""
    if not value:
        return DEFAULT_IPC_MODE
    kind, colon, ref = value.partition(":")
    if kind == "container" and colon and ref:
        return f"container:{resolve(ref)}"
    return value


def uts_mode(value: str, *, hostname: str | None) -> str:
    """``--uts``: "" or ``host`` (the CLI's ``UTSMode.Valid`` looks at what precedes a colon
    only); a ``--hostname`` with the host's UTS namespace is refused, in the daemon's words."""
    if value.partition(":")[0] not in ("", "host"):
        raise UsageError("--uts: invalid UTS mode")
    if value == "host" and hostname:
        raise UsageError("conflicting options: hostname and the UTS mode")
    return value
