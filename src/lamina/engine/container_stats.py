"""``docker stats``: what each container uses, from its cgroups, computed as docker 20.10's CLI
computes it (cli/command/container/stats_helpers.go):

- CPU %: the container's CPU time over the host's in one interval, times the online CPUs
  (so one busy core on a 2-core host reads 100%);
- memory: the cgroup's usage less its inactive page cache, against its limit, or the host's
  memory when it has none (as dockerd caps it);
- block I/O: bytes read and written on block devices; PIDs: the cgroup's task count.

Network I/O has no source here: a container runs with ``--network none`` (only ``lo``) or
shares the host's, and Docker shows 0B / 0B for both, as lamina does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from msgspec import Struct

from lamina.runtime.cgroups import Usage, system_cpu_ns, usage

if TYPE_CHECKING:
    from lamina.runtime import ContainerState
    from lamina.store.containers import ContainerRecord


class ContainerStats(Struct, frozen=True, kw_only=True):
    """One container's ``docker stats`` row; all zeros for one that is not running."""

    id: str
    name: str
    running: bool
    cpu_percent: float = 0.0
    memory: int = 0
    memory_limit: int = 0
    block_read: int = 0
    block_write: int = 0
    pids: int = 0

    @property
    def memory_percent(self) -> float:
        return 100.0 * self.memory / self.memory_limit if self.memory_limit else 0.0


def host_memory() -> int:
    """The host's memory in bytes (/proc/meminfo's MemTotal, as dockerd reads it)."""
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def measure(
    containers: Sequence[tuple[ContainerRecord, ContainerState]], *, interval: float
) -> list[ContainerStats]:
    """Sample every running container's cgroups twice, ``interval`` seconds apart; the rows
    in the order given. A container that stops meanwhile gets a row of zeros."""
    from lamina.runtime import ContainerStatus

    first: dict[str, tuple[Usage, int]] = {}
    for rec, state in containers:
        if state.status is ContainerStatus.RUNNING:
            u = usage(state.pid)
            if u is not None:
                first[rec.id] = (u, system_cpu_ns())
    if first:
        time.sleep(interval)
    cpus = os.sysconf("SC_NPROCESSORS_ONLN")
    total = host_memory()
    rows = []
    for rec, state in containers:
        now = usage(state.pid) if rec.id in first else None
        if now is None:
            rows.append(ContainerStats(id=rec.id, name=rec.name, running=False))
            continue
        before, system_before = first[rec.id]
        cpu_delta = now.cpu_ns - before.cpu_ns
        system_delta = system_cpu_ns() - system_before
        cpu = 0.0
        if system_delta > 0 and cpu_delta > 0:
            cpu = cpu_delta / system_delta * cpus * 100.0
        rows.append(
            ContainerStats(
                id=rec.id,
                name=rec.name,
                running=True,
                cpu_percent=cpu,
                memory=now.memory,
                memory_limit=min(now.memory_limit or total, total),
                block_read=now.block_read,
                block_write=now.block_write,
                pids=now.pids,
            )
        )
    return rows
