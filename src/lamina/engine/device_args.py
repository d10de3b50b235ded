"""``--device`` and ``--device-cgroup-rule``, read as docker 20.10's CLI reads them
(opts.ValidateDevice, then parseDevice; opts.ValidateDeviceCgroupRule) into HostConfig's
``Devices`` and ``DeviceCgroupRules``. The host side -- the node looked up, the rule's numbers
read -- is the runtime's, at each start (:mod:`lamina.runtime.devices`), as it is the
daemon's under Docker: a device missing at create is refused by the start."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from lamina.errors import UsageError

# opts.deviceCgroupRuleRegexp: the CLI's check (the daemon reads the numbers at start).
_CGROUP_RULE: Final = re.compile(r"[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}")


def _flag_error(value: str, flag: str, reason: str) -> UsageError:
    return UsageError(f'invalid argument "{value}" for "{flag}" flag: {reason}')


def valid_mode(mode: str) -> bool:
    """opts.validDeviceMode: each of r, w, m at most once, and at least one."""
    return bool(mode) and all(c in "rwm" for c in mode) and len(set(mode)) == len(mode)


def _clean(path: str) -> str:
    """Go's ``path.Clean`` (``""`` is ``"."``)."""
    if not path:
        return "."
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("/") else cleaned


def validated(value: str) -> str:
    """``--device HOST[:CONTAINER][:PERMS]`` as opts.validateLinuxPath keeps it (paths
    cleaned where it cleans them: not in the three-part form); UsageError in its words."""
    if value.count(":") > 2:
        raise UsageError(f"bad format for path: {value}")
    split = value.split(":")
    if split[0] == "":
        raise UsageError(f"bad format for path: {value}")
    if len(split) == 1:
        container = split[0]
        value = _clean(container)
    elif len(split) == 2:
        if valid_mode(split[1]):
            container = split[0]
            value = f"{_clean(container)}:{split[1]}"
        else:
            container = split[1]
            value = f"{split[0]}:{_clean(container)}"
    else:
        container = split[1]
        if not valid_mode(split[2]):
            raise UsageError(f"bad mode specified: {split[2]}")
    if not container.startswith("/"):
        raise UsageError(f"{container} is not an absolute path")
    return value


def device_mapping(value: str) -> dict[str, str]:
    """HostConfig.Devices' entry for one ``--device`` (parseLinuxDevice of the checked value:
    a second part that is a mode is the permissions, else the container path; rwm unless
    given)."""
    parts = validated(value).split(":")
    host, container, permissions = parts[0], "", "rwm"
    if len(parts) == 3:
        permissions = parts[2]
    if len(parts) >= 2:
        if valid_mode(parts[1]):
            permissions = parts[1]
        else:
            container = parts[1]
    return {
        "PathOnHost": host,
        "PathInContainer": container or host,
        "CgroupPermissions": permissions,
    }


def check_cgroup_rule(value: str) -> str:
    """A ``--device-cgroup-rule`` as the CLI takes it: ``TYPE MAJOR:MINOR ACCESS``."""
    if not _CGROUP_RULE.fullmatch(value):
        raise _flag_error(value, "--device-cgroup-rule", f"invalid device cgroup format '{value}'")
    return value


def host_config_fields(devices: Sequence[str], rules: Sequence[str]) -> dict[str, Any]:
    """HostConfig's ``Devices`` (Docker's zero value: []) and ``DeviceCgroupRules`` (null)."""
    return {
        "Devices": [device_mapping(d) for d in devices],
        "DeviceCgroupRules": [check_cgroup_rule(r) for r in rules] or None,
    }


def run_devices(host_config: Mapping[str, Any]) -> dict[str, Any]:
    """The RunSpec fields for the stored Devices and DeviceCgroupRules."""
    from lamina.runtime.spec import DeviceMapping

    return {
        "devices": tuple(
            DeviceMapping(
                path_on_host=d["PathOnHost"],
                path_in_container=d["PathInContainer"],
                cgroup_permissions=d["CgroupPermissions"],
            )
            for d in host_config.get("Devices") or ()
        ),
        "device_cgroup_rules": tuple(host_config.get("DeviceCgroupRules") or ()),
    }
