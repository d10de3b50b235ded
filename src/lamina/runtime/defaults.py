"""What a container may do unless told otherwise: Docker's defaults, as data.

Values follow moby's ``oci/defaults.go`` and ``daemon/oci_linux.go`` (Docker 20.10+), so that a
process in a lamina container sees what it would see under ``docker run``: ``CapEff`` reads
``00000000a80425fb`` (:data:`DEFAULT_CAPABILITIES`), ``/proc/kcore`` is masked, ``/proc/sys`` is
read-only, ``/sys`` is mounted read-only.
"""

from __future__ import annotations

from typing import Any, Final

# Index = capability number (linux/capability.h), up to CAP_CHECKPOINT_RESTORE (40).
ALL_CAPABILITIES: Final[tuple[str, ...]] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)

# Docker's 14; as a bit mask this is 0xa80425fb, the CapEff a root process shows under Docker.
DEFAULT_CAPABILITIES: Final[tuple[str, ...]] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

MASKED_PATHS: Final[tuple[str, ...]] = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)

READONLY_PATHS: Final[tuple[str, ...]] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

# The PATH Docker puts in a container's environment when the image sets none.
DEFAULT_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# 64 MiB is Docker's default --shm-size; /dev is a small tmpfs holding only device nodes.
_DEV_SIZE: Final = "size=65536k"
SHM_SIZE: Final = "size=65536k"


def default_mounts(*, privileged: bool, shm_size: int | None = None) -> list[dict[str, Any]]:
    """The kernel filesystems every container gets, in mount order (parents first).

    ``--privileged`` makes ``/sys`` and the cgroup view writable, as Docker does;
    ``shm_size`` (bytes, ``--shm-size``) sizes /dev/shm."""
    sys_rw = "rw" if privileged else "ro"
    return [
        {
            "destination": "/proc",
            "type": "proc",
            "source": "proc",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", _DEV_SIZE],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            # gid 5 is "tty" in every mainstream distribution's base image.
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", sys_rw],
        },
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", sys_rw],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": [
                *("nosuid", "noexec", "nodev", "mode=1777"),
                SHM_SIZE if shm_size is None else f"size={shm_size}",
            ],
        },
    ]


def _dev(kind: str, major: int | None, minor: int | None, access: str = "rwm") -> dict[str, Any]:
    rule: dict[str, Any] = {"allow": True, "type": kind, "access": access}
    if major is not None:
        rule["major"] = major
    if minor is not None:
        rule["minor"] = minor
    return rule


def device_cgroup_rules(*, privileged: bool) -> list[dict[str, Any]]:
    """The device cgroup allowlist (deny everything, then Docker's allowed set).

    runc creates the standard nodes itself (null, zero, full, random, urandom, tty, ptmx via
    /dev/pts), so ``linux.devices`` stays empty; these rules only govern access."""
    if privileged:
        return [{"allow": True, "access": "rwm"}]
    return [
        {"allow": False, "access": "rwm"},
        # /dev/fuse stays denied. It must come before any wildcard allow: runc's cgroup v1
        # emulator cannot punch a hole into a wildcard rule that is already in place.
        {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
        _dev("c", None, None, "m"),  # mknod of any char/block node, not its use
        _dev("b", None, None, "m"),
        _dev("c", 1, 3),  # /dev/null
        _dev("c", 1, 8),  # /dev/random
        _dev("c", 1, 7),  # /dev/full
        _dev("c", 5, 0),  # /dev/tty
        _dev("c", 5, 1),  # /dev/console
        _dev("c", 1, 5),  # /dev/zero
        _dev("c", 1, 9),  # /dev/urandom
        _dev("c", 136, None),  # /dev/pts/*
        _dev("c", 5, 2),  # /dev/ptmx
        _dev("c", 10, 200),  # /dev/net/tun
    ]
