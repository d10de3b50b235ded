"""``--sysctl KEY=VALUE``, read as docker 20.10's CLI reads it (opts.ValidateSysctl: only the
sysctls a container's own namespaces hold -- IPC's ``kernel.msg*``, ``kernel.sem``,
``kernel.shm*``, ``fs.mqueue.*`` and the network's ``net.*``; its error ``sysctl 'V' is not
whitelisted``) into HostConfig.Sysctls. Whether the container has that namespace is runc's to
say at start, as under Docker ("sysctl "net.ipv4.ip_forward" not allowed in host network
namespace" with ``--network host``; "... is not allowed in the hosts ipc namespace" with
``--ipc host``), and so is a key the kernel does not have or a value it refuses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from lamina.errors import UsageError

# opts.ValidateSysctl's lists.
_NAMES: Final = frozenset(
    {
        *("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem"),
        *("kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"),
    }
)
_PREFIXES: Final = ("net.", "fs.mqueue.")


def check_sysctl(value: str) -> tuple[str, str]:
    """One ``--sysctl``: (key, value), the value what follows the first "=" (it may hold
    more); UsageError in the CLI's words for a key off its list or no "=" at all."""
    key, eq, rest = value.partition("=")
    if eq and (key in _NAMES or key.startswith(_PREFIXES)):
        return key, rest
    raise UsageError(
        f'invalid argument "{value}" for "--sysctl" flag: sysctl \'{value}\' is not whitelisted'
    )


def sysctls(values: Sequence[str]) -> dict[str, str]:
    """HostConfig.Sysctls: a later flag replacing an earlier one's key; sorted, as Docker
    prints a Go map."""
    return dict(sorted(dict(check_sysctl(v) for v in values).items()))
