"""Resource limits of ``create``/``run`` (``-m``, ``--memory-swap``, ``--cpus``, ``-c``,
``--pids-limit``, ``--cpuset-cpus``, ``--cpuset-mems``): the flags parsed as Docker 20.10's
CLI parses them, checked as its daemon checks them at create (and at start, and for
``update``: :func:`check_limits`), kept in ``HostConfig`` as Docker's fields, and turned into
the runtime's :class:`~lamina.runtime.cgroups.Resources` at start.

Units are go-units' ``RAMInBytes`` (binary: ``512m`` is 512 MiB; ``b``/``ib`` suffixes
allowed, case-insensitive); ``--cpus`` is a rational number of CPUs (``1.5``, ``1/2``,
``1e0``) kept as billionths (``NanoCpus``); each message is the one Docker prints.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from lamina.errors import UsageError

if TYPE_CHECKING:
    from lamina.runtime.cgroups import Resources

# Go's big.Rat.SetString: a signed decimal with an optional exponent, or a fraction a/b.
_RATIONAL_RE: Final = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]?\d+/\d+")

MIN_MEMORY: Final = 6 << 20  # Docker's linuxMinMemory
CFS_PERIOD_US: Final = 100_000  # the period Docker gives --cpus: 100 ms
MIN_CFS_US: Final = 1000  # the shortest CFS period or quota Docker takes: 1 ms
MAX_CFS_PERIOD_US: Final = 1_000_000  # the longest CFS period: 1 s
NANO: Final = 1_000_000_000


def _bad(value: str, flag: str, why: str) -> UsageError:
    """Docker's CLI words for a flag value it cannot parse."""
    return UsageError(f'invalid argument "{value}" for "{flag}" flag: {why}')


def parse_bytes(value: str, *, flag: str = "-m, --memory") -> int:
    """A size as go-units' ``RAMInBytes`` reads it: ``512m`` -> 536870912, ``1.5g``, ``64MiB``,
    ``6291456``; a fraction of a byte is dropped, as Go's ``int64(float)``."""
    from lamina.engine.go_units import parse_size  # only for a flag given

    try:
        return parse_size(value, binary=True)
    except ValueError as exc:
        raise _bad(value, flag, str(exc)) from None


def parse_swap(value: str) -> int:
    """``--memory-swap``: a size, or ``-1`` for unlimited swap (Docker's ``MemSwapBytes``)."""
    return -1 if value == "-1" else parse_bytes(value, flag="--memory-swap")


def parse_cpus(value: str) -> int:
    """``--cpus`` as billionths of a CPU (Docker's ``ParseCPUs``): ``1.5`` -> 1500000000."""
    if _RATIONAL_RE.fullmatch(value) is None or value.endswith("/0"):
        raise _bad(value, "--cpus", f"failed to parse {value} as a rational number")
    from fractions import Fraction

    nano = Fraction(value) * NANO
    if nano.denominator != 1:
        raise _bad(value, "--cpus", "value is too precise")
    return int(nano)


def check_limits(
    *,
    memory: int,
    memory_swap: int,
    nano_cpus: int,
    cpu_period: int = 0,
    cpu_quota: int = 0,
    memory_reservation: int = 0,
    cpuset_cpus: str = "",
    cpuset_mems: str = "",
    update: bool = False,
) -> None:
    """Refuse the memory and CPU limits as Docker's daemon does
    (``verifyPlatformContainerResources``, its order and words), at create, at start, and for
    what an update asks (``update``: swap alone may be set then, to go with the memory limit
    already there); the cpusets last (:mod:`lamina.engine.cpuset_args`)."""
    if memory != 0 and memory < MIN_MEMORY:
        raise UsageError("Minimum memory limit allowed is 6MB")
    if memory > 0 and memory_swap > 0 and memory_swap < memory:
        raise UsageError("Minimum memoryswap limit should be larger than memory limit, see usage")
    if memory == 0 and memory_swap > 0 and not update:
        raise UsageError(
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        )
    if 0 < memory_reservation < MIN_MEMORY:
        raise UsageError("Minimum memory reservation allowed is 6MB")
    if memory > 0 and memory_reservation > 0 and memory < memory_reservation:
        raise UsageError(
            "Minimum memory limit can not be less than memory reservation limit, see usage"
        )
    if nano_cpus > 0 and cpu_period > 0:
        raise UsageError("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano_cpus > 0 and cpu_quota > 0:
        raise UsageError("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    cpus = len(os.sched_getaffinity(0))
    if nano_cpus < 0 or nano_cpus > cpus * NANO:
        raise UsageError(
            f"Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
        )
    if cpu_period != 0 and not MIN_CFS_US <= cpu_period <= MAX_CFS_PERIOD_US:
        raise UsageError(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
        )
    if 0 < cpu_quota < MIN_CFS_US:
        raise UsageError("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if cpuset_cpus or cpuset_mems:  # the module loads only for them
        from lamina.engine.cpuset_args import check_cpuset

        check_cpuset(cpuset_cpus, cpuset_mems)


def host_config_fields(
    *,
    memory: int,
    memory_swap: int,
    nano_cpus: int,
    cpu_shares: int,
    pids_limit: int,
    cpuset_cpus: str = "",
    cpuset_mems: str = "",
) -> dict[str, Any]:
    """Docker's HostConfig resource fields for the parsed flags, refused as Docker's daemon
    refuses them at create (:func:`check_limits`), with its defaults filled in: a memory limit
    without ``--memory-swap`` gets twice as much memory+swap; a pids limit of 0 or less is
    none (null); no CFS period or quota or memory reservation of their own (``update`` may
    set them)."""
    check_limits(
        memory=memory,
        memory_swap=memory_swap,
        nano_cpus=nano_cpus,
        cpuset_cpus=cpuset_cpus,
        cpuset_mems=cpuset_mems,
    )
    if memory > 0 and memory_swap == 0:
        memory_swap = 2 * memory
    return {
        "CpuShares": cpu_shares,
        "Memory": memory,
        "NanoCpus": nano_cpus,
        "CpuPeriod": 0,
        "CpuQuota": 0,
        "CpusetCpus": cpuset_cpus,
        "CpusetMems": cpuset_mems,
        "MemoryReservation": 0,
        "MemorySwap": memory_swap,
        "PidsLimit": pids_limit if pids_limit > 0 else None,
    }


def run_resources(host_config: Mapping[str, Any]) -> Resources:
    """The cgroup limits of a stored HostConfig, as Docker's daemon puts them in the OCI spec
    (``getMemoryResources``, ``getCPUResources``, ``getPidsLimit``): only what is set. As
    Docker's start, the limits are checked again first (:func:`check_limits`: an update may
    have left swap without memory, or below it), and a negative ``CpuShares`` is refused
    ("shares: invalid argument")."""
    from lamina.runtime.cgroups import Resources

    memory = int(host_config.get("Memory") or 0)
    swap = int(host_config.get("MemorySwap") or 0)
    nano = int(host_config.get("NanoCpus") or 0)
    period = int(host_config.get("CpuPeriod") or 0)
    quota = int(host_config.get("CpuQuota") or 0)
    reservation = int(host_config.get("MemoryReservation") or 0)
    cpuset_cpus = str(host_config.get("CpusetCpus") or "")
    cpuset_mems = str(host_config.get("CpusetMems") or "")
    check_limits(
        memory=memory,
        memory_swap=swap,
        nano_cpus=nano,
        cpu_period=period,
        cpu_quota=quota,
        memory_reservation=reservation,
        cpuset_cpus=cpuset_cpus,
        cpuset_mems=cpuset_mems,
    )
    shares = int(host_config.get("CpuShares") or 0)
    if shares < 0:
        raise UsageError("shares: invalid argument")
    pids = host_config.get("PidsLimit")
    return Resources(
        memory=memory if memory > 0 else None,
        memory_swap=swap if swap > 0 else None,
        memory_reservation=reservation or None,
        cpu_shares=shares if shares > 0 else None,
        cpu_quota=quota or (nano * CFS_PERIOD_US // NANO if nano > 0 else None),
        cpu_period=period or (CFS_PERIOD_US if nano > 0 else None),
        cpuset_cpus=cpuset_cpus or None,
        cpuset_mems=cpuset_mems or None,
        pids_limit=int(pids) if pids else None,
        oom_kill_disable=bool(host_config.get("OomKillDisable")),
    )
