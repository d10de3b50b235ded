"""``docker update``: new resource limits for a container, as Docker 20.10's daemon makes them.

Three steps, each Docker's:

1. the limits asked for are checked as its daemon checks an update's
   (:func:`lamina.engine.container_resources.check_limits` with ``update``: swap may be set
   alone there, to go with the memory limit a container has);
2. they are merged into the stored ``HostConfig`` (:func:`merged_host_config`: a value of 0
   leaves a limit as it is, ``--cpus`` and a CFS period or quota exclude each other across
   updates, and a memory limit above the memory+swap already set needs a new memory+swap);
3. a running container -- a paused one too -- gets the limits asked for at once, through
   ``runc update`` (:func:`runc_resources`, the JSON Docker has containerd hand runc: only
   what was asked for, so ``--memory-swap -1`` changes the record and not the cgroup, as under
   Docker); a stopped or created one only keeps them for its next start.

The record is read, merged and written under the store lock in one transaction, with the
cgroup written inside it: a refusal anywhere leaves both as they were (Docker puts its record
back but not the cgroup files runc wrote before the one it failed on; lamina puts those back
too, :meth:`lamina.runtime.Runtime.update`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from msgspec import Struct

from lamina.engine.container_resources import CFS_PERIOD_US, NANO, check_limits
from lamina.errors import ConflictError, LaminaError
from lamina.store.containers import ContainerRecord
from lamina.store.store import Store

_UINT64: Final = 1 << 64


class Limits(Struct, frozen=True, kw_only=True):
    """What an update asks for, in Docker's ``Resources`` units; 0 (None for ``pids_limit``)
    leaves a limit as it is, as Docker's daemon reads an update."""

    memory: int = 0  # bytes
    memory_swap: int = 0  # memory+swap, bytes; -1: unlimited
    memory_reservation: int = 0  # soft limit, bytes
    nano_cpus: int = 0  # billionths of a CPU (--cpus)
    cpu_shares: int = 0
    cpu_period: int = 0  # microseconds
    cpu_quota: int = 0  # microseconds; -1: none
    cpuset_cpus: str = ""  # "0-2,5"
    cpuset_mems: str = ""
    pids_limit: int | None = None  # 0 or less: none


def update(
    store: Store,
    rec: ContainerRecord,
    limits: Limits,
    *,
    running: bool,
    apply: Callable[[Mapping[str, Any]], Mapping[str, Any]],
) -> ContainerRecord:
    """Check ``limits``, merge them into ``rec``'s HostConfig and, when it is ``running``,
    ``apply`` them to its cgroups (``apply(resources)`` returns the limits it replaced, which
    ``apply`` puts back). Raises UsageError for limits Docker's daemon refuses, ConflictError
    for what the container's own limits or its runtime refused; either leaves the container
    as it was. Returns the updated record."""
    check_limits(
        memory=limits.memory,
        memory_swap=limits.memory_swap,
        nano_cpus=limits.nano_cpus,
        cpu_period=limits.cpu_period,
        cpu_quota=limits.cpu_quota,
        memory_reservation=limits.memory_reservation,
        cpuset_cpus=limits.cpuset_cpus,
        cpuset_mems=limits.cpuset_mems,
        update=True,
    )
    replaced: list[Mapping[str, Any]] = []

    def change(config: Mapping[str, Any]) -> Mapping[str, Any]:
        host = merged_host_config(rec.id, config["HostConfig"], limits)
        if running:
            from lamina.runtime import ContainerNotRunningError

            try:
                replaced.append(apply(runc_resources(limits)))
            except ContainerNotRunningError:
                pass  # it has ended since: the record is all there is to change
            except LaminaError as exc:
                raise ConflictError(f"Cannot update container {rec.id}: {exc}") from exc
        return {**config, "HostConfig": host}

    try:
        return store.containers.change_config(rec, change)
    except BaseException as exc:
        if replaced:  # the cgroup took the limits and the record did not: put them back
            try:
                apply(replaced[0])
            except LaminaError as again:
                exc.add_note(f"its cgroup keeps the new limits: {again}")
        raise


def merged_host_config(
    container_id: str, host: Mapping[str, Any], limits: Limits
) -> dict[str, Any]:
    """``host`` with ``limits`` in it, as Docker's ``UpdateContainer`` merges them. Raises
    ConflictError with its words ("Cannot update container ID: ...")."""

    def refuse(why: str) -> ConflictError:
        return ConflictError(f"Cannot update container {container_id}: {why}")

    nano = int(host.get("NanoCpus") or 0)
    period = int(host.get("CpuPeriod") or 0)
    quota = int(host.get("CpuQuota") or 0)
    # --cpus sets the CFS period and quota itself: once one way is in force, not the other.
    if limits.nano_cpus > 0 and period > 0:
        raise refuse(
            "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set"
        )
    if limits.nano_cpus > 0 and quota > 0:
        raise refuse(
            "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set"
        )
    if limits.cpu_period > 0 and nano > 0:
        raise refuse(
            "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set"
        )
    if limits.cpu_quota > 0 and nano > 0:
        raise refuse(
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
        )
    out = dict(host)
    fields = {
        "CpuShares": limits.cpu_shares,
        "NanoCpus": limits.nano_cpus,
        "CpuPeriod": limits.cpu_period,
        "CpuQuota": limits.cpu_quota,
    }
    out.update({k: v for k, v in fields.items() if v != 0})
    if limits.memory != 0:
        # Docker's comparison as it is: a container without a memory+swap limit (0) or with
        # unlimited swap (-1) needs --memory-swap with any new memory limit.
        if limits.memory > int(host.get("MemorySwap") or 0) and limits.memory_swap == 0:
            raise refuse(
                "Memory limit should be smaller than already set memoryswap limit, update the "
                "memoryswap at the same time"
            )
        out["Memory"] = limits.memory
    if limits.memory_swap != 0:
        out["MemorySwap"] = limits.memory_swap
    if limits.memory_reservation != 0:
        out["MemoryReservation"] = limits.memory_reservation
    if limits.cpuset_cpus:
        out["CpusetCpus"] = limits.cpuset_cpus
    if limits.cpuset_mems:
        out["CpusetMems"] = limits.cpuset_mems
    if limits.pids_limit is not None:
        out["PidsLimit"] = max(limits.pids_limit, 0)  # Docker keeps 0 for "none" here
    return out


def runc_resources(limits: Limits) -> dict[str, Any]:
    """The ``linux.resources`` a running container gets for ``limits``: Docker's
    ``toContainerdResources`` of the update as asked (not of the merged record), without its
    zeros, which runc reads as "leave it". A negative ``cpu_shares`` goes as Go's uint64 of it
    (runc then reports the kernel's maximum), a pids limit of 0 or less as -1 (none), and a
    memory+swap only when positive."""
    cpu: dict[str, int] = {"shares": limits.cpu_shares % _UINT64}
    period = quota = 0
    if limits.nano_cpus != 0:
        period = CFS_PERIOD_US
        quota = limits.nano_cpus * period // NANO
    cpu["quota"] = quota or limits.cpu_quota
    cpu["period"] = period or limits.cpu_period
    cpuset = {"cpus": limits.cpuset_cpus, "mems": limits.cpuset_mems}
    memory = {
        "limit": limits.memory,
        "reservation": limits.memory_reservation,
        "swap": max(limits.memory_swap, 0),
    }
    out: dict[str, Any] = {
        "memory": {k: v for k, v in memory.items() if v},
        "cpu": {**{k: v for k, v in cpu.items() if v}, **{k: v for k, v in cpuset.items() if v}},
    }
    if limits.pids_limit is not None:
        out["pids"] = {"limit": limits.pids_limit if limits.pids_limit > 0 else -1}
    return {k: v for k, v in out.items() if v}
