"""``--add-host``/``--dns``/``--dns-search``/``--dns-option`` as docker 20.10's CLI checks them
and libnetwork writes them; the expected texts are what docker 20.10.24 printed."""

from __future__ import annotations

import pytest

from lamina.engine.container_config import HOSTS_LOOPBACK, hosts_file, resolv_conf
from lamina.engine.dns_args import (
    check_dns,
    check_dns_search,
    check_extra_host,
    localhost_dns,
    resolv_conf_built,
)
from lamina.errors import UsageError

HOST_RESOLV = (
    "# generated\nsearch a.example b.example\nnameserver 10.0.0.2 # dns\noptions ndots:1\n"
)


@pytest.mark.parametrize(
    ("flag", "check", "value", "reason"),
    [
        ("--add-host", check_extra_host, "foo", 'bad format for add-host: "foo"'),
        ("--add-host", check_extra_host, ":1.2.3.4", 'bad format for add-host: ":1.2.3.4"'),
        ("--add-host", check_extra_host, "foo:bar", 'invalid IP address in add-host: "bar"'),
        ("--dns", check_dns, "x", "x is not an ip address"),
        ("--dns-search", check_dns_search, "-bad", "-bad is not a valid domain"),
        ("--dns-search", check_dns_search, "123", "123 is not a valid domain"),
        ("--dns-search", check_dns_search, "a..b", "a..b is not a valid domain"),
    ],
)
def test_the_clis_refusals(flag: str, check: object, value: str, reason: str) -> None:
    assert callable(check)
    with pytest.raises(UsageError) as err:
        check(value)
    assert str(err.value) == f'invalid argument "{value}" for "{flag}" flag: {reason}'


def test_values_as_docker_keeps_them() -> None:
    # docker inspect: ExtraHosts ["bar: ::1"] (as given), Dns ["::1"] for --dns ::0:1,
    # DnsSearch ["ex.com", "."] for ex.com. and .
    assert check_extra_host("bar: ::1") == "bar: ::1"
    assert check_extra_host("v6:::1") == "v6:::1"
    assert check_dns("::0:1") == "::1"
    assert check_dns(" 9.9.9.9 ") == "9.9.9.9"
    assert check_dns("::ffff:1.2.3.4") == "1.2.3.4"
    assert check_dns_search("ex.com.") == "ex.com"
    assert check_dns_search(".") == "."
    assert localhost_dns(["9.9.9.9", "127.0.0.53", "::1"]) == "127.0.0.53"
    assert localhost_dns(["9.9.9.9"]) is None
    with pytest.raises(UsageError, match="host-gateway"):
        check_extra_host("gw:host-gateway")


def test_hosts_file() -> None:
    # docker run --add-host foo:1.2.3.4 --add-host bar:::1 --add-host 'baz: ::2': the
    # loopback block, then "IP<tab>NAME" in the order given, the IP as given -- with
    # --network host too (without --add-host that network gets the host's own file).
    extra = ["foo:1.2.3.4", "bar:::1", "baz: ::2"]
    lines = "1.2.3.4\tfoo\n::1\tbar\n ::2\tbaz\n"
    for network in ("none", "host"):
        assert hosts_file(network=network, host_hosts="H\n", extra_hosts=extra) == (
            HOSTS_LOOPBACK + lines
        )
    assert hosts_file(network="host", host_hosts="H\n") == "H\n"


def test_resolv_conf_built() -> None:
    # docker run --dns 9.9.9.9 --dns 1.1.1.1 --dns-search ex.com --dns-search b.org
    # --dns-option ndots:2 --dns-option rotate (either network):
    assert resolv_conf(
        network="host",
        host_resolv=HOST_RESOLV,
        dns=["9.9.9.9", "1.1.1.1"],
        search=["ex.com", "b.org"],
        options=["ndots:2", "rotate"],
    ) == ("search ex.com b.org\nnameserver 9.9.9.9\nnameserver 1.1.1.1\noptions ndots:2 rotate\n")
    # One list given: the others are the host file's (comments cut off).
    assert resolv_conf_built(HOST_RESOLV, dns=["9.9.9.9"], search=(), options=()) == (
        "search a.example b.example\nnameserver 9.9.9.9\noptions ndots:1\n"
    )
    # --dns-search . and --dns-option '' write no search and no options line.
    assert resolv_conf_built(HOST_RESOLV, dns=(), search=["."], options=[""]) == (
        "nameserver 10.0.0.2\n"
    )
