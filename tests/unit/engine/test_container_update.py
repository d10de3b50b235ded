"""``docker update`` as Docker 20.10's daemon makes it: the merge into HostConfig, the limits a
running container's runc gets, and a refusal leaving the record (and the cgroup) as they were.
Each expected value is what ``docker update FLAGS C`` then ``docker inspect`` (and the
container's cgroup files) showed on this host, or the error it printed."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))

from store_fakes import make_tar, open_fake_store

from lamina.digest import Digest
from lamina.engine.container_resources import host_config_fields
from lamina.engine.container_update import (
    Limits,
    merged_host_config,
    runc_resources,
    update,
)
from lamina.errors import ConflictError, StoreError, UsageError
from lamina.runtime.errors import ContainerNotRunningError, RuncError
from lamina.store.containers import ContainerRecord
from lamina.store.store import Store

ID = "c" * 64
MB = 1 << 20


def _host(**kw: int) -> dict[str, Any]:
    args = {"memory": 0, "memory_swap": 0, "nano_cpus": 0, "cpu_shares": 0, "pids_limit": 0}
    return host_config_fields(**(args | kw))


def test_a_zero_leaves_a_limit_and_the_rest_replace_it() -> None:
    # docker update -m 32m on -m 64m (memory+swap 128m): Memory 33554432, MemorySwap kept.
    host = _host(memory=64 * MB, cpu_shares=512, pids_limit=50)
    out = merged_host_config(ID, host, Limits(memory=32 * MB))
    assert (out["Memory"], out["MemorySwap"], out["CpuShares"], out["PidsLimit"]) == (
        32 * MB,
        128 * MB,
        512,
        50,
    )
    # --memory-swap -1: MemorySwap -1 in the record (the cgroup keeps its limit, below).
    assert merged_host_config(ID, host, Limits(memory_swap=-1))["MemorySwap"] == -1
    # --memory-reservation 128m on -m 64m: taken (the check sees the update's values only).
    assert merged_host_config(ID, host, Limits(memory_reservation=128 * MB))[
        "MemoryReservation"
    ] == (128 * MB)
    out = merged_host_config(ID, host, Limits(nano_cpus=1_500_000_000, cpu_shares=256))
    assert (out["NanoCpus"], out["CpuShares"]) == (1_500_000_000, 256)
    assert host["NanoCpus"] == 0  # the stored dict is not changed in place


def test_pids_limit_of_0_or_less_is_kept_as_0() -> None:
    # docker update --pids-limit -1 (or -5): PidsLimit 0 (create keeps null), pids.max "max".
    host = _host(pids_limit=100)
    for limit in (-1, -5):
        assert merged_host_config(ID, host, Limits(pids_limit=limit))["PidsLimit"] == 0
    assert merged_host_config(ID, host, Limits(pids_limit=20))["PidsLimit"] == 20


@pytest.mark.parametrize(
    ("host", "limits", "why"),
    [
        # docker 20.10: "Error response from daemon: Cannot update container <id>: ..."
        (
            _host(),
            Limits(memory=64 * MB),
            "Memory limit should be smaller than already set memoryswap limit, update the "
            "memoryswap at the same time",
        ),
        (
            _host(memory=64 * MB),
            Limits(memory=200 * MB),
            "Memory limit should be smaller than already set memoryswap limit, update the "
            "memoryswap at the same time",
        ),
        (
            _host(memory=64 * MB, memory_swap=-1),
            Limits(memory=32 * MB),
            "Memory limit should be smaller than already set memoryswap limit, update the "
            "memoryswap at the same time",
        ),
        (
            _host(nano_cpus=1_500_000_000),
            Limits(cpu_period=50000),
            "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set",
        ),
        (
            _host(nano_cpus=1_500_000_000),
            Limits(cpu_quota=50000),
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set",
        ),
        (
            _host() | {"CpuPeriod": 50000},
            Limits(nano_cpus=1_000_000_000),
            "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set",
        ),
        (
            _host() | {"CpuQuota": 20000},
            Limits(nano_cpus=1_000_000_000),
            "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set",
        ),
    ],
)
def test_what_the_containers_own_limits_refuse(
    host: dict[str, Any], limits: Limits, why: str
) -> None:
    with pytest.raises(ConflictError) as info:
        merged_host_config(ID, host, limits)
    assert str(info.value) == f"Cannot update container {ID}: {why}"


def test_memory_with_swap_and_swap_alone_are_merged() -> None:
    # docker update -m 64m --memory-swap 128m of a container without limits; --memory-swap
    # alone is taken too (runc then refuses it for a running container).
    out = merged_host_config(ID, _host(), Limits(memory=64 * MB, memory_swap=128 * MB))
    assert (out["Memory"], out["MemorySwap"]) == (64 * MB, 128 * MB)
    out = merged_host_config(ID, _host(), Limits(memory_swap=128 * MB))
    assert (out["Memory"], out["MemorySwap"]) == (0, 128 * MB)


def test_runc_gets_the_update_as_asked_not_the_record() -> None:
    assert runc_resources(Limits(pids_limit=100)) == {"pids": {"limit": 100}}
    assert runc_resources(Limits(pids_limit=-5)) == {"pids": {"limit": -1}}
    assert runc_resources(Limits(nano_cpus=1_500_000_000, cpu_shares=512)) == {
        "cpu": {"shares": 512, "quota": 150000, "period": 100000}
    }
    assert runc_resources(Limits(cpu_period=50000)) == {"cpu": {"period": 50000}}
    assert runc_resources(Limits(cpu_quota=-1)) == {"cpu": {"quota": -1}}
    assert runc_resources(Limits(memory=64 * MB, memory_swap=128 * MB)) == {
        "memory": {"limit": 64 * MB, "swap": 128 * MB}
    }
    assert runc_resources(Limits(memory_reservation=48 * MB)) == {
        "memory": {"reservation": 48 * MB}
    }
    # --memory-swap -1 is not sent: the cgroup keeps its memory+swap limit, as Docker's did.
    assert runc_resources(Limits(memory=64 * MB, memory_swap=-1)) == {"memory": {"limit": 64 * MB}}
    # -c -5 goes as Go's uint64(-5); runc answers "the maximum allowed cpu-shares is 262144".
    assert runc_resources(Limits(cpu_shares=-5)) == {"cpu": {"shares": (1 << 64) - 5}}


@pytest.fixture
def store(shm_tmp: Path) -> Iterator[Store]:
    s = open_fake_store(shm_tmp / "root")
    try:
        yield s
    finally:
        s.close()


def _container(store: Store, **limits: int) -> ContainerRecord:
    layer = store.layers.ingest(
        io.BytesIO(make_tar([("etc", "dir", b"")])), parent=None, media_type=None
    )
    config = json.dumps({"rootfs": {"diff_ids": [layer.diff_id]}}).encode()
    img = store.images.add(
        config_bytes=config,
        manifest_bytes=json.dumps({"config": str(Digest.of(config))}).encode(),
        manifest_media_type="application/vnd.oci.image.manifest.v1+json",
        layers=[layer.chain_id],
        names=["localhost/x:1"],
        created="2024",
    )
    return store.containers.create(
        name="web",
        image=img.id,
        top_layer=img.top_layer,
        created="2024-01-01T00:00:00Z",
        config={"Path": "sh", "Args": [], "Config": {}, "HostConfig": _host(**limits)},
    )


class Cgroup:
    """A running container's cgroup as runc update leaves it: what was written, and a refusal
    to order."""

    def __init__(self, refuse: Exception | None = None) -> None:
        self.written: list[Mapping[str, Any]] = []
        self.refuse = refuse

    def __call__(self, resources: Mapping[str, Any]) -> Mapping[str, Any]:
        if self.refuse is not None:
            raise self.refuse
        self.written.append(resources)
        return {"pids": {"limit": -1}}  # what it had


def test_a_stopped_container_keeps_the_limits_for_its_next_start(store: Store) -> None:
    rec = _container(store, memory=64 * MB)
    cgroup = Cgroup()
    out = update(store, rec, Limits(memory=32 * MB, pids_limit=5), running=False, apply=cgroup)
    assert (out.config["HostConfig"]["Memory"], out.config["HostConfig"]["PidsLimit"]) == (
        32 * MB,
        5,
    )
    assert store.containers.find(rec.id) == out
    assert cgroup.written == []


def test_a_running_container_gets_them_at_once(store: Store) -> None:
    rec = _container(store)
    cgroup = Cgroup()
    update(store, rec, Limits(pids_limit=100, cpu_shares=512), running=True, apply=cgroup)
    assert cgroup.written == [{"cpu": {"shares": 512}, "pids": {"limit": 100}}]
    hc = store.containers.resolve("web").config["HostConfig"]
    assert (hc["PidsLimit"], hc["CpuShares"]) == (100, 512)


def test_one_that_ended_meanwhile_keeps_them_in_its_record(store: Store) -> None:
    rec = _container(store)
    cgroup = Cgroup(refuse=ContainerNotRunningError(rec.id))
    update(store, rec, Limits(pids_limit=7), running=True, apply=cgroup)
    assert store.containers.resolve("web").config["HostConfig"]["PidsLimit"] == 7


def test_a_refusal_leaves_the_record_as_it_was(store: Store) -> None:
    rec = _container(store, memory=64 * MB, cpu_shares=512)
    before = store.containers.resolve("web")
    # the daemon's check (no "Cannot update container" before it, as Docker's)
    with pytest.raises(UsageError, match=r"^Minimum memory limit allowed is 6MB$"):
        update(store, rec, Limits(memory=5 * MB), running=True, apply=Cgroup())
    # runc's refusal, in Docker's words around runc's
    refused = Cgroup(
        refuse=RuncError("the minimum allowed cpu-shares is 2", args=(), runc_status=1)
    )
    with pytest.raises(ConflictError) as info:
        update(store, rec, Limits(cpu_shares=1, pids_limit=3), running=True, apply=refused)
    assert str(info.value) == (
        f"Cannot update container {rec.id}: the minimum allowed cpu-shares is 2"
    )
    assert store.containers.resolve("web") == before


def test_a_record_that_cannot_be_written_puts_the_cgroup_back(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = _container(store)
    cgroup = Cgroup()

    def failing_write(rec: ContainerRecord, change: Any) -> ContainerRecord:
        change(dict(rec.config))
        raise StoreError("disk full")

    monkeypatch.setattr(store.containers, "change_config", failing_write)
    with pytest.raises(StoreError):
        update(store, rec, Limits(pids_limit=100), running=True, apply=cgroup)
    assert cgroup.written == [{"pids": {"limit": 100}}, {"pids": {"limit": -1}}]


def test_cpusets_are_merged_sent_and_checked() -> None:
    # docker update --cpuset-cpus 1 / --cpuset-mems 0: CpusetCpus "1" (an empty one leaves
    # it); runc gets cpu.cpus / cpu.mems as given.
    host = merged_host_config(ID, _host(), Limits(cpuset_cpus="1"))
    assert (host["CpusetCpus"], host["CpusetMems"]) == ("1", "")
    host = merged_host_config(ID, host, Limits(cpuset_mems="0", pids_limit=5))
    assert (host["CpusetCpus"], host["CpusetMems"]) == ("1", "0")
    assert runc_resources(Limits(cpuset_cpus="0-1", cpuset_mems="0", cpu_shares=512)) == {
        "cpu": {"shares": 512, "cpus": "0-1", "mems": "0"}
    }
    assert runc_resources(Limits(cpuset_cpus="+0")) == {"cpu": {"cpus": "+0"}}  # runc refuses
