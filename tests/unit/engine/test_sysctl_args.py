"""``--sysctl`` as docker 20.10's CLI reads it; the words are the ones it printed."""

from __future__ import annotations

import pytest

from lamina.engine.sysctl_args import check_sysctl, sysctls
from lamina.errors import UsageError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("net.ipv4.ip_forward=1", ("net.ipv4.ip_forward", "1")),
        ("net.ipv4.ip_forward=1=2", ("net.ipv4.ip_forward", "1=2")),  # runc's to refuse
        ("net.ipv4.ip_forward= 1", ("net.ipv4.ip_forward", " 1")),
        ("net.nosuch=", ("net.nosuch", "")),
        ("kernel.sem=250 32000 32 128", ("kernel.sem", "250 32000 32 128")),
        ("kernel.shm_rmid_forced=1", ("kernel.shm_rmid_forced", "1")),
        ("fs.mqueue.msg_max=20", ("fs.mqueue.msg_max", "20")),
    ],
)
def test_namespaced_sysctls(value: str, expected: tuple[str, str]) -> None:
    assert check_sysctl(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "kernel.hostname=foo",  # the UTS namespace's, set by --hostname
        "kernel.domainname=foo",
        "vm.swappiness=1",
        "net.ipv4.ip_forward",
        "=1",
        "net/ipv4/ip_forward=1",
        "kernel.shmmax",
        "fs.file-max=10",
    ],
)
def test_what_is_not_whitelisted(value: str) -> None:
    with pytest.raises(UsageError) as err:
        check_sysctl(value)
    assert str(err.value) == (
        f'invalid argument "{value}" for "--sysctl" flag: sysctl \'{value}\' is not whitelisted'
    )


def test_a_later_key_wins_and_they_are_sorted() -> None:
    # docker inspect: {"kernel.shmmax":"1000000","net.ipv4.ip_forward":"0"}
    values = ["net.ipv4.ip_forward=1", "kernel.shmmax=1000000", "net.ipv4.ip_forward=0"]
    assert list(sysctls(values).items()) == [
        ("kernel.shmmax", "1000000"),
        ("net.ipv4.ip_forward", "0"),
    ]
