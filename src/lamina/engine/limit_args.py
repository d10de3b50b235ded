"""``--ulimit``, ``--shm-size`` and ``--group-add``, read as docker 20.10's CLI reads them
(go-units ParseUlimit and RAMInBytes; its errors prefixed ``invalid argument "V" for "--F"
flag:``), and the host-side check a ulimit needs before runc is asked for it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from lamina.engine.container_config import DEFAULT_SHM_SIZE
from lamina.errors import UsageError

# go-units' ulimitNameMapping: the names --ulimit takes (lower case only).
ULIMIT_NAMES: Final = (
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
)
_INT: Final = re.compile(r"^[+-]?\d+$")
_INT64: Final = 1 << 63


def _flag_error(value: str, flag: str, reason: str) -> UsageError:
    return UsageError(f'invalid argument "{value}" for "{flag}" flag: {reason}')


def _parse_int(text: str) -> int:
    """Go's ``strconv.ParseInt(text, 10, 64)``; ValueError in its words."""
    if not _INT.match(text):
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
    value = int(text)
    if not -_INT64 <= value < _INT64:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": value out of range')
    return value


def parse_ulimit(value: str) -> dict[str, Any]:
    """``--ulimit NAME=SOFT[:HARD]`` as HostConfig.Ulimits holds it (-1: unlimited)."""
    try:
        return _parse_ulimit(value)
    except ValueError as exc:
        raise _flag_error(value, "--ulimit", str(exc)) from None


def _parse_ulimit(value: str) -> dict[str, Any]:
    name, eq, limits = value.partition("=")
    if not eq:
        raise ValueError(f"invalid ulimit argument: {value}")
    if name not in ULIMIT_NAMES:
        raise ValueError(f"invalid ulimit type: {name}")
    parts = limits.split(":")
    if len(parts) > 2:
        raise ValueError(
            f"too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`"
        )
    hard = _parse_int(parts[1]) if len(parts) == 2 else None
    soft = _parse_int(parts[0])
    hard = soft if hard is None else hard
    if hard != -1 and soft > hard:
        raise ValueError(
            f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        )
    return {"Name": name, "Hard": hard, "Soft": soft}


def merged_ulimits(values: Iterable[str]) -> list[dict[str, Any]] | None:
    """HostConfig.Ulimits: one per name, a later flag replacing an earlier (null when none)."""
    by_name: dict[str, dict[str, Any]] = {}
    for v in values:
        limit = parse_ulimit(v)
        by_name[limit["Name"]] = limit
    return list(by_name.values()) or None


def check_ulimits(ulimits: Sequence[Mapping[str, Any]]) -> None:
    """Refuse, before runc is asked, a ulimit this host cannot grant: one above lamina's own
    hard limit while it lacks CAP_SYS_RESOURCE (runc would fail with "error setting rlimit
    type 7: operation not permitted", as docker 20.10 does here)."""
    from lamina.runtime.spec import unreachable_hard_limit

    for u in ulimits:
        host_hard = unreachable_hard_limit(u["Name"], u["Hard"])
        if host_hard is not None:
            raise UsageError(
                f"--ulimit {u['Name']}={u['Soft']}:{u['Hard']}: the hard limit is above this "
                f"host's ({host_hard}), and lamina lacks CAP_SYS_RESOURCE to raise it"
            )


def parse_shm_size(value: str) -> int:
    """``--shm-size`` in bytes (go-units RAMInBytes); 0 is Docker's default, 64 MiB."""
    from lamina.engine.mount_args import ram_in_bytes

    size = ram_in_bytes(value)
    if size is None:
        raise _flag_error(value, "--shm-size", f"invalid size: '{value}'")
    return size or DEFAULT_SHM_SIZE
