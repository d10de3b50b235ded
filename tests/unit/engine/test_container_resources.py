"""Resource flags as docker 20.10 parses and checks them (each expected value is what
``docker create FLAGS busybox`` then ``docker inspect`` showed, or the error it printed)."""

from __future__ import annotations

import os

import pytest

from lamina.engine import container_resources as res
from lamina.engine.container_resources import NANO
from lamina.errors import UsageError


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("64m", 67108864),
        ("64M", 67108864),
        ("64mb", 67108864),
        ("64MiB", 67108864),
        ("1g", 1073741824),
        ("1t", 1099511627776),
        ("0.1g", 107374182),  # the fraction of a byte dropped
        ("6291456", 6291456),
        ("512b", 512),
        ("64 m", 67108864),
        ("0", 0),
    ],
)
def test_sizes_as_go_units_ram_in_bytes(text: str, size: int) -> None:
    assert res.parse_bytes(text) == size


@pytest.mark.parametrize("text", ["abc", "-1", "1x", "m", "1.5.5m", ""])
def test_bad_sizes_are_dockers_errors(text: str) -> None:
    # docker: invalid argument "abc" for "-m, --memory" flag: invalid size: 'abc'
    with pytest.raises(UsageError, match=f'invalid argument "{text}" for "-m, --memory" flag'):
        res.parse_bytes(text)


def test_memory_swap_takes_minus_one_only() -> None:
    assert res.parse_swap("-1") == -1
    assert res.parse_swap("128m") == 134217728
    # docker: invalid argument "-5" for "--memory-swap" flag: invalid size: '-5'
    with pytest.raises(UsageError, match="for \"--memory-swap\" flag: invalid size: '-5'"):
        res.parse_swap("-5")


@pytest.mark.parametrize(
    ("text", "nano"),
    [("0.5", 500000000), ("1/2", 500000000), ("1e0", 1000000000), ("2", 2000000000),
     ("0.001", 1000000), ("0", 0), ("-1", -1000000000)],
)  # fmt: skip
def test_cpus_as_docker_nano_cpus(text: str, nano: int) -> None:
    assert res.parse_cpus(text) == nano


def test_bad_cpus() -> None:
    # docker: failed to parse abc as a rational number; 0.0000000001: value is too precise
    with pytest.raises(UsageError, match="failed to parse abc as a rational number"):
        res.parse_cpus("abc")
    with pytest.raises(UsageError, match=r"value is too precise"):
        res.parse_cpus("0.0000000001")


def _fields(**kw: int) -> dict[str, object]:
    args = {"memory": 0, "memory_swap": 0, "nano_cpus": 0, "cpu_shares": 0, "pids_limit": 0}
    return res.host_config_fields(**(args | kw))


def test_host_config_fields_as_dockers_inspect() -> None:
    assert _fields() == {
        "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CpuPeriod": 0, "CpuQuota": 0,
        "CpusetCpus": "", "CpusetMems": "", "MemoryReservation": 0, "MemorySwap": 0,
        "PidsLimit": None,
    }  # fmt: skip
    # -m 64m: MemorySwap twice that; --memory-swap -1 kept; --pids-limit 0/-1/-5: null
    assert _fields(memory=64 << 20)["MemorySwap"] == 128 << 20
    assert _fields(memory=64 << 20, memory_swap=-1)["MemorySwap"] == -1
    assert _fields(memory_swap=-1)["MemorySwap"] == -1
    assert _fields(memory=64 << 20, memory_swap=64 << 20)["MemorySwap"] == 64 << 20
    for limit in (0, -1, -5):
        assert _fields(pids_limit=limit)["PidsLimit"] is None
    assert _fields(pids_limit=10)["PidsLimit"] == 10
    assert _fields(cpu_shares=-5)["CpuShares"] == -5  # refused only at start
    assert _fields(memory=6 << 20)["Memory"] == 6 << 20


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"memory": (6 << 20) - 1}, "Minimum memory limit allowed is 6MB"),
        ({"memory": 512}, "Minimum memory limit allowed is 6MB"),
        (
            {"memory": 64 << 20, "memory_swap": 32 << 20},
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ),
        (
            {"memory_swap": 128 << 20},
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ),
    ],
)
def test_the_daemons_refusals(kw: dict[str, int], message: str) -> None:
    with pytest.raises(UsageError) as info:
        _fields(**kw)
    assert str(info.value) == message


def test_cpus_beyond_this_machine() -> None:
    n = len(os.sched_getaffinity(0))
    # docker on 2 CPUs: Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available
    message = f"Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available"
    for nano in (-1, n * res.NANO + 1):
        with pytest.raises(UsageError) as info:
            _fields(nano_cpus=nano)
        assert str(info.value) == message
    assert _fields(nano_cpus=n * res.NANO)["NanoCpus"] == n * res.NANO


def test_run_resources_as_dockers_oci_spec() -> None:
    hc = _fields(memory=64 << 20, nano_cpus=1_500_000_000, cpu_shares=512, pids_limit=100)
    r = res.run_resources(hc)
    assert (r.memory, r.memory_swap, r.cpu_shares) == (64 << 20, 128 << 20, 512)
    assert (r.cpu_quota, r.cpu_period, r.pids_limit) == (150000, 100000, 100)
    empty = res.run_resources(_fields())
    assert (empty.memory, empty.cpu_quota, empty.pids_limit) == (None, None, None)
    # docker run -c -5: "Error response from daemon: shares: invalid argument." (125)
    with pytest.raises(UsageError, match=r"^shares: invalid argument$"):
        res.run_resources(_fields(cpu_shares=-5))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        # docker 20.10 update (and create, for the flags it has), the daemon's words:
        ({"memory": 5 << 20}, "Minimum memory limit allowed is 6MB"),
        (
            {"memory": 64 << 20, "memory_swap": 32 << 20},
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ),
        (
            {"nano_cpus": NANO // 2, "cpu_period": 50000},
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ),
        (
            {"nano_cpus": NANO // 2, "cpu_quota": 20000},
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ),
        (
            {"cpu_period": 500},
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ),
        (
            {"cpu_period": 1_000_001},
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ),
        ({"cpu_quota": 500}, "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
        ({"memory_reservation": 5 << 20}, "Minimum memory reservation allowed is 6MB"),
        (
            {"memory": 32 << 20, "memory_reservation": 48 << 20},
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ),
    ],
)
def test_check_limits_of_an_update(kw: dict[str, int], message: str) -> None:
    limits = {"memory": 0, "memory_swap": 0, "nano_cpus": 0} | kw
    with pytest.raises(UsageError) as info:
        res.check_limits(**limits, update=True)
    assert str(info.value) == message


def test_an_update_may_set_swap_alone_and_a_quota_of_minus_one() -> None:
    # docker update --memory-swap 128m on a container without -m: accepted (its start is then
    # refused, below); --cpu-quota -1: "no quota", kept as -1.
    res.check_limits(memory=0, memory_swap=128 << 20, nano_cpus=0, update=True)
    res.check_limits(memory=0, memory_swap=0, nano_cpus=0, cpu_quota=-1, update=True)
    with pytest.raises(UsageError, match="You should always set the Memory limit"):
        res.check_limits(memory=0, memory_swap=128 << 20, nano_cpus=0)


def test_a_start_checks_what_an_update_left() -> None:
    # docker start after `update --memory-swap 128m` of a container without a memory limit:
    # "You should always set the Memory limit when using Memoryswap limit, see usage" (1);
    # after `update --memory-swap 32m` of one with -m 64m: "Minimum memoryswap limit should
    # be larger than memory limit, see usage".
    with pytest.raises(UsageError, match=r"^You should always set the Memory limit"):
        res.run_resources(_fields() | {"MemorySwap": 128 << 20})
    with pytest.raises(UsageError, match=r"^Minimum memoryswap limit should be larger"):
        res.run_resources(_fields(memory=64 << 20) | {"MemorySwap": 32 << 20})
    # after `update --memory-reservation 48m` then `update -m 32m` (each accepted alone):
    with pytest.raises(UsageError, match=r"^Minimum memory limit can not be less than memory"):
        res.run_resources(_fields(memory=32 << 20) | {"MemoryReservation": 48 << 20})
    r = res.run_resources(_fields(memory=64 << 20) | {"MemoryReservation": 48 << 20})
    assert r.memory_reservation == 48 << 20


def test_a_cfs_period_and_quota_of_their_own_reach_the_spec() -> None:
    # Docker's getCPUResources: CpuPeriod/CpuQuota as set (-1: no quota), else --cpus's.
    r = res.run_resources(_fields() | {"CpuPeriod": 50000, "CpuQuota": 20000})
    assert (r.cpu_period, r.cpu_quota) == (50000, 20000)
    r = res.run_resources(_fields() | {"CpuQuota": -1})
    assert (r.cpu_period, r.cpu_quota) == (None, -1)
    r = res.run_resources(_fields() | {"CpuPeriod": 50000})
    assert (r.cpu_period, r.cpu_quota) == (50000, None)
