"""A container's cgroup limits in the OCI spec, what its memory cgroup says about OOM kills, and
whether its freezer holds it (``pause``).

runc applies ``linux.resources`` through the cgroup driver it finds: on this host's hybrid
layout (cgroup v1 controllers, an empty v2 ``unified`` tree) the v1 files --
``memory.limit_in_bytes``, ``memory.memsw.limit_in_bytes``, ``cpu.cfs_quota_us``/
``cpu.cfs_period_us``, ``cpu.shares``, ``pids.max`` -- and on a v2-only host their v2
equivalents. Its own errors (cpu-shares below 2, a quota under 1 ms) fail the start as they
fail Docker's.

Docker learns of an OOM kill from containerd's cgroup event monitor; lamina's shim asks the
container's memory cgroup once the init has exited and before ``runc delete`` removes it
(:func:`oom_kills`): the v1 ``memory.oom_control`` ``oom_kill`` counter, else the v2
``memory.events`` one. Either counts every process the kernel killed in the cgroup, so a
child killed for memory marks the container ``OOMKilled`` as Docker's does.
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path
from typing import Any, Final

from msgspec import Struct


class Resources(Struct, frozen=True, kw_only=True):
    """The cgroup limits of a container's process; None leaves the cgroup's default."""

    memory: int | None = None  # bytes
    memory_swap: int | None = None  # memory+swap, bytes (-1: unlimited)
    memory_reservation: int | None = None  # soft limit, bytes
    cpu_shares: int | None = None  # relative weight (cgroup v1's cpu.shares)
    cpu_quota: int | None = None  # microseconds per period
    cpu_period: int | None = None  # microseconds
    cpuset_cpus: str | None = None  # the CPUs it may run on ("0-2,5")
    cpuset_mems: str | None = None  # the memory nodes it may allocate on
    pids_limit: int | None = None
    oom_kill_disable: bool = False  # the OOM killer kept off (v1's memory.oom_control)


def linux_resources(res: Resources) -> dict[str, Any]:
    """The runtime-spec ``linux.resources`` members for ``res`` (``devices`` is the caller's)."""
    out: dict[str, Any] = {}
    memory: dict[str, Any] = {
        "limit": res.memory,
        "swap": res.memory_swap,
        "reservation": res.memory_reservation,
        "disableOOMKiller": True if res.oom_kill_disable else None,
    }
    if any(v is not None for v in memory.values()):
        out["memory"] = {k: v for k, v in memory.items() if v is not None}
    cpu = {
        "shares": res.cpu_shares,
        "quota": res.cpu_quota,
        "period": res.cpu_period,
        "cpus": res.cpuset_cpus,
        "mems": res.cpuset_mems,
    }
    if any(v is not None for v in cpu.values()):
        out["cpu"] = {k: v for k, v in cpu.items() if v is not None}
    if res.pids_limit is not None:
        out["pids"] = {"limit": res.pids_limit}
    return out


@functools.cache
def _mounts() -> dict[str, Path]:
    """Where each v1 controller's hierarchy is mounted (``"memory"`` -> /sys/fs/cgroup/memory),
    and the v2 tree under the key ``""``. Read once a process: ``ps`` asks for every running
    container's freezer, and cgroup hierarchies are not remounted under a running engine."""
    from lamina.driver.mountinfo import read_mounts

    found: dict[str, Path] = {}
    try:
        mounts = read_mounts()
    except OSError:
        return found
    for m in mounts:
        if m.fs_type == "cgroup2":
            found.setdefault("", Path(m.target))
        elif m.fs_type == "cgroup":
            for key, _ in m.super_options:
                found.setdefault(key, Path(m.target))
    return found


def hierarchy(controller: str) -> Path | None:
    """Where ``controller``'s v1 hierarchy is mounted (``""``: the v2 tree); None if not."""
    return _mounts().get(controller)


def controller_cgroup(pid: int, controller: str, *, v2_file: str) -> Path | None:
    """The cgroup directory of the running process ``pid`` for ``controller``: its v1
    hierarchy's, else its v2 one when that holds ``v2_file`` (the controller's interface
    there); None when it has neither."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    mounts = _mounts()
    v2: Path | None = None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(",") and controller in mounts:
            return mounts[controller] / path.lstrip("/")
        if controllers == "" and "" in mounts:
            v2 = mounts[""] / path.lstrip("/")
    if v2 is not None and (v2 / v2_file).exists():
        return v2
    return None


def memory_cgroup(pid: int) -> Path | None:
    """The memory cgroup directory of the running process ``pid`` (:func:`controller_cgroup`)."""
    return controller_cgroup(pid, "memory", v2_file="memory.events")


def frozen(pid: int) -> bool:
    """Whether the cgroup of process ``pid`` is frozen (``runc pause``): v1's ``freezer.state``
    reads FROZEN (or FREEZING: a pause under way), v2's ``cgroup.freeze`` 1. False for a
    process that is gone."""
    cgroup = controller_cgroup(pid, "freezer", v2_file="cgroup.freeze")
    if cgroup is None:
        return False
    for name, values in (("freezer.state", ("FROZEN", "FREEZING")), ("cgroup.freeze", ("1",))):
        try:
            return (cgroup / name).read_text().strip() in values
        except OSError:
            continue
    return False


def oom_kills(cgroup: Path) -> int:
    """How many processes the kernel has killed for memory in ``cgroup`` (0 when it cannot
    tell: the cgroup is gone, or its kernel keeps no such counter)."""
    for name in ("memory.oom_control", "memory.events"):
        try:
            text = (cgroup / name).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
    return 0


_UNLIMITED: Final = 1 << 62  # v1 writes 9223372036854771712 for "no limit"


def current_limits(pid: int) -> dict[str, Any]:
    """The limits the cgroups of the running process ``pid`` hold now, as ``runc update -r``
    takes them (:func:`limits_in`), so what a failed update wrote can be put back; {} when
    the process is gone."""
    return limits_in(
        memory=memory_cgroup(pid),
        cpu=controller_cgroup(pid, "cpu", v2_file="cpu.max"),
        pids=controller_cgroup(pid, "pids", v2_file="pids.max"),
        cpuset=controller_cgroup(pid, "cpuset", v2_file="cpuset.cpus"),
    )


# The v2 files that hold what update changes, put back as they read (runc's "unified" keys:
# no conversion of shares to weight or of memory+swap to swap to get wrong).
_V2_LIMIT_FILES: Final = (
    *("memory.max", "memory.swap.max", "memory.low", "cpu.max", "cpu.weight", "pids.max"),
    *("cpuset.cpus", "cpuset.mems"),
)


def limits_in(
    *, memory: Path | None, cpu: Path | None, pids: Path | None, cpuset: Path | None = None
) -> dict[str, Any]:
    """``runc update -r`` JSON for the limits the cgroup dirs hold: v1's memory, memory+swap
    and soft (reservation) limits, CPU shares, CFS quota and period, cpuset CPUs and memory
    nodes and pids limit (-1: none, which runc writes as such, where 0 would leave a file
    alone); on v2 the files themselves, as runc's ``unified`` map. Files that are not there
    are left out."""
    dirs = [d for d in (memory, cpu, pids, cpuset) if d is not None]
    if any((d / "cgroup.controllers").exists() for d in dirs):  # v2
        unified: dict[str, str] = {}
        for d in dict.fromkeys(dirs):
            for name in _V2_LIMIT_FILES:
                with contextlib.suppress(OSError):
                    unified[name] = (d / name).read_text().strip()
        return {"unified": unified} if unified else {}
    out: dict[str, Any] = {}
    if memory is not None:
        limits = {
            "limit": _limit_file(memory / "memory.limit_in_bytes"),
            "swap": _limit_file(memory / "memory.memsw.limit_in_bytes"),
            "reservation": _limit_file(memory / "memory.soft_limit_in_bytes"),
        }
        out["memory"] = {k: v for k, v in limits.items() if v is not None}
    if cpu is not None:
        values = {
            "shares": _int_file(cpu / "cpu.shares"),
            "quota": _int_file(cpu / "cpu.cfs_quota_us"),
            "period": _int_file(cpu / "cpu.cfs_period_us"),
        }
        out["cpu"] = {k: v for k, v in values.items() if v is not None}
    if cpuset is not None:
        sets = {
            "cpus": _text_file(cpuset / "cpuset.cpus"),
            "mems": _text_file(cpuset / "cpuset.mems"),
        }
        out.setdefault("cpu", {}).update({k: v for k, v in sets.items() if v})
    if pids is not None:
        limit = _limit_file(pids / "pids.max")
        if limit is not None:
            out["pids"] = {"limit": limit}
    return {k: v for k, v in out.items() if v}


def _limit_file(path: Path) -> int | None:
    """A v1 limit file as runc takes it back: -1 for none ("max", or v1's page-rounded
    2^63-1), None when it is not there."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":
        return -1
    try:
        value = int(text)
    except ValueError:
        return None
    return -1 if value >= _UNLIMITED else value


class Usage(Struct, frozen=True, kw_only=True):
    """What a container's cgroups have counted (``docker stats``' raw numbers)."""

    cpu_ns: int  # CPU time its processes used, in nanoseconds
    memory: int  # bytes in use, less the inactive page cache (Docker's figure)
    memory_limit: int | None  # None: no limit below the host's memory
    block_read: int  # bytes read from and written to block devices
    block_write: int
    pids: int


def usage(pid: int) -> Usage | None:
    """What the cgroups of the running process ``pid`` (a container's init) have counted;
    None when it is gone. v1 files on this host's layout, v2 ones on a v2-only host."""
    cpu = controller_cgroup(pid, "cpuacct", v2_file="cpu.stat")
    memory = memory_cgroup(pid)
    if cpu is None or memory is None:
        return None
    cpu_ns = _int_file(cpu / "cpuacct.usage")
    if cpu_ns is None:
        stat = _key_values(cpu / "cpu.stat")
        cpu_ns = stat.get("usage_usec", 0) * 1000
    used = _int_file(memory / "memory.usage_in_bytes")
    limit = _int_file(memory / "memory.limit_in_bytes")
    inactive = _key_values(memory / "memory.stat").get("total_inactive_file")
    if used is None:  # v2
        used = _int_file(memory / "memory.current") or 0
        limit = _int_file(memory / "memory.max")  # "max": None
        inactive = _key_values(memory / "memory.stat").get("inactive_file")
    if inactive is not None and inactive < used:
        used -= inactive
    read = write = 0
    blkio = controller_cgroup(pid, "blkio", v2_file="io.stat")
    if blkio is not None:
        read, write = _block_io(blkio)
    pids = controller_cgroup(pid, "pids", v2_file="pids.current")
    return Usage(
        cpu_ns=cpu_ns,
        memory=used,
        memory_limit=limit if limit is not None and limit < _UNLIMITED else None,
        block_read=read,
        block_write=write,
        pids=(_int_file(pids / "pids.current") or 0) if pids is not None else 0,
    )


def system_cpu_ns() -> int:
    """The host's CPU time since boot, in nanoseconds, as dockerd counts it: the first seven
    fields of /proc/stat's ``cpu`` line (user to softirq), in clock ticks."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = f.readline().split()
    ticks = sum(int(v) for v in fields[1:8])
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def host_cpuset() -> tuple[str, str]:
    """The host's CPUs and memory nodes as Docker's sysinfo reads them: the cpuset
    hierarchy's root ``cpuset.cpus`` and ``cpuset.mems`` (v1), else the v2 root's effective
    ones; "" where a file cannot be read."""
    v1 = hierarchy("cpuset")
    if v1 is not None:
        files = (v1 / "cpuset.cpus", v1 / "cpuset.mems")
    else:
        v2 = hierarchy("") or Path("/sys/fs/cgroup")
        files = (v2 / "cpuset.cpus.effective", v2 / "cpuset.mems.effective")
    return _text_file(files[0]) or "", _text_file(files[1]) or ""


def _text_file(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _int_file(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _key_values(path: Path) -> dict[str, int]:
    """A cgroup file of ``key value`` lines (memory.stat, cpu.stat)."""
    out: dict[str, int] = {}
    try:
        text = path.read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


def _block_io(cgroup: Path) -> tuple[int, int]:
    """Bytes read and written: v1's ``blkio.throttle.io_service_bytes_recursive`` (``8:0 Read
    4096`` lines), else v2's ``io.stat`` (``8:0 rbytes=4096 wbytes=0 ...``)."""
    read = write = 0
    try:
        text = (cgroup / "blkio.throttle.io_service_bytes_recursive").read_text()
    except OSError:
        text = None
    if text is not None:
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[2].isdigit():
                op = parts[1].lower()
                read += int(parts[2]) if op == "read" else 0
                write += int(parts[2]) if op == "write" else 0
        return read, write
    try:
        text = (cgroup / "io.stat").read_text()
    except OSError:
        return 0, 0
    for line in text.split():
        key, _, value = line.partition("=")
        if value.isdigit():
            read += int(value) if key == "rbytes" else 0
            write += int(value) if key == "wbytes" else 0
    return read, write
