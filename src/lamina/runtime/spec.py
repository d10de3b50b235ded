"""From what the user asked (:class:`RunSpec`) to an OCI runtime bundle (``config.json``).

``build_spec(run, rootfs=...)`` makes a runtime-spec 1.0 config with Docker's defaults
(:mod:`lamina.runtime.defaults`, :mod:`lamina.runtime.seccomp`): mount, PID, UTS and IPC
namespaces, plus a network namespace holding only ``lo`` unless the network is the host's;
the 14 default capabilities in the bounding/effective/permitted sets, inheritable and ambient
empty (Docker since 20.10.14, CVE-2022-24769); the default seccomp profile, masked and read-only
paths unless privileged; rlimits never above the host's hard limits, because root here lacks
CAP_SYS_RESOURCE and runc fails on any ``setrlimit`` that would raise one. The user is resolved
against the image's ``/etc/passwd`` and ``/etc/group`` (:mod:`lamina.runtime.users`).

``write_bundle(bundle_dir, spec)`` writes ``config.json`` atomically.
"""

from __future__ import annotations

import enum
import json
import math
import os
import resource
from pathlib import Path
from typing import Any, Final

from msgspec import Struct, field

from lamina.atomic import write_atomic
from lamina.errors import UsageError
from lamina.runtime import defaults, seccomp
from lamina.runtime.cgroups import Resources, linux_resources
from lamina.runtime.signals import signal_name, signal_number
from lamina.runtime.users import additional_groups, resolve_user

OCI_VERSION: Final = "1.0.2"
CONFIG_NAME: Final = "config.json"
STOP_SIGNAL_ANNOTATION: Final = "org.lamina.stop-signal"
# --group-add, for exec -u to add them as Docker's exec does (a JSON list of names/ids).
GROUP_ADD_ANNOTATION: Final = "org.lamina.group-add"
# --log-driver/--log-opt, for the shim: a JSON LogOptions (absent: json-file, no rotation).
LOG_ANNOTATION: Final = "org.lamina.log"

# In RunSpec.namespaces: the host's namespace (none of the container's own).
HOST_NAMESPACE: Final = ""

# What a container gets when nothing is asked for: containerd's default (1048576), clamped.
DEFAULT_NOFILE: Final = 1 << 20
_RLIM_INFINITY_U64: Final = 2**64 - 1


class NetworkMode(enum.Enum):
    NONE = "none"  # a private network namespace with only loopback
    HOST = "host"  # the host's network namespace


class MountSpec(Struct, frozen=True, kw_only=True):
    """A bind mount into the container (``-v /host:/path[:ro]`` or a volume's ``_data``)."""

    source: Path
    destination: str
    readonly: bool = False
    propagation: str = "rprivate"  # --mount's bind-propagation
    recursive: bool = True  # rbind; bind-nonrecursive: bind

    @property
    def options(self) -> list[str]:
        return ["rbind" if self.recursive else "bind", self.propagation, _rw(self.readonly)]


def _rw(readonly: bool) -> str:
    return "ro" if readonly else "rw"


class TmpfsSpec(Struct, frozen=True, kw_only=True):
    """A tmpfs mounted into the container (``--tmpfs``, ``--mount type=tmpfs``)."""

    destination: str
    options: tuple[str, ...]  # mount options and tmpfs data (size=, mode=, ...)


class DeviceMapping(Struct, frozen=True, kw_only=True):
    """One ``--device`` as HostConfig.Devices keeps it (:mod:`lamina.runtime.devices`)."""

    path_on_host: str
    path_in_container: str
    cgroup_permissions: str  # "rwm", "r", ...


class Rlimit(Struct, frozen=True, kw_only=True):
    """``--ulimit name=soft:hard``; ``name`` as ``nofile`` or ``RLIMIT_NOFILE``."""

    name: str
    soft: int
    hard: int


class RunSpec(Struct, frozen=True, kw_only=True):
    """Everything about a container's process that the runtime needs, in Docker's terms."""

    args: tuple[str, ...]
    env: tuple[str, ...] = ()  # "KEY=value"; the image's env merged with -e by the caller
    cwd: str = "/"
    user: str = ""  # "", "name", "uid", "name:group", "uid:gid"
    hostname: str = ""
    network: NetworkMode = NetworkMode.NONE
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    no_new_privileges: bool = False  # off by default, as Docker: it breaks setuid tools
    readonly_rootfs: bool = False
    mounts: tuple[MountSpec, ...] = ()
    tmpfs: tuple[TmpfsSpec, ...] = ()  # mounted after the binds at a destination
    group_add: tuple[str, ...] = ()  # --group-add: group names or ids, added to the user's
    shm_size: int | None = None  # /dev/shm's size in bytes (None: Docker's 64 MiB)
    tty: bool = False
    console_size: tuple[int, int] | None = None  # (rows, columns) of the terminal, with tty
    rlimits: tuple[Rlimit, ...] = ()
    stop_signal: str = "SIGTERM"
    cgroups_path: str | None = None  # None: runc's default (a cgroup named after the id)
    resources: Resources | None = None  # cgroup limits (-m, --cpus, ...); None: the defaults
    devices: tuple[DeviceMapping, ...] = ()  # --device: host nodes made in the container
    # pid/ipc/uts namespaces that are not the container's own: HOST_NAMESPACE, or the path of
    # another's to join (/proc/PID/ns/ipc); a type not here gets a new one.
    namespaces: dict[str, str] = field(default_factory=dict)
    shm: Path | None = None  # bound at /dev/shm instead of a tmpfs (--ipc host|shareable|...)
    no_shm: bool = False  # --ipc none: no /dev/shm at all
    sysctls: dict[str, str] = field(default_factory=dict)  # --sysctl, over the defaults
    oom_score_adj: int = 0  # the OOM killer's bias for the container's processes
    domainname: str = ""  # the UTS namespace's NIS domain name (--domainname), as a sysctl
    device_cgroup_rules: tuple[str, ...] = ()  # --device-cgroup-rule "c 1:3 rwm"
    annotations: dict[str, str] = field(default_factory=dict)


def normalize_capability(name: str) -> str:
    """``net_admin``, ``NET_ADMIN``, ``CAP_NET_ADMIN`` -> ``CAP_NET_ADMIN``; ``all`` -> ``ALL``."""
    upper = name.strip().upper()
    if upper == "ALL":
        return "ALL"
    full = upper if upper.startswith("CAP_") else f"CAP_{upper}"
    if full not in defaults.ALL_CAPABILITIES:
        raise UsageError(f"unknown capability: {name!r}")
    return full


def _host_capabilities() -> set[str]:
    """The capabilities this process may hand on (its permitted set)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("CapPrm:"):
                    mask = int(line.split()[1], 16)
                    return {c for i, c in enumerate(defaults.ALL_CAPABILITIES) if mask >> i & 1}
    except OSError:
        pass
    return set(defaults.ALL_CAPABILITIES)


def capabilities(
    *, privileged: bool, cap_add: tuple[str, ...], cap_drop: tuple[str, ...]
) -> list[str]:
    """The container's capability set, by moby's ``TweakCapabilities`` rules (an add wins).

    ``--privileged`` means every capability lamina itself holds: asking runc for one it lacks
    (CAP_SYS_RESOURCE here) would fail the start."""
    if privileged:
        host = _host_capabilities()
        return [c for c in defaults.ALL_CAPABILITIES if c in host]
    adds = [normalize_capability(c) for c in cap_add]
    drops = [normalize_capability(c) for c in cap_drop]
    if "ALL" in adds:
        return [c for c in defaults.ALL_CAPABILITIES if c not in drops]
    caps = [] if "ALL" in drops else [c for c in defaults.DEFAULT_CAPABILITIES if c not in drops]
    for c in adds:
        if c not in caps:
            caps.append(c)
    return caps


def _rlimit_const(name: str) -> tuple[str, int]:
    upper = name.strip().upper()
    full = upper if upper.startswith("RLIMIT_") else f"RLIMIT_{upper}"
    const = getattr(resource, full, None)
    if not isinstance(const, int):
        raise UsageError(f"unknown rlimit: {name!r}")
    return full, const


def _limit(value: int) -> float:
    """An rlimit value on a line where "unlimited" (-1 or RLIM_INFINITY) sorts above all."""
    return math.inf if value < 0 or value == resource.RLIM_INFINITY else value


def _u64(value: float) -> int:
    return _RLIM_INFINITY_U64 if value == math.inf else int(value)


def rlimits(requested: tuple[Rlimit, ...]) -> list[dict[str, Any]]:
    """``process.rlimits``: the requested ones plus a default RLIMIT_NOFILE, each hard limit
    clamped to the host's and each soft limit to its hard limit. -1 means unlimited."""
    wanted: dict[str, tuple[int, int]] = {}
    for r in requested:
        name, _ = _rlimit_const(r.name)
        wanted[name] = (r.soft, r.hard)
    wanted.setdefault("RLIMIT_NOFILE", (DEFAULT_NOFILE, DEFAULT_NOFILE))
    out: list[dict[str, Any]] = []
    for name, (soft, hard) in wanted.items():
        _, const = _rlimit_const(name)
        hard_v = min(_limit(hard), _limit(resource.getrlimit(const)[1]))
        soft_v = min(_limit(soft), hard_v)
        out.append({"type": name, "hard": _u64(hard_v), "soft": _u64(soft_v)})
    return out


def unreachable_hard_limit(name: str, hard: int) -> int | None:
    """This process's own hard limit of ``name`` when ``hard`` (-1: unlimited) is above it
    and it lacks CAP_SYS_RESOURCE to raise it (runc's setrlimit would fail); else None."""
    _, const = _rlimit_const(name)
    host_hard = resource.getrlimit(const)[1]
    if _limit(hard) <= _limit(host_hard) or "CAP_SYS_RESOURCE" in _host_capabilities():
        return None
    return host_hard


def _check_destination(dest: str) -> str:
    if not dest.startswith("/") or ".." in dest.split("/"):
        raise UsageError(
            f"invalid mount destination {dest!r}: must be an absolute path without '..'"
        )
    return "/" + "/".join(p for p in dest.split("/") if p)


def _mounts(run: RunSpec) -> list[dict[str, Any]]:
    user: list[dict[str, Any]] = []
    for m in run.mounts:
        dest = _check_destination(m.destination)
        if not m.source.is_absolute():
            raise UsageError(f"bind source {str(m.source)!r} must be an absolute path")
        if not m.source.exists():
            raise UsageError(f"bind source path does not exist: {m.source}")
        user.append(
            {"destination": dest, "type": "bind", "source": str(m.source), "options": m.options}
        )
    for t in run.tmpfs:
        user.append(
            {
                "destination": _check_destination(t.destination),
                "type": "tmpfs",
                "source": "tmpfs",
                "options": list(t.options),
            }
        )
    taken = {m["destination"] for m in user}
    base = []
    for mount in defaults.default_mounts(privileged=run.privileged, shm_size=run.shm_size):
        if mount["destination"] == "/dev/shm" and run.no_shm:
            continue
        if mount["destination"] == "/dev/shm" and run.shm is not None:
            mount = {
                "destination": "/dev/shm",
                "type": "bind",
                "source": str(run.shm),
                "options": ["rbind", "rprivate"],
            }
        if mount["destination"] not in taken:
            base.append(mount)
    # Parents before children, so /data/sub is mounted on top of /data, not under it.
    user.sort(key=lambda m: m["destination"].count("/"))
    return base + user


def rootfs_propagation(mounts: tuple[MountSpec, ...]) -> str | None:
    """The rootfs propagation a shared or slave bind needs, as Docker sets it (shared wins);
    such a bind's source must sit on a mount that is shared (or, for slave, a slave),
    else UsageError in Docker's words."""
    wanted: str | None = None
    for m in mounts:
        kind = m.propagation.removeprefix("r")
        if kind not in ("shared", "slave"):
            continue
        from lamina.driver.mountinfo import mount_of

        found = mount_of(m.source)
        target, tags = (
            ("/", frozenset[str]()) if found is None else (found.target, found.propagation_tags)
        )
        if kind == "shared" and "shared" not in tags:
            raise UsageError(f"path {m.source} is mounted on {target} but it is not a shared mount")
        if kind == "slave" and not ({"shared", "master"} & tags):
            raise UsageError(
                f"path {m.source} is mounted on {target} but it is not a shared or slave mount"
            )
        if kind == "shared":
            wanted = "shared"
        elif wanted is None:
            wanted = "rslave"
    return wanted


def _env(run: RunSpec, *, home: str) -> list[str]:
    keys = {e.partition("=")[0] for e in run.env}
    env = list(run.env)
    if "PATH" not in keys:
        env.insert(0, f"PATH={defaults.DEFAULT_PATH}")
    if run.hostname and "HOSTNAME" not in keys:
        env.insert(1, f"HOSTNAME={run.hostname}")
    if run.tty and "TERM" not in keys:
        env.append("TERM=xterm")
    if "HOME" not in keys:
        env.append(f"HOME={home}")
    return env


def _network_sysctls() -> dict[str, str]:
    """What Docker 20.10 sets in a network namespace of the container's own: ping without
    CAP_NET_RAW for every group, and (on kernels that have it: 4.11 and later) any port
    bound without CAP_NET_BIND_SERVICE."""
    out = {"net.ipv4.ping_group_range": "0 2147483647"}
    if os.path.exists("/proc/sys/net/ipv4/ip_unprivileged_port_start"):
        out["net.ipv4.ip_unprivileged_port_start"] = "0"
    return out


def build_spec(run: RunSpec, *, rootfs: Path) -> dict[str, Any]:
    """The runtime-spec ``config.json`` for ``run`` over the prepared ``rootfs`` directory.

    Raises UsageError for a bad capability, rlimit, signal, mount or user (UnknownUserError)."""
    if not run.args:
        raise UsageError("no command specified")
    if not run.cwd.startswith("/"):
        raise UsageError(f"the working directory {run.cwd!r} is not an absolute path")
    user = resolve_user(run.user, rootfs=rootfs)
    caps = capabilities(privileged=run.privileged, cap_add=run.cap_add, cap_drop=run.cap_drop)
    proc_user: dict[str, Any] = {"uid": user.uid, "gid": user.gid}
    gids = [*user.additional_gids, *additional_groups(run.group_add, rootfs=rootfs)]
    if gids:
        proc_user["additionalGids"] = gids
    process: dict[str, Any] = {
        "terminal": run.tty,
        "user": proc_user,
        "args": list(run.args),
        "env": _env(run, home=user.home),
        "cwd": run.cwd,
        "capabilities": {
            "bounding": caps,
            "effective": caps,
            "permitted": caps,
            "inheritable": [],
            "ambient": [],
        },
        "rlimits": rlimits(run.rlimits),
        "noNewPrivileges": run.no_new_privileges,
        "oomScoreAdj": run.oom_score_adj,
    }
    if run.tty and run.console_size is not None:
        # Set by runc before the process starts, so its first look at the size is right.
        rows, cols = run.console_size
        process["consoleSize"] = {"height": rows, "width": cols}
    namespaces: list[dict[str, str]] = [{"type": "mount"}]
    for kind in ("pid", "uts", "ipc"):
        path = run.namespaces.get(kind)
        if path != HOST_NAMESPACE:
            namespaces.append({"type": kind, **({"path": path} if path else {})})
    if run.network is NetworkMode.NONE:
        namespaces.append({"type": "network"})
    device_rules = defaults.device_cgroup_rules(privileged=run.privileged)
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "resources": {
            "devices": device_rules,
            **(linux_resources(run.resources) if run.resources is not None else {}),
        },
    }
    if run.devices or run.device_cgroup_rules:
        from lamina.runtime.devices import spec_entries

        nodes, allowed = spec_entries(run.devices, run.device_cgroup_rules)
        linux["devices"] = nodes
        # Privileged, every device is allowed already (Docker ignores both flags then, as
        # it gives the container every host node; lamina gives it none of its own, so the
        # nodes asked for are made all the same).
        if not run.privileged:
            device_rules += allowed
    sysctl = _network_sysctls() if run.network is NetworkMode.NONE else {}
    if run.domainname:  # as Docker sets it: runc refuses it in the host's UTS namespace
        sysctl["kernel.domainname"] = run.domainname
    sysctl.update(run.sysctls)
    if sysctl:
        linux["sysctl"] = sysctl
    if run.cgroups_path is not None:
        linux["cgroupsPath"] = run.cgroups_path
    if not run.privileged:
        linux["maskedPaths"] = list(defaults.MASKED_PATHS)
        linux["readonlyPaths"] = list(defaults.READONLY_PATHS)
        linux["seccomp"] = seccomp.default_profile(capabilities=caps)
    propagation = rootfs_propagation(run.mounts)
    if propagation is not None:
        linux["rootfsPropagation"] = propagation
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": str(rootfs), "readonly": run.readonly_rootfs},
        # runc sets no hostname in the host's UTS namespace (Docker leaves it out then).
        **(
            {}
            if run.namespaces.get("uts") == HOST_NAMESPACE
            else {"hostname": run.hostname or os.uname().nodename}
        ),
        "mounts": _mounts(run),
        "linux": linux,
        "annotations": {
            **run.annotations,
            **({GROUP_ADD_ANNOTATION: json.dumps(run.group_add)} if run.group_add else {}),
            STOP_SIGNAL_ANNOTATION: signal_name(signal_number(run.stop_signal, what="stop signal")),
        },
    }
    return spec


def write_bundle(bundle_dir: Path, spec: dict[str, Any]) -> None:
    """Write ``bundle_dir/config.json`` (dir made 0700 if missing); atomic, replaces any old one."""
    bundle_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Compact, as containerd writes it: the indenting encoder is pure Python (~2 ms a start);
    # `jq . config.json` shows it laid out.
    data = json.dumps(spec, separators=(",", ":")).encode() + b"\n"
    write_atomic(bundle_dir / CONFIG_NAME, data, mode=0o600, durable=False)


def read_bundle(bundle_dir: Path) -> dict[str, Any]:
    """The ``config.json`` of a bundle written by :func:`write_bundle`."""
    with open(bundle_dir / CONFIG_NAME, "rb") as f:
        spec: dict[str, Any] = json.load(f)
    return spec
