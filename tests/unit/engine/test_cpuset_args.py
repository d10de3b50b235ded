"""``--cpuset-cpus`` and ``--cpuset-mems`` as docker 20.10's daemon checks them; the words
are the ones it printed (this host: cpuset.cpus "0-1", cpuset.mems "0")."""

from __future__ import annotations

import re

import pytest

from lamina.engine import cpuset_args
from lamina.engine.cpuset_args import check_cpuset, parse_list
from lamina.errors import UsageError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", set()),
        ("1", {1}),
        ("0-2,5", {0, 1, 2, 5}),
        ("01", {1}),
        ("+1", {1}),  # Go's Atoi takes a sign (runc's write to the kernel then fails)
        ("3-3", {3}),
        ("0-1,1", {0, 1}),
    ],
)
def test_lists(value: str, expected: set[int]) -> None:
    assert parse_list(value, maximum=8192) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a", "invalid format: a"),
        ("0-a", "invalid format: 0-a"),
        ("1-0", "invalid format: 1-0"),
        ("0-", "invalid format: 0-"),
        ("-1", "invalid format: -1"),
        ("0, 1", "invalid format: 0, 1"),
        (",", "invalid format: ,"),
        ("0,,1", "invalid format: 0,,1"),
        ("9999", "value of out range, maximum is 8192"),  # Docker's words
        ("0-9000", "value of out range, maximum is 8192"),
    ],
)
def test_refused_lists(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_list(value, maximum=8192)


def test_the_hosts_cpus_and_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpuset_args, "host_cpuset", lambda: ("0-1", "0"))
    check_cpuset("0,1", "0")
    check_cpuset("", "")
    for cpus, mems, message in (
        ("0-3", "", "Requested CPUs are not available - requested 0-3, available: 0-1"),
        ("", "1", "Requested memory nodes are not available - requested 1, available: 0"),
        ("x", "", "Invalid value x for cpuset cpus: invalid format: x"),
        ("", "x", "Invalid value x for cpuset mems: invalid format: x"),
        ("5", "x", "Requested CPUs are not available - requested 5, available: 0-1"),
    ):
        with pytest.raises(UsageError) as err:
            check_cpuset(cpus, mems)
        assert str(err.value) == message


def test_the_host_is_read_from_its_cpuset_hierarchy() -> None:
    cpus, mems = cpuset_args.host_cpuset()
    assert parse_list(cpus) and parse_list(mems)  # this host has CPUs and a node 0
