"""From ``create`` flags and the image config to a container's stored config, and from that to
the runtime's :class:`~lamina.runtime.RunSpec`.

The stored config is shaped as Docker's inspect pieces (``Path``, ``Args``, ``Config``,
``HostConfig``, ``Mounts``) so inspect is a projection of it, not a reconstruction.
"""

from __future__ import annotations

import enum
import os
import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from msgspec import Struct

from lamina.errors import UsageError

if TYPE_CHECKING:
    from lamina.runtime import RunSpec
    from lamina.runtime.logs import LogOptions
    from lamina.runtime.spec import TmpfsSpec


class StopTimeout(enum.Enum):
    """``stop``/``restart`` without ``-t``: the container's ``--stop-timeout``, else Docker's
    default (:data:`DEFAULT_STOP_TIMEOUT`), as Docker's CLI then sends the daemon no timeout."""

    CONTAINER = "container"


DEFAULT_SHM_SIZE: Final = 64 << 20  # Docker's: HostConfig.ShmSize 67108864 unless given
DEFAULT_STOP_TIMEOUT: Final = 10  # seconds: Docker's, for a container without --stop-timeout

# Where a container keeps the destinations of binds it took with --volumes-from that are
# mounted without their submounts (its own say so in HostConfig.Mounts); inspect shows none.
NON_RECURSIVE_KEY: Final = "NonRecursiveBinds"
_NETWORKS: Final = ("none", "host")  # lamina.runtime.NetworkMode values
_NO_NEW_PRIVS: Final = ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=true")


class CreateOptions(Struct, frozen=True, kw_only=True):
    """What ``lamina create``/``run`` was asked, in Docker's flag names."""

    image: str
    command: tuple[str, ...] = ()
    name: str | None = None
    env: tuple[str, ...] = ()
    workdir: str | None = None
    user: str | None = None
    volumes: tuple[str, ...] = ()
    entrypoint: str | None = None  # "" resets the image's entrypoint
    hostname: str | None = None
    network: str = "none"
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    tty: bool = False
    interactive: bool = False
    auto_remove: bool = False
    detach: bool = False
    labels: tuple[str, ...] = ()  # KEY=VALUE (or KEY: an empty value), over the image's
    read_only: bool = False  # --read-only: the rootfs mounted read-only
    init: bool = False  # --init: a static tini as PID 1, forwarding signals and reaping
    stop_signal: str | None = None  # --stop-signal, over the image's STOPSIGNAL
    stop_timeout: int | None = None  # --stop-timeout seconds (negative: wait for the exit)
    # Resource limits, parsed (lamina.engine.container_resources); 0 is unset, as Docker's.
    memory: int = 0  # -m bytes
    memory_swap: int = 0  # --memory-swap bytes of memory+swap (-1: unlimited swap)
    nano_cpus: int = 0  # --cpus in billionths
    cpu_shares: int = 0  # -c
    pids_limit: int = 0  # --pids-limit (0 or less: none)
    cpuset_cpus: str = ""  # --cpuset-cpus "0-2,5"
    cpuset_mems: str = ""  # --cpuset-mems
    mounts: tuple[str, ...] = ()  # --mount specs (type=bind|volume|tmpfs,...)
    tmpfs: tuple[str, ...] = ()  # --tmpfs /path[:options]
    add_host: tuple[str, ...] = ()  # --add-host NAME:IP
    dns: tuple[str, ...] = ()  # --dns IP
    dns_search: tuple[str, ...] = ()  # --dns-search DOMAIN
    dns_option: tuple[str, ...] = ()  # --dns-option OPT
    group_add: tuple[str, ...] = ()  # --group-add NAME|GID
    ulimits: tuple[str, ...] = ()  # --ulimit NAME=SOFT[:HARD]
    shm_size: str | None = None  # --shm-size (64m, ...)
    devices: tuple[str, ...] = ()  # --device HOST[:CONTAINER][:PERMS]
    device_cgroup_rules: tuple[str, ...] = ()  # --device-cgroup-rule "c 1:3 rwm"
    volumes_from: tuple[str, ...] = ()  # --volumes-from CONTAINER[:ro|rw]
    cidfile: str = ""  # --cidfile: where the new container's id is written
    pid: str = ""  # --pid host|container:NAME
    ipc: str = ""  # --ipc none|private|shareable|host|container:NAME ("": private)
    uts: str = ""  # --uts host
    sysctls: tuple[str, ...] = ()  # --sysctl KEY=VALUE
    oom_kill_disable: bool = False  # --oom-kill-disable (the CLI drops it where unsupported)
    oom_score_adj: int = 0  # --oom-score-adj, -1000 to 1000
    domainname: str = ""  # --domainname
    log_driver: str = ""  # --log-driver json-file|none ("": json-file, Docker's default)
    log_opts: tuple[str, ...] = ()  # --log-opt max-size=10m, max-file=3


class VolumeArg(Struct, frozen=True, kw_only=True):
    """One ``-v``: a bind (``source`` absolute), a named volume, or anonymous (no source); or
    a bind or volume ``--mount`` (``long_syntax``), which says the rest in its own fields."""

    source: str | None
    destination: str
    mode: str  # as given: "", "ro", "rw", "z", ...
    long_syntax: bool = False  # from --mount: registered at its destination even if anonymous
    readonly: bool = False  # --mount's readonly (-v says "ro" in its mode)
    propagation: str = "rprivate"  # a bind's
    recursive: bool = True  # a bind's: rbind (bind-nonrecursive: bind)
    no_copy: bool = False  # volume-nocopy: a new volume is not filled from the image
    labels: dict[str, str] = {}  # volume-label: for a volume made here
    driver_options: dict[str, str] = {}  # volume-opt: for a volume made here

    @property
    def is_bind(self) -> bool:
        return self.source is not None and self.source.startswith("/")

    @property
    def read_only(self) -> bool:
        return self.readonly if self.long_syntax else "ro" in self.mode.split(",")


def merged_volumes(
    args: Sequence[VolumeArg], *, tmpfs: Sequence[str] = (), tmpfs_mounts: Sequence[str] = ()
) -> list[VolumeArg]:
    """The ``-v`` args, then the ``--mount`` ones, as Docker's daemon registers them
    (registerMountPoints): a destination taken twice by a bind or named ``-v`` (or by one and
    a ``--tmpfs``), or by a ``--mount`` (``tmpfs_mounts``: its tmpfs ones) and anything but
    an anonymous ``-v`` or a ``--tmpfs``, is refused ("Duplicate mount point"). An anonymous
    ``-v /path`` is a set entry, so repeats are one, and a bind or volume at its destination
    wins (a ``--tmpfs`` there does not: Docker mounts it over the volume)."""
    named: set[str] = set()
    for v in args:
        if v.source is not None and not v.long_syntax:
            if v.destination in named or v.destination in tmpfs:
                raise UsageError(f"Duplicate mount point: {v.destination}")
            named.add(v.destination)
    for dest in [*(v.destination for v in args if v.long_syntax), *tmpfs_mounts]:
        if dest in named:
            raise UsageError(f"Duplicate mount point: {dest}")
        named.add(dest)
    out: list[VolumeArg] = []
    seen: set[str] = set()
    for v in args:  # in the order given
        anonymous = v.source is None and not v.long_syntax
        if anonymous and (v.destination in named or v.destination in seen):
            continue
        out.append(v)
        seen.add(v.destination)
    return out


def parse_volume(spec: str) -> VolumeArg:
    """``-v [SRC:]DST[:MODE]`` as Docker's parser splits it on this platform."""
    parts = spec.split(":")
    if len(parts) == 1:
        src, dst, mode = None, parts[0], ""
    elif len(parts) == 2:
        src, dst, mode = parts[0], parts[1], ""
    elif len(parts) == 3:
        src, dst, mode = parts
    else:
        raise UsageError(f"invalid volume specification: {spec!r}")
    if not dst.startswith("/"):
        raise UsageError(
            f"invalid volume specification: {spec!r}: the destination must be an absolute path"
        )
    if ".." in dst.split("/"):
        raise UsageError(f"invalid volume specification: {spec!r}: '..' in the destination")
    for m in filter(None, mode.split(",")):
        if m not in ("ro", "rw", "z", "Z", "private", "rprivate", "shared", "slave"):
            raise UsageError(f"invalid mode {m!r} in volume specification {spec!r}")
    if src == "":
        raise UsageError(f"invalid volume specification: {spec!r}: empty source")
    dst = "/" + "/".join(p for p in dst.split("/") if p and p != ".")
    if dst == "/":  # Docker's words; a mount over / would replace the whole rootfs
        raise UsageError(f"invalid volume specification: {spec!r}: destination can't be '/'")
    return VolumeArg(source=src, destination=dst, mode=mode)


def parse_env(items: Sequence[str], *, host_env: Mapping[str, str] | None = None) -> list[str]:
    """``-e K=V``; a bare ``-e K`` takes K from lamina's environment (dropped when unset)."""
    env = os.environ if host_env is None else host_env
    out: list[str] = []
    for item in items:
        key, eq, _ = item.partition("=")
        if not key:
            raise UsageError(f"invalid environment variable: {item!r}")
        if eq:
            out.append(item)
        elif key in env:
            out.append(f"{key}={env[key]}")
    return out


def read_kv_file(path: str, *, what: str) -> list[str]:
    """The lines of an ``--env-file``/``--label-file`` as docker's CLI reads them
    (opts.parseKeyValueFile): leading blanks and ``#`` comments skipped, ``KEY=VALUE`` as
    written, a bare ``KEY`` kept for the caller to resolve; a name with blanks, a line without
    one, or bytes that are not UTF-8 are errors naming the file and line."""
    try:
        with open(path, "rb") as f:
            data = f.read((1 << 20) + 1)
    except OSError as exc:
        raise UsageError(f"cannot read the {what} {path}: {exc.strerror}") from None
    if len(data) > 1 << 20:
        raise UsageError(f"the {what} {path} is larger than 1 MiB")
    out: list[str] = []
    for number, raw in enumerate(data.removeprefix(b"\xef\xbb\xbf").split(b"\n"), 1):
        try:
            line = raw.decode("utf-8").rstrip("\r").lstrip()
        except UnicodeDecodeError:
            raise UsageError(
                f"{what} {path} contains invalid utf8 bytes at line {number}"
            ) from None
        if not line or line.startswith("#"):
            continue
        name = line.partition("=")[0]
        if not name:
            raise UsageError(f"{what} {path}: no variable name on line {line!r}")
        if any(c in name for c in " \t\n\v\f\r"):
            raise UsageError(f"{what} {path}: variable {name!r} contains whitespaces")
        out.append(line)
    return out


def merge_labels(base: Mapping[str, str] | None, items: Sequence[str]) -> dict[str, str]:
    """The image's labels with ``-l KEY=VALUE`` (``-l KEY``: empty) overriding by key."""
    labels = dict(base or {})
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid label {item!r}: it needs a name (KEY=VALUE)")
        labels[key] = value
    return labels


def merge_env(base: Sequence[str], extra: Sequence[str]) -> list[str]:
    """The image's env with ``extra`` overriding by key, order kept as Docker keeps it."""
    out = list(base)
    for item in extra:
        key = item.partition("=")[0]
        out = [e for e in out if e.partition("=")[0] != key] + [item]
    return out


def working_dir(path: str) -> str:
    """A ``--workdir`` as Docker keeps it: absolute (refused otherwise) and cleaned as Go's
    ``filepath.Clean`` cleans it (``/a/../b/./c/`` is ``/b/c``)."""
    if not path.startswith("/"):
        raise UsageError(
            f"the working directory {path!r} is invalid, it needs to be an absolute path"
        )
    return "/" + posixpath.normpath(path).lstrip("/")


def command_of(opts: CreateOptions, image_cfg: Mapping[str, Any]) -> tuple[str, list[str]]:
    """(Path, Args) as Docker derives them: entrypoint then cmd; a given command replaces the
    image's Cmd; ``--entrypoint`` replaces the entrypoint and drops the image's Cmd."""
    if opts.entrypoint is not None:
        entrypoint = [opts.entrypoint] if opts.entrypoint else []
        cmd = list(opts.command)
    else:
        entrypoint = list(image_cfg.get("Entrypoint") or [])
        cmd = list(opts.command) or list(image_cfg.get("Cmd") or [])
    argv = entrypoint + cmd
    if not argv:
        raise UsageError("no command specified")
    return argv[0], argv[1:]


def container_config(
    opts: CreateOptions, image_cfg: Mapping[str, Any], *, hostname: str
) -> dict[str, Any]:
    """Docker's ``Config`` of the container (API 1.41 field order)."""
    if opts.entrypoint is not None:
        entrypoint = [opts.entrypoint] if opts.entrypoint else None
        cmd = list(opts.command) or None
    else:
        entrypoint = image_cfg.get("Entrypoint") or None
        cmd = list(opts.command) or image_cfg.get("Cmd") or None
    env = merge_env(image_cfg.get("Env") or [], parse_env(opts.env))
    stop_signal = opts.stop_signal or image_cfg.get("StopSignal")
    if opts.stop_signal:
        from lamina.runtime.signals import signal_number

        signal_number(opts.stop_signal, what="stop signal")  # refused at create, as Docker
    attach = not opts.detach
    return {
        "Hostname": opts.hostname or hostname,
        "Domainname": opts.domainname,
        "User": opts.user if opts.user is not None else image_cfg.get("User", ""),
        "AttachStdin": opts.interactive and attach,
        "AttachStdout": attach,
        "AttachStderr": attach,
        "Tty": opts.tty,
        "OpenStdin": opts.interactive,
        # As Docker's: a stdin attached at the start is closed when that input ends; one
        # kept open with nobody attached (run -di) stays open for every attach.
        "StdinOnce": opts.interactive and attach,
        "Env": env or None,
        "Cmd": cmd,
        "Image": opts.image,
        "Volumes": image_cfg.get("Volumes") or None,
        "WorkingDir": working_dir(opts.workdir)
        if opts.workdir
        else image_cfg.get("WorkingDir", ""),
        "Entrypoint": entrypoint,
        "OnBuild": None,
        "Labels": merge_labels(image_cfg.get("Labels"), opts.labels),
        **({"StopSignal": stop_signal} if stop_signal else {}),
        # Docker's *int: absent unless --stop-timeout was given (0 included).
        **({"StopTimeout": opts.stop_timeout} if opts.stop_timeout is not None else {}),
    }


def stop_timeout(stored: Mapping[str, Any], asked: float | StopTimeout | None) -> float | None:
    """The seconds ``stop`` waits before SIGKILL (None: for the exit, however long): ``asked``
    (``-t``), else the container's ``Config.StopTimeout``, else Docker's 10; negative is
    None, as Docker's daemon waits without end for a negative timeout."""
    if asked is StopTimeout.CONTAINER:
        seconds = stored["Config"].get("StopTimeout")
        asked = float(DEFAULT_STOP_TIMEOUT if seconds is None else seconds)
    return None if asked is None or asked < 0 else asked


def host_config(
    opts: CreateOptions,
    *,
    binds: Sequence[str],
    mounts: Sequence[Mapping[str, Any]] = (),
    tmpfs: Mapping[str, str] | None = None,
    modes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Docker's ``HostConfig``, the fields lamina honours (and Docker's zero values).
    ``mounts``: the ``--mount`` args as the API's ``mount.Mount``; ``tmpfs``: the ``--tmpfs``
    destinations and their options; ``modes``: IpcMode, PidMode and UTSMode as
    :mod:`lamina.engine.namespace_args` resolved them (else Docker's defaults)."""
    modes = {"IpcMode": "private", "PidMode": "", "UTSMode": "", **(modes or {})}
    if opts.network not in _NETWORKS:
        raise UsageError(f"network {opts.network!r} is not supported (use none or host)")
    if opts.cap_add or opts.cap_drop:  # refused at create, as Docker, not at the first start
        from lamina.runtime.spec import normalize_capability

        for cap in (*opts.cap_add, *opts.cap_drop):
            normalize_capability(cap)
    for opt in opts.security_opt:
        if opt not in (*_NO_NEW_PRIVS, "no-new-privileges:false", "no-new-privileges=false"):
            raise UsageError(f"unsupported --security-opt {opt!r}")
    # Each flag's module loads only when the flag is given (a CLI process per command).
    extra_hosts: list[str] = []
    dns: list[str] = []
    dns_search: list[str] = []
    if opts.add_host or opts.dns or opts.dns_search:
        from lamina.engine import dns_args

        extra_hosts = [dns_args.check_extra_host(h) for h in opts.add_host]
        dns = [dns_args.check_dns(ip) for ip in opts.dns]
        dns_search = [dns_args.check_dns_search(d) for d in opts.dns_search]
    resources = resource_fields(opts)
    if opts.oom_score_adj:  # after the resources, as Docker's daemon checks it
        from lamina.engine.oom_args import check_score_adj

        check_score_adj(opts.oom_score_adj)
    ulimits = None
    shm_size = DEFAULT_SHM_SIZE
    if opts.ulimits or opts.shm_size:
        from lamina.engine import limit_args

        ulimits = limit_args.merged_ulimits(opts.ulimits)
        shm_size = limit_args.parse_shm_size(opts.shm_size or "0")
    log_config: dict[str, Any] = {"Type": "json-file", "Config": {}}
    if opts.log_driver or opts.log_opts:
        from lamina.engine.log_args import log_config as checked_log_config

        log_config = checked_log_config(opts.log_driver, opts.log_opts)
    return {
        "Binds": list(binds) or None,
        "ContainerIDFile": opts.cidfile,  # as given (a relative path stays so)
        "LogConfig": log_config,
        "NetworkMode": opts.network,
        "PortBindings": {},
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": opts.auto_remove,
        "VolumeDriver": "",
        "VolumesFrom": list(opts.volumes_from) or None,
        "CapAdd": list(opts.cap_add) or None,
        "CapDrop": list(opts.cap_drop) or None,
        "Dns": dns,  # Docker's: [] when none
        "DnsOptions": list(opts.dns_option),
        "DnsSearch": dns_search,
        "ExtraHosts": extra_hosts or None,
        "GroupAdd": list(opts.group_add) or None,
        "IpcMode": modes["IpcMode"],
        "OomScoreAdj": opts.oom_score_adj,
        "PidMode": modes["PidMode"],
        "Privileged": opts.privileged,
        "ReadonlyRootfs": opts.read_only,
        "Init": True if opts.init else None,  # Docker's *bool: null unless --init
        "SecurityOpt": list(opts.security_opt) or None,
        **({"Tmpfs": dict(sorted(tmpfs.items()))} if tmpfs else {}),  # a Go map: sorted
        "UTSMode": modes["UTSMode"],
        "ShmSize": shm_size,
        **_sysctls(opts.sysctls),
        **resources,
        "Ulimits": ulimits,
        **({"Mounts": [dict(m) for m in mounts]} if mounts else {}),
    }


def _sysctls(values: Sequence[str]) -> dict[str, Any]:
    """HostConfig.Sysctls, which Docker leaves out when there is none."""
    if not values:
        return {}
    from lamina.engine.sysctl_args import sysctls

    return {"Sysctls": sysctls(values)}


def resource_fields(opts: CreateOptions) -> dict[str, Any]:
    """HostConfig's Resources as Docker orders them: CpuShares, Memory, NanoCpus, CpuPeriod,
    CpuQuota, CpusetCpus, CpusetMems, Devices, DeviceCgroupRules, MemoryReservation,
    MemorySwap, OomKillDisable and PidsLimit."""
    from lamina.engine.container_resources import host_config_fields

    fields = host_config_fields(
        memory=opts.memory,
        memory_swap=opts.memory_swap,
        nano_cpus=opts.nano_cpus,
        cpu_shares=opts.cpu_shares,
        pids_limit=opts.pids_limit,
        cpuset_cpus=opts.cpuset_cpus,
        cpuset_mems=opts.cpuset_mems,
    )
    devices: dict[str, Any] = {"Devices": [], "DeviceCgroupRules": None}  # Docker's zeros
    if opts.devices or opts.device_cgroup_rules:
        from lamina.engine import device_args

        devices = device_args.host_config_fields(opts.devices, opts.device_cgroup_rules)
    cpu = ("CpuShares", "Memory", "NanoCpus", "CpuPeriod", "CpuQuota", "CpusetCpus", "CpusetMems")
    memory = ("MemoryReservation", "MemorySwap")
    return {
        **{k: fields.pop(k) for k in cpu},
        **devices,
        **{k: fields.pop(k) for k in memory},
        "OomKillDisable": opts.oom_kill_disable,
        **fields,  # PidsLimit
    }


# Where Docker puts the init of an ``--init`` container, and the host binaries that can be it:
# it must be static (it runs on the image's libc, or none). Debian's docker.io ships tini-static
# as docker-init; the tini package ships tini-static.
INIT_PATH: Final = "/sbin/docker-init"
INIT_BINARIES: Final = ("docker-init", "tini-static")


def find_init() -> Path:
    """The host's static init binary for ``--init``; UsageError naming what to install."""
    import shutil

    for name in INIT_BINARIES:
        found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin")
        if found:
            return Path(found)
    raise UsageError("--init needs a static init binary: install tini (tini-static) or docker-init")


def run_spec(
    stored: Mapping[str, Any],
    *,
    hostname: str,
    host_files: Mapping[str, Path],
    console_size: tuple[int, int] | None = None,
    init: Path | None = None,
    namespaces: Mapping[str, Any] | None = None,
    log: LogOptions | None = None,
) -> RunSpec:
    """The runtime's view of a stored container config. ``host_files`` maps /etc/hostname,
    /etc/hosts, /etc/resolv.conf to the files in the container dir that are bind-mounted.
    With ``Tty`` the process gets a pseudo-terminal of ``console_size`` (rows, columns), if
    known. ``init``: the host's static init binary for an ``--init`` container, bind-mounted
    read-only at Docker's /sbin/docker-init and run as PID 1 before the command (``--``).
    ``namespaces``: the RunSpec fields of its PID, IPC and UTS modes, as
    :func:`lamina.engine.container_namespaces.run_fields` set them up; ``log``: its logging
    driver and rotation for the shim, when not the default (an annotation of the spec)."""
    from lamina.engine.container_resources import run_resources
    from lamina.runtime import MountSpec, NetworkMode, Rlimit, RunSpec

    cfg = stored["Config"]
    hc = stored["HostConfig"]
    devices: dict[str, Any] = {}
    if hc.get("Devices") or hc.get("DeviceCgroupRules"):
        from lamina.engine.device_args import run_devices

        devices = run_devices(hc)
    mounts = [
        MountSpec(source=src, destination=dst, readonly=False) for dst, src in host_files.items()
    ]
    nonrecursive = non_recursive_binds(stored)
    for m in stored.get("Mounts") or []:
        if m["Type"] == "tmpfs":
            continue  # tmpfs_specs
        mounts.append(
            MountSpec(
                source=Path(m["Source"]),
                destination=m["Destination"],
                readonly=not m["RW"],
                propagation=m.get("Propagation") or "rprivate",
                recursive=m["Destination"] not in nonrecursive,
            )
        )
    args: tuple[str, ...] = (stored["Path"], *stored["Args"])
    if init is not None and hc.get("Init"):
        mounts.append(MountSpec(source=init, destination=INIT_PATH, readonly=True))
        args = (INIT_PATH, "--", *args)
    return RunSpec(
        args=args,
        env=tuple(cfg.get("Env") or ()),
        cwd=cfg.get("WorkingDir") or "/",
        user=cfg.get("User") or "",
        hostname=hostname,
        network=NetworkMode(hc.get("NetworkMode") or "none"),
        privileged=bool(hc.get("Privileged")),
        cap_add=tuple(hc.get("CapAdd") or ()),
        cap_drop=tuple(hc.get("CapDrop") or ()),
        no_new_privileges=any(o in _NO_NEW_PRIVS for o in hc.get("SecurityOpt") or ()),
        mounts=tuple(mounts),
        tmpfs=tmpfs_specs(hc),
        group_add=tuple(hc.get("GroupAdd") or ()),
        shm_size=hc.get("ShmSize") or None,
        rlimits=tuple(
            Rlimit(name=u["Name"], soft=u["Soft"], hard=u["Hard"]) for u in hc.get("Ulimits") or ()
        ),
        tty=bool(cfg.get("Tty")),
        console_size=console_size,
        stop_signal=cfg.get("StopSignal") or "SIGTERM",
        readonly_rootfs=bool(hc.get("ReadonlyRootfs")),
        sysctls=dict(hc.get("Sysctls") or {}),
        oom_score_adj=int(hc.get("OomScoreAdj") or 0),
        domainname=str(cfg.get("Domainname") or ""),
        resources=run_resources(hc),
        **devices,
        **(namespaces or {}),
        annotations=_log_annotation(log),
    )


def _log_annotation(log: LogOptions | None) -> dict[str, str]:
    if log is None:
        return {}
    import msgspec

    from lamina.runtime.spec import LOG_ANNOTATION

    return {LOG_ANNOTATION: msgspec.json.encode(log).decode()}


def non_recursive_binds(stored: Mapping[str, Any]) -> set[str]:
    """The destinations of a container's binds mounted without their submounts: its own
    ``--mount ...,bind-nonrecursive`` ones and those it took with ``--volumes-from``."""
    inherited = set(stored.get(NON_RECURSIVE_KEY) or ())
    if not stored["HostConfig"].get("Mounts"):
        return inherited
    from lamina.engine.mount_args import destination

    return inherited | {
        destination(m)
        for m in stored["HostConfig"]["Mounts"]
        if m["Type"] == "bind" and (m.get("BindOptions") or {}).get("NonRecursive")
    }


def tmpfs_specs(hc: Mapping[str, Any]) -> tuple[TmpfsSpec, ...]:
    """The tmpfs mounts of a container: ``--tmpfs`` ones, then ``--mount type=tmpfs`` ones,
    each with Docker's options (raises UsageError for an unknown option, as Docker's start)."""
    from lamina.engine.mount_args import destination, mount_tmpfs_data, tmpfs_options
    from lamina.runtime.spec import TmpfsSpec

    out = [
        TmpfsSpec(destination=dest, options=tuple(tmpfs_options(data)))
        for dest, data in (hc.get("Tmpfs") or {}).items()
    ]
    for m in hc.get("Mounts") or ():
        if m["Type"] == "tmpfs":
            options = tuple(tmpfs_options(mount_tmpfs_data(m)))
            out.append(TmpfsSpec(destination=destination(m), options=options))
    return tuple(out)


HOSTS_LOOPBACK: Final = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)
# Docker's fallback when filtering leaves no nameserver (libnetwork/resolvconf).
DEFAULT_DNS: Final = ("8.8.8.8", "8.8.4.4")


def hosts_file(*, network: str, host_hosts: str, extra_hosts: Sequence[str] = ()) -> str:
    """/etc/hosts: the host's own with ``--network host`` and no ``--add-host``, else Docker's
    loopback entries and then the ``--add-host`` lines (libnetwork's buildHostsFile)."""
    from lamina.engine.dns_args import hosts_lines

    if network == "host" and not extra_hosts:
        return host_hosts
    return HOSTS_LOOPBACK + hosts_lines(extra_hosts)


def resolv_conf(
    *,
    network: str,
    host_resolv: str,
    dns: Sequence[str] = (),
    search: Sequence[str] = (),
    options: Sequence[str] = (),
) -> str:
    """The host's resolv.conf; outside the host's network, loopback nameservers (which would
    point at the container itself) are dropped, as Docker does. Any of ``--dns``,
    ``--dns-search``, ``--dns-option`` makes it Docker's built file instead, on either
    network (:func:`lamina.engine.dns_args.resolv_conf_built`)."""
    if dns or search or options:
        from lamina.engine.dns_args import resolv_conf_built

        return resolv_conf_built(host_resolv, dns=dns, search=search, options=options)
    if network == "host":
        return host_resolv
    lines = []
    servers = 0
    for line in host_resolv.splitlines():
        fields = line.split()
        if fields[:1] == ["nameserver"] and len(fields) > 1:
            if fields[1].startswith("127.") or fields[1] == "::1":
                continue
            servers += 1
        lines.append(line)
    if not servers:
        lines += [f"nameserver {ns}" for ns in DEFAULT_DNS]
    return "\n".join(lines) + "\n"
