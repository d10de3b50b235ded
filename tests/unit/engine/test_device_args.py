"""``--device`` and ``--device-cgroup-rule`` as docker 20.10's CLI reads them; the expected
values are what docker 20.10.24 printed (``docker create --device V busybox``, then
``docker inspect -f '{{json .HostConfig.Devices}}'``), and its refusals' words."""

from __future__ import annotations

import pytest

from lamina.engine.device_args import check_cgroup_rule, device_mapping, host_config_fields
from lamina.errors import UsageError


def _dev(host: str, container: str, perms: str = "rwm") -> dict[str, str]:
    return {"PathOnHost": host, "PathInContainer": container, "CgroupPermissions": perms}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/dev/fuse", _dev("/dev/fuse", "/dev/fuse")),
        ("/dev/null:/dev/mynull:r", _dev("/dev/null", "/dev/mynull", "r")),
        # one part: cleaned
        ("/dev/../dev/null", _dev("/dev/null", "/dev/null")),
        ("/dev/null/", _dev("/dev/null", "/dev/null")),
        # two parts, the second a path: that one cleaned, the host's as given
        ("/dev/null:/dev/x/", _dev("/dev/null", "/dev/x")),
        ("/dev/../dev/null:/x", _dev("/dev/../dev/null", "/x")),
        ("/dev/null:/dev/a/b/c", _dev("/dev/null", "/dev/a/b/c")),
        # two parts, the second a mode: the host path cleaned, in the container alike
        ("/dev/./null:rw", _dev("/dev/null", "/dev/null", "rw")),
        ("/dev/null:m", _dev("/dev/null", "/dev/null", "m")),
        # three parts: as given
        ("/dev/null:/dev/x/:r", _dev("/dev/null", "/dev/x/", "r")),
        ("/dev/null:/dev/x:mwr", _dev("/dev/null", "/dev/x", "mwr")),
    ],
)
def test_devices_as_hostconfig_holds_them(value: str, expected: dict[str, str]) -> None:
    assert device_mapping(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("/dev/null:/dev/x:rwx", "bad mode specified: rwx"),
        ("/dev/null:/dev/x:rr", "bad mode specified: rr"),
        ("/dev/null:/dev/x:", "bad mode specified: "),
        ("/dev/null:x", "x is not an absolute path"),
        ("/dev/null:", " is not an absolute path"),
        ("/dev/null:dev/x", "dev/x is not an absolute path"),
        ("dev/null", "dev/null is not an absolute path"),
        ("/dev/null:/dev/x:rw:q", "bad format for path: /dev/null:/dev/x:rw:q"),
        (":/dev/x", "bad format for path: :/dev/x"),
    ],
)
def test_device_refusals(value: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        device_mapping(value)
    assert str(err.value) == message


def test_cgroup_rules() -> None:
    for rule in ("c 42:* rmw", "a *:* rwm", "b 7:0 r", "c 1:3 rrr", "c 99999999999999999999:1 r"):
        assert check_cgroup_rule(rule) == rule  # the numbers are the daemon's to read, at start
    for rule in ("x", "c 1:3  r", "c 1:3 rwmx", "d 1:3 r", "c 1:3 r\n", "c -1:3 r"):
        with pytest.raises(UsageError) as err:
            check_cgroup_rule(rule)
        assert str(err.value) == (
            f'invalid argument "{rule}" for "--device-cgroup-rule" flag: '
            f"invalid device cgroup format '{rule}'"
        )


def test_zero_values_are_dockers() -> None:
    # docker inspect of a container created without either flag: "Devices": [],
    # "DeviceCgroupRules": null.
    assert host_config_fields([], []) == {"Devices": [], "DeviceCgroupRules": None}
