"""Host devices a container is given (``--device``) and the device cgroup rules it adds
(``--device-cgroup-rule``), made into the OCI spec's ``linux.devices`` and
``linux.resources.devices`` as Docker 20.10's daemon makes them at each start
(``oci.DevicesFromPath``, ``oci.AppendDevicePermissionsFromCgroupRules``).

runc does the rest, as under Docker: it makes each node in the container (``mknod``, with the
host node's mode and owner; a path the image already holds is left as it is) and writes the
cgroup rules after its default ones.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from lamina.errors import HostFileError, UsageError, go_strerror

if TYPE_CHECKING:
    from lamina.runtime.spec import DeviceMapping

# What a rule must look like by the time the daemon reads it (the CLI checked it already).
_RULE: Final = re.compile(r"([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})")
_INT64_MAX: Final = (1 << 63) - 1
# runc's device types by file type: a FIFO is one too (runc then refuses it in the cgroup,
# "invalid cgroup device type \"p\"", as under Docker).
_TYPES: Final = {stat.S_IFCHR: "c", stat.S_IFBLK: "b", stat.S_IFIFO: "p"}


def _node(path: str, *, in_container: str) -> dict[str, Any] | None:
    """The ``linux.devices`` entry for the node at ``path`` (not followed if a symlink);
    None if it is no device node. Raises OSError when it cannot be looked at."""
    st = os.lstat(path)
    kind = _TYPES.get(stat.S_IFMT(st.st_mode))
    if kind is None:
        return None
    return {
        "path": in_container,
        "type": kind,
        "major": os.major(st.st_rdev),
        "minor": os.minor(st.st_rdev),
        "fileMode": st.st_mode & ~stat.S_IFMT(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
    }


def devices_from_path(device: DeviceMapping) -> list[dict[str, Any]]:
    """The ``linux.devices`` entries ``device`` gives the container, as Docker's
    ``DevicesFromPath``: the host node (a symlink to it resolved), or, when the host path is
    a directory, every device node under it (walked in lexical order, symlinks in it not
    followed), each at the same place under the container path. Raises HostFileError in
    Docker's words when there is none."""
    host = device.path_on_host
    resolved = host
    if os.path.islink(host):
        # A dangling link is looked at as it is (no device node), as after Go's EvalSymlinks.
        with contextlib.suppress(OSError):
            resolved = os.path.realpath(host, strict=True)
    try:
        node = _node(resolved, in_container=device.path_in_container)
    except OSError as exc:
        reason = go_strerror(exc.errno) if exc.errno else str(exc)
        raise _gathering_error(host, reason, exc.errno) from exc
    if node is not None:
        return [node]
    found: list[dict[str, Any]] = []
    if os.path.isdir(resolved):
        _walk(resolved, lambda path: path.replace(resolved, device.path_in_container, 1), found)
    if found:
        return found
    raise _gathering_error(host, "not a device node", None)


def _walk(directory: str, in_container: Callable[[str], str], out: list[dict[str, Any]]) -> None:
    """Go's ``filepath.Walk`` below ``directory``, keeping the device nodes: what cannot be
    read or looked at is skipped, as Docker's walk skips it."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return
    for name in names:
        path = os.path.join(directory, name)
        try:
            node = _node(path, in_container=in_container(path))
        except OSError:
            continue
        if node is not None:
            out.append(node)
        elif os.path.isdir(path) and not os.path.islink(path):
            _walk(path, in_container, out)


def _gathering_error(host: str, reason: str, code: int | None) -> HostFileError:
    return HostFileError(
        f'error gathering device information while adding custom device "{host}": {reason}',
        errno=code,
    )


def cgroup_rule(rule: str) -> dict[str, Any]:
    """A ``--device-cgroup-rule`` as the spec's allow rule (``*``: -1, any). Raises
    UsageError in the daemon's words (at start, as Docker's) for a number Go cannot hold."""
    m = _RULE.fullmatch(rule)
    if m is None:
        raise UsageError(f"invalid device cgroup rule format: '{rule}'")
    kind, major, minor, access = m.groups()
    out: dict[str, Any] = {"allow": True, "type": kind}
    for key, text in (("major", major), ("minor", minor)):
        value = -1 if text == "*" else int(text)
        if value > _INT64_MAX:
            raise UsageError(f"invalid {key} value in device cgroup rule format: '{rule}'")
        out[key] = value
    out["access"] = access
    return out


def spec_entries(
    devices: Sequence[DeviceMapping], rules: Sequence[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(``linux.devices``, the cgroup allow rules to append after the default ones) for the
    container's devices and rules, in Docker's order: each device's rule in turn (its
    ``--device`` permissions), then the ``--device-cgroup-rule`` ones."""
    nodes: list[dict[str, Any]] = []
    allow: list[dict[str, Any]] = []
    for d in devices:
        for node in devices_from_path(d):
            nodes.append(node)
            allow.append(
                {"allow": True, "type": node["type"], "major": node["major"],
                 "minor": node["minor"], "access": d.cgroup_permissions}
            )  # fmt: skip
    allow += [cgroup_rule(r) for r in rules]
    return nodes, allow
