"""``--add-host``, ``--dns``, ``--dns-search`` and ``--dns-option``: checked as docker 20.10's
CLI checks them (opts/hosts.go, opts/opts.go: ``invalid argument "V" for "--F" flag: ...``),
and the /etc/hosts lines and /etc/resolv.conf they give, as libnetwork writes them
(etchosts.Build, resolvconf.Build)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from lamina.errors import UsageError

# opts.validateDomain's patterns (opts/opts.go), "(:?" quirks and all.
_ALPHA: Final = re.compile(r"[a-zA-Z]")
_LABEL: Final = r"(?:[a-zA-Z0-9]|(?:[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9]))"
_DOMAIN: Final = re.compile(rf"^({_LABEL}(?:\.{_LABEL})*)\.?\s*$")
# What docker's CLI warns about (cli/command/container/create.go warnOnLocalhostDNS).
_LOCALHOST: Final = re.compile(r"^(127\.[0-9]+\.[0-9]+\.[0-9]+|::1)$")
HOST_GATEWAY: Final = "host-gateway"


def _flag_error(value: str, flag: str, reason: str) -> UsageError:
    return UsageError(f'invalid argument "{value}" for "{flag}" flag: {reason}')


def _ip(text: str) -> str | None:
    """Go's ``net.ParseIP(strings.TrimSpace(text)).String()``; None if it is no IP."""
    import ipaddress  # only when a flag names an address (~1 ms of every create else)

    if "%" in text:
        return None  # Go's ParseIP takes no IPv6 zone
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)  # Go prints a v4-in-v6 address as v4
    return str(ip)


def check_extra_host(value: str) -> str:
    """``--add-host NAME:IP`` (split at the first colon, so an IPv6 address may follow), kept
    as given. ``host-gateway`` needs a bridge's gateway, which lamina has none of: refused
    (docker 20.10 without a bridge writes ``<nil>`` into /etc/hosts)."""
    name, colon, ip = value.partition(":")
    if not colon or not name:
        raise _flag_error(value, "--add-host", f'bad format for add-host: "{value}"')
    if ip == HOST_GATEWAY:
        raise UsageError(
            f"--add-host {value}: host-gateway is a bridge network's gateway, and lamina's "
            "networks (none, host) have none"
        )
    if _ip(ip) is None:
        raise _flag_error(value, "--add-host", f'invalid IP address in add-host: "{ip}"')
    return value


def check_dns(value: str) -> str:
    """``--dns IP``, kept as Go prints the address (``::0:1`` is ``::1``)."""
    ip = _ip(value)
    if ip is None:
        raise _flag_error(value, "--dns", f"{value} is not an ip address")
    return ip


def check_dns_search(value: str) -> str:
    """``--dns-search DOMAIN`` (``.`` for none), a trailing dot dropped, as Docker's CLI."""
    value = value.strip(" ")
    if value == ".":
        return value
    m = _DOMAIN.match(value)
    if _ALPHA.search(value) is None or m is None or len(m.group(1)) >= 255:
        raise _flag_error(value, "--dns-search", f"{value} is not a valid domain")
    return m.group(1)


def localhost_dns(servers: Sequence[str]) -> str | None:
    """The first loopback ``--dns`` (docker's CLI warns that it may fail in containers)."""
    return next((s for s in servers if _LOCALHOST.match(s)), None)


def hosts_lines(extra_hosts: Sequence[str]) -> str:
    """The lines ``--add-host NAME:IP`` adds to /etc/hosts: ``IP<tab>NAME``, the IP as given."""
    return "".join(f"{ip}\t{name}\n" for name, _, ip in (h.partition(":") for h in extra_hosts))


def _lines(content: str) -> list[str]:
    """resolv.conf's lines with ``#`` comments cut off (resolvconf.getLines)."""
    return [line.partition("#")[0] for line in content.split("\n")]


def _last_fields(content: str, keyword: str) -> list[str]:
    found: list[str] = []
    for line in _lines(content):
        fields = line.split()
        if fields[:1] == [keyword]:
            found = fields[1:]
    return found


def _nameservers(content: str) -> list[str]:
    out = []
    for line in _lines(content):
        fields = line.split()
        if len(fields) == 2 and fields[0] == "nameserver" and _ip(fields[1]) is not None:
            out.append(fields[1])
    return out


def resolv_conf_built(
    host_resolv: str, *, dns: Sequence[str], search: Sequence[str], options: Sequence[str]
) -> str:
    """The resolv.conf Docker writes when any of ``--dns``, ``--dns-search``,
    ``--dns-option`` is given: each given list replaces the host file's own (its
    nameservers, last ``search`` line, last ``options`` line), written in that order."""
    servers = list(dns) or _nameservers(host_resolv)
    domains = list(search) or _last_fields(host_resolv, "search")
    opts = list(options) or _last_fields(host_resolv, "options")
    out = []
    if domains and " ".join(domains).strip(" ") != ".":
        out.append("search " + " ".join(domains) + "\n")
    out += [f"nameserver {ns}\n" for ns in servers]
    if opts and " ".join(opts).strip(" "):
        out.append("options " + " ".join(opts) + "\n")
    return "".join(out)
