"""``--mount`` (the long syntax) and ``--tmpfs``, read as docker 20.10 reads them.

Two steps, as in Docker: the CLI's parse (cli/opts/mount.go: CSV fields of ``key[=value]``,
its errors prefixed ``invalid argument "SPEC" for "--mount" flag:``) turns a spec into the
API's ``mount.Mount`` object, which is what ``HostConfig.Mounts`` stores; the daemon's check
(volume/mounts/linux_parser.go: ``invalid mount config for type "T": ...``) then refuses what
cannot be mounted. :func:`volume_arg` hands a checked bind or volume on to the same path ``-v``
takes (:mod:`lamina.engine.container_create`), so a volume is made and pre-filled one way.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from lamina.errors import UsageError

if TYPE_CHECKING:
    from lamina.engine.container_config import VolumeArg

TYPES: Final = ("bind", "volume", "tmpfs")
# Linux's propagation modes (volume/mounts/linux_parser.go linuxPropagationModes).
PROPAGATIONS: Final = ("private", "rprivate", "slave", "rslave", "shared", "rshared")
DEFAULT_PROPAGATION: Final = "rprivate"
_TRUE: Final = ("1", "t", "T", "TRUE", "true", "True")  # Go's strconv.ParseBool
_FALSE: Final = ("0", "f", "F", "FALSE", "false", "False")


def _bool(key: str, value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"invalid value for {key}: {value}")


def ram_in_bytes(text: str) -> int | None:
    """go-units' ``RAMInBytes`` (``64m``, ``1.5g``, ``100``: binary units); None if invalid."""
    from lamina.engine.go_units import parse_size

    try:
        return parse_size(text, binary=True)
    except ValueError:
        return None


def _fields(spec: str) -> list[str]:
    """The spec's comma-separated fields, read as CSV (Go's encoding/csv: ``"a,b"`` quoted)."""
    import csv  # only for a --mount

    try:
        rows = list(csv.reader([spec], strict=True))
    except csv.Error as exc:
        raise ValueError(str(exc)) from None
    return rows[0] if rows else []


def parse_mount(spec: str) -> dict[str, Any]:
    """One ``--mount`` as the API's ``mount.Mount`` (keys in its order, empty ones left out,
    as Docker's JSON omits them). Raises UsageError in the CLI's words."""
    try:
        return _parse_mount(spec)
    except ValueError as exc:
        raise UsageError(f'invalid argument "{spec}" for "--mount" flag: {exc}') from None


def _parse_mount(spec: str) -> dict[str, Any]:
    m: dict[str, Any] = {"Type": "volume"}  # the default type
    bind: dict[str, Any] | None = None
    volume: dict[str, Any] | None = None
    tmpfs: dict[str, Any] | None = None

    def volume_options() -> dict[str, Any]:
        nonlocal volume
        if volume is None:
            volume = {"NoCopy": False, "Labels": {}, "DriverConfig": {}}
        return volume

    def bind_options() -> dict[str, Any]:
        nonlocal bind
        if bind is None:
            bind = {}
        return bind

    def tmpfs_options() -> dict[str, Any]:
        nonlocal tmpfs
        if tmpfs is None:
            tmpfs = {}
        return tmpfs

    for field in _fields(spec):
        key, eq, value = field.partition("=")
        key = key.lower()
        if not eq:
            if key in ("readonly", "ro"):
                m["ReadOnly"] = True
                continue
            if key == "volume-nocopy":
                volume_options()["NoCopy"] = True
                continue
            if key == "bind-nonrecursive":
                bind_options()["NonRecursive"] = True
                continue
            raise ValueError(f"invalid field '{field}' must be a key=value pair")
        if key == "type":
            m["Type"] = value.lower()
        elif key in ("source", "src"):
            m["Source"] = value
        elif key in ("target", "dst", "destination"):
            m["Target"] = value
        elif key in ("readonly", "ro"):
            m["ReadOnly"] = _bool(key, value)
        elif key == "consistency":
            m["Consistency"] = value.lower()
        elif key == "bind-propagation":
            bind_options()["Propagation"] = value.lower()
        elif key == "bind-nonrecursive":
            bind_options()["NonRecursive"] = _bool(key, value)
        elif key == "volume-nocopy":
            volume_options()["NoCopy"] = _bool(key, value)
        elif key == "volume-label":
            name, _, label = value.partition("=")
            volume_options()["Labels"][name] = label
        elif key == "volume-driver":
            volume_options()["DriverConfig"]["Name"] = value
        elif key == "volume-opt":
            name, _, opt = value.partition("=")
            volume_options()["DriverConfig"].setdefault("Options", {})[name] = opt
        elif key == "tmpfs-size":
            size = ram_in_bytes(value)
            if size is None:
                raise ValueError(f"invalid value for {key}: {value}")
            tmpfs_options()["SizeBytes"] = size
        elif key == "tmpfs-mode":
            try:
                mode = int(value, 8) if value.isascii() and value.isdigit() else -1
            except ValueError:
                mode = -1
            if not 0 <= mode < 1 << 32:
                raise ValueError(f"invalid value for {key}: {value}")
            tmpfs_options()["Mode"] = mode
        else:
            raise ValueError(f"unexpected key '{key}' in '{field}'")
    if not m["Type"]:
        raise ValueError("type is required")
    if not m.get("Target"):
        raise ValueError("target is required")
    for options, prefix, kind in (
        (volume, "volume", "volume"),
        (bind, "bind", "bind"),
        (tmpfs, "tmpfs", "tmpfs"),
    ):
        if options is not None and m["Type"] != kind:
            raise ValueError(f"cannot mix '{prefix}-*' options with mount type '{m['Type']}'")
    # The JSON's order and omitempty (api/types/mount.Mount).
    out: dict[str, Any] = {"Type": m["Type"]}
    for key in ("Source", "Target", "ReadOnly", "Consistency"):
        if m.get(key):
            out[key] = m[key]
    if bind is not None:
        out["BindOptions"] = {k: bind[k] for k in ("Propagation", "NonRecursive") if bind.get(k)}
    if volume is not None:
        vo: dict[str, Any] = {}
        if volume["NoCopy"]:
            vo["NoCopy"] = True
        if volume["Labels"]:
            vo["Labels"] = dict(sorted(volume["Labels"].items()))  # Go maps print sorted
        driver = volume["DriverConfig"]
        vo["DriverConfig"] = {
            **({"Name": driver["Name"]} if driver.get("Name") else {}),
            **({"Options": dict(sorted(driver["Options"].items()))} if "Options" in driver else {}),
        }
        out["VolumeOptions"] = vo
    if tmpfs is not None:
        out["TmpfsOptions"] = {k: tmpfs[k] for k in ("SizeBytes", "Mode") if tmpfs.get(k)}
    return out


def _config_error(m: Mapping[str, Any], reason: str) -> UsageError:
    return UsageError(f'invalid mount config for type "{m["Type"]}": {reason}')


def _absolute(m: Mapping[str, Any], path: str) -> None:
    if not path.startswith("/"):
        raise _config_error(m, f"invalid mount path: '{path}' mount path must be absolute")


def check_mount(m: Mapping[str, Any]) -> None:
    """The daemon's checks of a ``mount.Mount`` (linuxParser.validateMountConfigImpl), in its
    order and words; a bind source must exist."""
    target = m.get("Target") or ""
    if not target:
        raise _config_error(m, "field Target must not be empty")
    if posixpath.normpath(target) in ("/", "//"):
        raise _config_error(m, "invalid specification: destination can't be '/'")
    _absolute(m, target)
    source = m.get("Source") or ""
    kind = m["Type"]
    if kind == "bind":
        if not source:
            raise _config_error(m, "field Source must not be empty")
        propagation = (m.get("BindOptions") or {}).get("Propagation")
        if propagation and propagation not in PROPAGATIONS:
            raise _config_error(m, f"invalid propagation mode: {propagation}")
        if "VolumeOptions" in m:
            raise _config_error(m, "field VolumeOptions must not be specified")
        _absolute(m, source)
        if not os.path.exists(source):
            raise _config_error(m, f"bind source path does not exist: {source}")
    elif kind == "volume":
        if "BindOptions" in m:
            raise _config_error(m, "field BindOptions must not be specified")
        if not source and m.get("ReadOnly"):
            raise _config_error(m, "must not set ReadOnly mode when using anonymous volumes")
        if source:
            # A volume's source is a name: `src=/host/dir` is refused (Docker: "includes
            # invalid characters for a local volume name"), never taken for a bind.
            from lamina.engine.volumes import check_volume_name

            check_volume_name(source)
        driver_config = (m.get("VolumeOptions") or {}).get("DriverConfig") or {}
        driver = driver_config.get("Name")
        if driver and driver != "local":
            # What Docker says when no plugin of that name is installed: lamina has none.
            raise UsageError(
                f"create {source}: error looking up volume plugin {driver}: "
                f'plugin "{driver}" not found'
            )
        if driver_config.get("Options"):
            from lamina.store.volume_mount import check_options

            check_options(source, driver_config["Options"])
    elif kind == "tmpfs":
        if "BindOptions" in m:
            raise _config_error(m, "field BindOptions must not be specified")
        if source:
            raise _config_error(m, "field Source must not be specified")
    else:
        raise _config_error(m, "mount type unknown")


def destination(m: Mapping[str, Any]) -> str:
    """The mount's destination, cleaned as Docker's ``path.Clean``."""
    return posixpath.normpath("/" + str(m["Target"]).lstrip("/"))


def volume_arg(m: Mapping[str, Any]) -> VolumeArg:
    """A checked bind or volume ``--mount`` as the :class:`VolumeArg` that ``-v`` makes, with
    what only the long syntax says (read-only, propagation, no-copy, labels, driver options).
    Docker shows a ``--mount`` volume's Mode as "z" (anonymous too), a bind's as ""."""
    from lamina.engine.container_config import VolumeArg

    read_only = bool(m.get("ReadOnly"))
    if m["Type"] == "bind":
        bind = m.get("BindOptions") or {}
        return VolumeArg(
            source=posixpath.normpath(m["Source"]),
            destination=destination(m),
            mode="",
            long_syntax=True,
            readonly=read_only,
            propagation=bind.get("Propagation") or DEFAULT_PROPAGATION,
            recursive=not bind.get("NonRecursive"),
        )
    vo = m.get("VolumeOptions") or {}
    return VolumeArg(
        source=m.get("Source") or None,
        destination=destination(m),
        mode="z",
        long_syntax=True,
        readonly=read_only,
        no_copy=bool(vo.get("NoCopy")),
        labels=dict(vo.get("Labels") or {}),
        driver_options=dict((vo.get("DriverConfig") or {}).get("Options") or {}),
    )


def tmpfs_mount_point(m: Mapping[str, Any]) -> dict[str, Any]:
    """Inspect's ``Mounts`` entry of a ``type=tmpfs`` mount (a ``--tmpfs`` has none)."""
    return {
        "Type": "tmpfs",
        "Source": "",
        "Destination": destination(m),
        "Mode": "",
        "RW": not m.get("ReadOnly"),
        "Propagation": "",
    }


# -- tmpfs ------------------------------------------------------------------------------------

# What a tmpfs mount may be given (pkg/mount's flags and tmpfs' data options), for the check
# Docker makes when it mounts one (MergeTmpfsOptions).
_FLAG_KEYS: Final = {
    "ro": "rdonly",
    "rw": "rdonly",
    "suid": "nosuid",
    "nosuid": "nosuid",
    "dev": "nodev",
    "nodev": "nodev",
    "exec": "noexec",
    "noexec": "noexec",
    "sync": "sync",
    "async": "sync",
    "dirsync": "dirsync",
    "remount": "remount",
    "mand": "mand",
    "nomand": "mand",
    "atime": "noatime",
    "noatime": "noatime",
    "diratime": "nodiratime",
    "nodiratime": "nodiratime",
    "bind": "bind",
    "rbind": "rbind",
    "relatime": "relatime",
    "norelatime": "relatime",
    "strictatime": "strictatime",
    "nostrictatime": "strictatime",
    # One propagation mode, whichever is last.
    **dict.fromkeys(("unbindable", "runbindable", *PROPAGATIONS), "propagation"),
}
_DATA_KEYS: Final = ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol")
TMPFS_DEFAULTS: Final = ("noexec", "nosuid", "nodev", DEFAULT_PROPAGATION)


def parse_tmpfs(spec: str) -> tuple[str, str]:
    """``--tmpfs /path[:options]`` as (destination, options): the CLI splits at the first
    colon; the daemon refuses a relative destination at create (the options are checked when
    it is mounted, as Docker's)."""
    dest, _, options = spec.partition(":")
    if not dest.startswith("/"):
        raise UsageError(f"invalid mount path: '{dest}' mount path must be absolute")
    if posixpath.normpath(dest) in ("/", "//"):
        raise UsageError("invalid specification: destination can't be '/'")
    return dest, options


def tmpfs_options(data: str) -> list[str]:
    """A tmpfs mount's options as Docker gives them to runc: its defaults (noexec, nosuid,
    nodev, rprivate) then ``data``, a later option replacing an earlier one of its kind
    (``exec`` undoes ``noexec``; MergeTmpfsOptions). Raises UsageError for an unknown one."""
    options = [*TMPFS_DEFAULTS, *(o for o in data.split(",") if data)]
    flags: set[str] = set()
    values: set[str] = set()
    out: list[str] = []
    for option in reversed(options):
        if option == "defaults":
            continue
        if option in _FLAG_KEYS:
            if _FLAG_KEYS[option] not in flags:
                flags.add(_FLAG_KEYS[option])
                out.insert(0, option)
            continue
        key, eq, _ = option.partition("=")
        if not eq or key not in _DATA_KEYS:
            shown = f'"{key}"' if not eq else f'"{key}" "{option[len(key) + 1 :]}"'
            raise UsageError(f"invalid tmpfs option [{shown}]")
        if key not in values:
            values.add(key)
            out.insert(0, option)
    return out


def mount_tmpfs_data(m: Mapping[str, Any]) -> str:
    """A ``type=tmpfs`` mount's options as Docker writes them (ConvertTmpfsOptions): ``ro``,
    ``mode=`` in octal, ``size=`` in the largest of g/m/k that divides it."""
    raw: list[str] = []
    if m.get("ReadOnly"):
        raw.append("ro")
    opts = m.get("TmpfsOptions") or {}
    if opts.get("Mode"):
        raw.append(f"mode={opts['Mode']:o}")
    if opts.get("SizeBytes"):
        size, suffix = int(opts["SizeBytes"]), ""
        for unit, divisor in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
            if size % divisor == 0:
                size, suffix = size // divisor, unit
                break
        raw.append(f"size={size}{suffix}")
    return ",".join(raw)
