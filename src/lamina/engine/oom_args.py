"""``--oom-score-adj`` and ``--oom-kill-disable``, as docker 20.10 takes them: the score read
as its CLI reads an int flag (pflag: ``strconv.ParseInt(s, 0, 64)``, so ``0x10`` is 16) and
checked by its daemon at create ("Invalid value 1001, range for oom score adj is [-1000,
1000]"); disabling the OOM killer needs the v1 memory controller's ``memory.oom_control``
(Docker discards it with a warning where the kernel has none) and warns without ``-m``.

A score below lamina's own needs CAP_SYS_RESOURCE to set (runc, under Docker too, then fails
the start: "can't get final child's PID from pipe: EOF")."""

from __future__ import annotations

import re
from typing import Final

from lamina.errors import UsageError

OOM_SCORE_ADJ_MAX: Final = 1000
_INT64: Final = 1 << 63
_OCTAL: Final = re.compile(r"[+-]?0[0-7]+")  # Go's base 0: a leading 0 is octal


def parse_score_adj(value: str) -> int:
    """``--oom-score-adj`` as pflag's int reads it (decimal, or 0x/0o/0b/0 prefixed); a
    UsageError in its words."""
    try:
        if value.strip() != value or not value:
            raise ValueError
        number = int(value, 8) if _OCTAL.fullmatch(value) else int(value, 0)
    except ValueError:
        raise UsageError(
            f'invalid argument "{value}" for "--oom-score-adj" flag: strconv.ParseInt: parsing '
            f'"{value}": invalid syntax'
        ) from None
    if not -_INT64 <= number < _INT64:
        raise UsageError(
            f'invalid argument "{value}" for "--oom-score-adj" flag: strconv.ParseInt: parsing '
            f'"{value}": value out of range'
        )
    return number


_CAP_SYS_RESOURCE: Final = 24


def score_note(value: int) -> str | None:
    """The likely reason a start with ``--oom-score-adj value`` failed where runc only says
    "can't get final child's PID from pipe: EOF" (as Docker's did here): a score below
    lamina's own, which only a process with CAP_SYS_RESOURCE may set. None when that is not
    it."""
    try:
        with open("/proc/self/oom_score_adj", encoding="ascii") as f:
            own = int(f.read())
        with open("/proc/self/status", encoding="ascii") as f:
            caps = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    except (OSError, ValueError, StopIteration):
        return None
    if value >= own or caps >> _CAP_SYS_RESOURCE & 1:
        return None
    return (
        f"--oom-score-adj {value} is below lamina's own ({own}): setting it needs "
        "CAP_SYS_RESOURCE, which lamina lacks"
    )


def check_score_adj(value: int) -> None:
    """The daemon's range check, at create."""
    if not -OOM_SCORE_ADJ_MAX <= value <= OOM_SCORE_ADJ_MAX:
        raise UsageError(f"Invalid value {value}, range for oom score adj is [-1000, 1000]")


def oom_kill_disable_supported() -> bool:
    """Whether this host's memory cgroup can keep the OOM killer off (v1's
    ``memory.oom_control``, as Docker's sysinfo asks)."""
    from lamina.runtime.cgroups import hierarchy

    memory = hierarchy("memory")
    return memory is not None and (memory / "memory.oom_control").exists()


def warnings(*, oom_kill_disable: bool, memory: int) -> tuple[bool, list[str]]:
    """(whether the OOM killer is kept off, Docker's warnings for it: its CLI's, then its
    daemon's) for ``--oom-kill-disable`` with a memory limit of ``memory`` (0: none)."""
    if not oom_kill_disable:
        return False, []
    out = []
    if memory == 0:
        out.append(
            "Disabling the OOM killer on containers without setting a '-m/--memory' limit may "
            "be dangerous."
        )
    if not oom_kill_disable_supported():
        return False, [
            *out,
            "Your kernel does not support OomKillDisable. OomKillDisable discarded.",
        ]
    if memory == 0:
        out.append(
            "OOM killer is disabled for the container, but no memory limit is set, this can "
            "result in the system running out of resources."
        )
    return True, out
