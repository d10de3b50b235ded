"""The local driver's ``-o`` volumes (``volume create -o type=tmpfs -o device=tmpfs``,
``-o type=none -o o=bind -o device=/path``): checked as Docker's local driver checks them, and
mounted on the volume's ``_data`` dir as moby's ``mount.Mount`` mounts them, so that a container
binds ``_data`` as it binds any volume's.

As Docker's, such a volume is mounted while a container uses it and unmounted after the last
one stops (its data then lives on the device: a tmpfs's is gone). Whether a container still uses
it is the container service's to say (:meth:`lamina.store.volumes.VolumeStore.deactivate` takes
the answer), since only it knows which containers run.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from lamina.errors import MountError, UsageError

# volume/local/local_unix.go: the options, and the ones each needs.
VALID_OPTIONS: Final = ("type", "o", "device", "size")
_REQUIRED: Final = {"device": ("type",), "type": ("device",), "o": ("device", "type")}

# moby/sys/mount flags.go: the options that are mount(2) flags (the rest is data), as
# (set, clear) bits.
MS_RDONLY: Final = 0x1
MS_NOSUID: Final = 0x2
MS_NODEV: Final = 0x4
MS_NOEXEC: Final = 0x8
MS_SYNCHRONOUS: Final = 0x10
MS_REMOUNT: Final = 0x20
MS_MANDLOCK: Final = 0x40
MS_DIRSYNC: Final = 0x80
MS_NOATIME: Final = 0x400
MS_NODIRATIME: Final = 0x800
MS_BIND: Final = 0x1000
MS_REC: Final = 0x4000
MS_UNBINDABLE: Final = 1 << 17
MS_PRIVATE: Final = 1 << 18
MS_SLAVE: Final = 1 << 19
MS_SHARED: Final = 1 << 20
MS_RELATIME: Final = 1 << 21
MS_STRICTATIME: Final = 1 << 24
_PROPAGATION: Final = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE
_FLAGS: Final = {
    "defaults": (0, 0),
    "ro": (MS_RDONLY, 0),
    "rw": (0, MS_RDONLY),
    "suid": (0, MS_NOSUID),
    "nosuid": (MS_NOSUID, 0),
    "dev": (0, MS_NODEV),
    "nodev": (MS_NODEV, 0),
    "exec": (0, MS_NOEXEC),
    "noexec": (MS_NOEXEC, 0),
    "sync": (MS_SYNCHRONOUS, 0),
    "async": (0, MS_SYNCHRONOUS),
    "dirsync": (MS_DIRSYNC, 0),
    "remount": (MS_REMOUNT, 0),
    "mand": (MS_MANDLOCK, 0),
    "nomand": (0, MS_MANDLOCK),
    "atime": (0, MS_NOATIME),
    "noatime": (MS_NOATIME, 0),
    "diratime": (0, MS_NODIRATIME),
    "nodiratime": (MS_NODIRATIME, 0),
    "bind": (MS_BIND, 0),
    "rbind": (MS_BIND | MS_REC, 0),
    "unbindable": (MS_UNBINDABLE, 0),
    "runbindable": (MS_UNBINDABLE | MS_REC, 0),
    "private": (MS_PRIVATE, 0),
    "rprivate": (MS_PRIVATE | MS_REC, 0),
    "shared": (MS_SHARED, 0),
    "rshared": (MS_SHARED | MS_REC, 0),
    "slave": (MS_SLAVE, 0),
    "rslave": (MS_SLAVE | MS_REC, 0),
    "relatime": (MS_RELATIME, 0),
    "norelatime": (0, MS_RELATIME),
    "strictatime": (MS_STRICTATIME, 0),
    "nostrictatime": (0, MS_STRICTATIME),
}


def check_options(name: str, options: Mapping[str, str]) -> None:
    """The local driver's checks of ``volume create -o`` (validateOpts), in its words. A
    ``size`` needs the quota support lamina's volumes lack."""
    for key in options:
        if key not in VALID_OPTIONS:
            raise UsageError(f'create {name}: invalid option: "{key}"')
    if "size" in options:
        raise UsageError(f"create {name}: quota size requested but no quota support")
    for key, needs in _REQUIRED.items():
        if key in options:
            for need in needs:
                if need not in options:
                    raise UsageError(f'create {name}: missing required option: "{need}"')


def parse_options(options: str) -> tuple[int, str]:
    """moby's ``parseOptions``: (mount flags, data) of a comma-separated option string."""
    flags = 0
    data: list[str] = []
    for option in options.split(","):
        if option in _FLAGS:
            set_bits, clear_bits = _FLAGS[option]
            flags = (flags | set_bits) & ~clear_bits
        elif option:
            data.append(option)
    return flags, ",".join(data)


def _mount(source: str, target: str, fs_type: str, flags: int, data: str) -> None:
    from lamina.driver import mountapi  # ctypes: only where a volume has a device

    try:
        mountapi.mount_flags(source, target, fs_type, flags=flags, data=data)
    except OSError as exc:
        where = f"{source}:{target}" if source else target
        text = f"mount {where}"
        if flags:
            text += f", flags: {flags:#x}"
        if data:
            text += f", data: {data}"
        reason = os.strerror(exc.errno or 0)
        raise MountError(
            f"failed to mount local volume: {text}: {reason[:1].lower()}{reason[1:]}"
        ) from None


def mount(options: Mapping[str, str], data_dir: Path) -> None:
    """Mount the volume's device on ``data_dir`` as moby's ``mount.Mount(device, target,
    type, o)``: the flags and data first, then a propagation change, then a read-only remount
    of a read-only bind. Raises MountError in Docker's words (a start adds "error while
    mounting volume '<data_dir>': " before them, as Docker's)."""
    device = options.get("device", "")
    if not device:
        raise MountError("missing device in volume options")
    flags, data = parse_options(options.get("o", ""))
    if flags & MS_BIND and not device.startswith("/"):
        # mount(2) resolves a relative source against the caller's cwd: dockerd's is "/",
        # so Docker's always means the same dir; lamina's would move with the shell's.
        device = "/" + device
    target = str(data_dir)
    fs_type = options.get("type", "")
    plain = flags & ~_PROPAGATION
    if not plain & MS_REMOUNT or data:
        _mount(device, target, fs_type, plain, data)
    if flags & _PROPAGATION:
        _mount("", target, "", flags & (_PROPAGATION | MS_REC), "")
    if plain & (MS_BIND | MS_RDONLY) == MS_BIND | MS_RDONLY:
        _mount("", target, "", plain | MS_REMOUNT, "")


def unmount(data_dir: Path) -> None:
    """Unmount what is mounted on ``data_dir`` (every layer of it). Idempotent."""
    from lamina.driver import mountapi
    from lamina.driver.mountinfo import is_mounted

    while is_mounted(data_dir):
        try:
            mountapi.umount(str(data_dir))
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # not a mount point after all
                return
            raise MountError(f"unmount {data_dir}: {os.strerror(exc.errno or 0)}") from None
