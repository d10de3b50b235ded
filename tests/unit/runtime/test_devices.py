"""The host side of ``--device`` and ``--device-cgroup-rule``: the spec entries docker 20.10
wrote for the same flags (its config.json under containerd's task dir), and its refusals."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lamina.errors import HostFileError, UsageError
from lamina.runtime.devices import cgroup_rule, devices_from_path, spec_entries
from lamina.runtime.spec import DeviceMapping


def _map(host: str, container: str, perms: str = "rwm") -> DeviceMapping:
    return DeviceMapping(path_on_host=host, path_in_container=container, cgroup_permissions=perms)


def test_a_node_as_dockers_spec_has_it() -> None:
    # docker 20.10, --device /dev/null:/dev/mynull:r: linux.devices
    # [{"path":"/dev/mynull","type":"c","major":1,"minor":3,"fileMode":438,"uid":0,"gid":0}]
    # and the rule {"allow":true,"type":"c","major":1,"minor":3,"access":"r"}.
    st = os.stat("/dev/null")
    nodes, rules = spec_entries([_map("/dev/null", "/dev/mynull", "r")], ["c 42:* rmw"])
    assert nodes == [
        {
            "path": "/dev/mynull",
            "type": "c",
            "major": 1,
            "minor": 3,
            "fileMode": stat.S_IMODE(st.st_mode),
            "uid": st.st_uid,
            "gid": st.st_gid,
        }
    ]
    assert rules == [
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"},
        {"allow": True, "type": "c", "major": 42, "minor": -1, "access": "rmw"},
    ]


def test_a_symlink_is_resolved_and_a_directory_walked(tmp_path: Path) -> None:
    (tmp_path / "null").symlink_to("/dev/null")
    assert devices_from_path(_map(str(tmp_path / "null"), "/dev/n"))[0]["major"] == 1
    # A directory: its nodes (only), at the same place under the container path; symlinks
    # in it are not followed.
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "file").write_text("x")
    (tmp_path / "d" / "link").symlink_to("/dev/null")
    os.mknod(tmp_path / "d" / "sub" / "z", stat.S_IFCHR | 0o640, os.makedev(1, 5))
    os.mknod(tmp_path / "d" / "a", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    nodes = devices_from_path(_map(str(tmp_path / "d"), "/dev/x"))
    assert [(n["path"], n["minor"], n["fileMode"]) for n in nodes] == [
        ("/dev/x/a", 3, 0o600),
        ("/dev/x/sub/z", 5, 0o640),
    ]


@pytest.mark.parametrize(
    ("host", "reason", "status"),
    [
        # docker run: status 127 (its CLI reads "no such file or directory"), else 125.
        ("/nonexistent/dev", "no such file or directory", 127),
        ("/etc/passwd", "not a device node", 1),
        ("/var/empty-dir-for-test", "not a device node", 1),
    ],
)
def test_what_is_no_device_is_refused_in_dockers_words(
    host: str, reason: str, status: int, tmp_path: Path
) -> None:
    if host.startswith("/var/"):
        host = str(tmp_path)  # a directory holding no device node
    with pytest.raises(HostFileError) as err:
        devices_from_path(_map(host, "/dev/x"))
    assert str(err.value) == (
        f'error gathering device information while adding custom device "{host}": {reason}'
    )
    assert err.value.exit_status == status


def test_a_rule_the_daemon_cannot_read() -> None:
    assert cgroup_rule("a *:* rwm") == {
        "allow": True, "type": "a", "major": -1, "minor": -1, "access": "rwm",
    }  # fmt: skip
    with pytest.raises(UsageError) as err:
        cgroup_rule("c 99999999999999999999:1 r")
    assert str(err.value) == (
        "invalid major value in device cgroup rule format: 'c 99999999999999999999:1 r'"
    )
    with pytest.raises(UsageError, match="invalid minor value"):
        cgroup_rule("c 1:9223372036854775808 r")
