"""``--ulimit`` and ``--shm-size`` as docker 20.10's CLI reads them; the expected texts are
what docker 20.10.24 printed (``docker create --ulimit V busybox``)."""

from __future__ import annotations

import resource

import pytest

from lamina.engine.limit_args import check_ulimits, merged_ulimits, parse_shm_size, parse_ulimit
from lamina.errors import UsageError


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("nofile", "invalid ulimit argument: nofile"),
        ("bogus=1", "invalid ulimit type: bogus"),
        ("NOFILE=1", "invalid ulimit type: NOFILE"),
        ("nofile=abc", 'strconv.ParseInt: parsing "abc": invalid syntax'),
        ("nofile=1:abc", 'strconv.ParseInt: parsing "abc": invalid syntax'),
        (
            "nofile=1:2:3",
            "too many limit value arguments - 1:2:3, can only have up to two, `soft[:hard]`",
        ),
        ("nofile=5:3", "ulimit soft limit must be less than or equal to hard limit: 5 > 3"),
    ],
)
def test_ulimit_refusals(value: str, reason: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_ulimit(value)
    assert str(err.value) == f'invalid argument "{value}" for "--ulimit" flag: {reason}'


def test_ulimits_as_hostconfig_holds_them() -> None:
    # docker inspect: [{"Name":"nofile","Hard":5,"Soft":5},{"Name":"nproc","Hard":50,...}]
    # for --ulimit nofile=1000:2000 --ulimit nproc=50 --ulimit nofile=5; null without.
    assert merged_ulimits(["nofile=1000:2000", "nproc=50", "nofile=5", "core=-1"]) == [
        {"Name": "nofile", "Hard": 5, "Soft": 5},
        {"Name": "nproc", "Hard": 50, "Soft": 50},
        {"Name": "core", "Hard": -1, "Soft": -1},
    ]
    assert parse_ulimit("core=1:-1") == {"Name": "core", "Hard": -1, "Soft": 1}
    assert merged_ulimits([]) is None


def test_a_ulimit_above_the_hosts_hard_limit_is_refused_before_runc() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    check_ulimits([{"Name": "nofile", "Soft": 1, "Hard": 1}])
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard nofile limit here")
    with open("/proc/self/status") as f:
        caps = int(next(line for line in f if line.startswith("CapPrm:")).split()[1], 16)
    if caps >> 24 & 1:  # CAP_SYS_RESOURCE may raise it
        pytest.skip("this process may raise its hard limits")
    with pytest.raises(UsageError, match="lacks CAP_SYS_RESOURCE"):
        check_ulimits([{"Name": "nofile", "Soft": hard + 1, "Hard": hard + 1}])
    with pytest.raises(UsageError, match="lacks CAP_SYS_RESOURCE"):
        check_ulimits([{"Name": "nofile", "Soft": 1, "Hard": -1}])


def test_shm_size() -> None:
    # docker: HostConfig.ShmSize 1048576 for 1m, 67108864 for 0 (and without the flag);
    # 'invalid argument "abc" for "--shm-size" flag: invalid size: 'abc'' (-1 and 1q alike).
    assert parse_shm_size("1m") == 1 << 20
    assert parse_shm_size("0") == 64 << 20
    for bad in ("abc", "-1", "1q"):
        with pytest.raises(UsageError) as err:
            parse_shm_size(bad)
        assert (
            str(err.value)
            == f'invalid argument "{bad}" for "--shm-size" flag: invalid size: \'{bad}\''
        )
