"""``--cpuset-cpus`` and ``--cpuset-mems`` (``create``, ``run``, ``update``): a list such as
``0-2,5`` checked as Docker 20.10's daemon checks it, at create, at start and for an update
(``sysinfo.IsCpusetCpusAvailable``: parsers.ParseUintList, then every number among the
host's own), in its words. Kept as given in HostConfig.CpusetCpus/CpusetMems and handed to
runc as given (``+1`` passes Go's Atoi, and the kernel refuses it, as under Docker)."""

from __future__ import annotations

import re
from typing import Final

from lamina.errors import UsageError
from lamina.runtime.cgroups import host_cpuset

_ATOI: Final = re.compile(r"[+-]?[0-9]+")  # Go's strconv.Atoi
_INT64_MAX: Final = (1 << 63) - 1
MAX_CPUS: Final = 8192  # "the normal maximum number of CPUs in Linux", Docker's ceiling


def _atoi(text: str) -> int | None:
    if not _ATOI.fullmatch(text):
        return None
    value = int(text)
    return value if -_INT64_MAX - 1 <= value <= _INT64_MAX else None


def parse_list(value: str, *, maximum: int = 0) -> set[int]:
    """Docker's ``parsers.ParseUintListMaximum``: comma-separated numbers and ``a-b``
    ranges (none above ``maximum``, if not 0). Raises ValueError in its words."""
    if value == "":
        return set()
    out: set[int] = set()
    invalid = ValueError(f"invalid format: {value}")
    for part in value.split(","):
        if "-" not in part:
            number = _atoi(part)
            if number is None:
                raise invalid
            if maximum and number > maximum:
                raise ValueError(f"value of out range, maximum is {maximum}")  # sic
            out.add(number)
            continue
        low_text, _, high_text = part.partition("-")
        low, high = _atoi(low_text), _atoi(high_text)
        if low is None or high is None or high < low:
            raise invalid
        if maximum and high > maximum:
            raise ValueError(f"value of out range, maximum is {maximum}")
        out.update(range(low, high + 1))
    return out


def check_cpuset(cpus: str, mems: str) -> None:
    """Refuse CPUs or memory nodes the host lacks, as Docker's daemon does ("Requested CPUs
    are not available - requested 0-3, available: 0-1"; "Invalid value x for cpuset cpus:
    invalid format: x")."""
    if not cpus and not mems:
        return
    host_cpus, host_mems = host_cpuset()
    for given, available, what, label in (
        (cpus, host_cpus, "cpus", "CPUs"),
        (mems, host_mems, "mems", "memory nodes"),
    ):
        try:
            have = parse_list(available)
        except ValueError as exc:
            raise UsageError(f"Invalid value {given} for cpuset {what}: {exc}") from None
        try:
            wanted = parse_list(given, maximum=max([MAX_CPUS, *have]))
        except ValueError as exc:
            raise UsageError(f"Invalid value {given} for cpuset {what}: {exc}") from None
        if not wanted <= have:
            raise UsageError(
                f"Requested {label} are not available - requested {given}, available: {available}"
            )
