"""ctypes bindings for the kernel mount syscalls lamina needs: the new mount API (``fsopen``,
``fsconfig``, ``fsmount``, ``move_mount``), legacy ``mount(2)`` and ``umount2``.

Why the new API: legacy ``mount(2)`` copies only one page of option data and *silently* drops the
rest, which can mount a wrong overlay stack (read-only, upperdir gone, layers missing — measured
on this kernel). ``fsconfig(FSCONFIG_SET_STRING, "lowerdir+", path)`` takes one lower per call
(Linux >= 6.8), so a stack is limited only by the kernel's 500-layer ``OVL_MAX_STACK``.
:func:`legacy_mount` refuses option strings that would not fit in one page instead of mounting
them.

Every failure is raised as ``OSError`` with the errno; for the new API the kernel's own message
(read back from the fs-context fd) is attached as a note.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
from collections.abc import Sequence
from pathlib import Path

# Syscall numbers. The mount-API calls were added (Linux 5.2) with the same numbers on every
# architecture's unified table, so x86_64 and aarch64 agree.
_SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": {"move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432},
    "aarch64": {"move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432},
}

# <linux/mount.h>
FSOPEN_CLOEXEC = 0x1
FSMOUNT_CLOEXEC = 0x1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NODEV = 0x4
MOVE_MOUNT_F_EMPTY_PATH = 0x4
AT_FDCWD = -100
# <sys/mount.h>
MS_RDONLY = 0x1
MS_NODEV = 0x4
MNT_DETACH = 0x2

# The kernel copies at most one page of mount(2) option data; anything past it is cut off without
# an error. The terminating NUL must fit too, hence "< PAGE_SIZE", not "<=".
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

# The C library's symbols are already in the process (CDLL(None) is dlopen(NULL)): no
# ctypes.util.find_library, which costs a few ms of every start.
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _nr(name: str) -> int | None:
    return _SYSCALLS.get(os.uname().machine, {}).get(name)


def _raise(what: str, fs_fd: int | None = None) -> None:
    err = ctypes.get_errno()
    exc = OSError(err, f"{what}: {os.strerror(err)}")
    if fs_fd is not None:
        for message in _context_messages(fs_fd):
            exc.add_note(f"kernel: {message}")
    raise exc


def _context_messages(fs_fd: int) -> list[str]:
    """Messages the kernel queued on an fs-context fd ("e overlayfs: ..." lines)."""
    messages: list[str] = []
    os.set_blocking(fs_fd, False)
    for _ in range(16):
        try:
            data = os.read(fs_fd, 4096)
        except OSError:
            break
        if not data:
            break
        messages.append(data.decode("utf-8", "replace").strip())
    return messages


def _syscall(name: str, *args: object) -> int:
    nr = _nr(name)
    if nr is None:
        ctypes.set_errno(errno.ENOSYS)
        return -1
    return int(_libc.syscall(ctypes.c_long(nr), *args))


def fsopen(fs_name: str) -> int:
    """Open a filesystem context; returns its fd (close it with ``os.close``)."""
    fd = _syscall("fsopen", ctypes.c_char_p(fs_name.encode()), ctypes.c_uint(FSOPEN_CLOEXEC))
    if fd < 0:
        _raise(f"fsopen({fs_name!r})")
    return fd


def fsconfig_string(fs_fd: int, key: str, value: str) -> None:
    r = _syscall(
        "fsconfig",
        ctypes.c_int(fs_fd),
        ctypes.c_uint(FSCONFIG_SET_STRING),
        ctypes.c_char_p(key.encode()),
        ctypes.c_char_p(os.fsencode(value)),
        ctypes.c_int(0),
    )
    if r < 0:
        _raise(f"fsconfig({key}={value!r})", fs_fd)


def fsconfig_flag(fs_fd: int, key: str) -> None:
    r = _syscall(
        "fsconfig",
        ctypes.c_int(fs_fd),
        ctypes.c_uint(FSCONFIG_SET_FLAG),
        ctypes.c_char_p(key.encode()),
        ctypes.c_char_p(None),
        ctypes.c_int(0),
    )
    if r < 0:
        _raise(f"fsconfig({key})", fs_fd)


def fsconfig_create(fs_fd: int) -> None:
    r = _syscall(
        "fsconfig",
        ctypes.c_int(fs_fd),
        ctypes.c_uint(FSCONFIG_CMD_CREATE),
        ctypes.c_char_p(None),
        ctypes.c_char_p(None),
        ctypes.c_int(0),
    )
    if r < 0:
        _raise("fsconfig(CMD_CREATE)", fs_fd)


def fsmount(fs_fd: int, *, attr_flags: int) -> int:
    """Turn a created context into a detached mount; returns the mount fd."""
    fd = _syscall(
        "fsmount", ctypes.c_int(fs_fd), ctypes.c_uint(FSMOUNT_CLOEXEC), ctypes.c_uint(attr_flags)
    )
    if fd < 0:
        _raise("fsmount", fs_fd)
    return fd


def move_mount(mount_fd: int, target: str) -> None:
    """Attach the detached mount ``mount_fd`` at ``target``."""
    r = _syscall(
        "move_mount",
        ctypes.c_int(mount_fd),
        ctypes.c_char_p(b""),
        ctypes.c_int(AT_FDCWD),
        ctypes.c_char_p(os.fsencode(target)),
        ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH),
    )
    if r < 0:
        _raise(f"move_mount(-> {target})")


def mount_new_api(
    fs_name: str, target: str, *, strings: Sequence[tuple[str, str]], read_only: bool
) -> None:
    """Mount ``fs_name`` on ``target`` with one ``fsconfig`` string call per (key, value), in
    order (repeat ``("lowerdir+", path)`` once per lower)."""
    fs_fd = fsopen(fs_name)
    try:
        for key, value in strings:
            fsconfig_string(fs_fd, key, value)
        fsconfig_create(fs_fd)
        attrs = MOUNT_ATTR_NODEV | (MOUNT_ATTR_RDONLY if read_only else 0)
        mount_fd = fsmount(fs_fd, attr_flags=attrs)
    finally:
        os.close(fs_fd)
    try:
        move_mount(mount_fd, target)
    finally:
        os.close(mount_fd)


@functools.cache
def lowerdir_plus_supported() -> bool:
    """True when the new mount API exists and overlayfs knows ``lowerdir+`` (Linux >= 6.8).

    Asks the kernel to parse one ``lowerdir+`` without creating a mount."""
    try:
        fs_fd = fsopen("overlay")
    except OSError:
        return False
    try:
        fsconfig_string(fs_fd, "lowerdir+", "/")
    except OSError:
        return False
    finally:
        os.close(fs_fd)
    return True


def legacy_mount(
    source: str,
    target: str,
    fs_type: str,
    *,
    options: str,
    read_only: bool,
    cwd: Path | None = None,
) -> None:
    """``mount(2)``, refusing option data the kernel would silently truncate.

    Raises ``OSError(E2BIG)`` when ``options`` needs more than one page. With ``cwd``, relative
    paths in ``options`` resolve against it: the call runs in a forked child that ``chdir``s
    there (Docker's trick for short ``l/`` lowers), so this process's cwd never changes under its
    other threads."""
    data = os.fsencode(options)
    if len(data) >= PAGE_SIZE:
        raise OSError(
            errno.E2BIG,
            f"mount options are {len(data)} bytes; the kernel keeps "
            f"only {PAGE_SIZE - 1} and would mount a truncated stack",
        )
    flags = MS_NODEV | (MS_RDONLY if read_only else 0)
    args = (os.fsencode(source), os.fsencode(target), fs_type.encode(), flags, data)
    if cwd is None:
        if _libc.mount(*args) != 0:
            _raise(f"mount({fs_type} -> {target})")
        return
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child: only async-signal-safe work, then _exit
        code = 0
        try:
            os.chdir(cwd)
            if _libc.mount(*args) != 0:
                code = ctypes.get_errno() or 1
        except OSError as exc:
            code = exc.errno or 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise OSError(code, f"mount({fs_type} -> {target}) from {cwd}: {os.strerror(code)}")


def mount_flags(source: str, target: str, fs_type: str, *, flags: int, data: str) -> None:
    """``mount(2)`` with the caller's own flags and option data ("" passes NULL for
    ``source``, ``fs_type`` and ``data``: a remount or a propagation change). Raises
    ``OSError(E2BIG)`` for data the kernel would truncate, else the call's errno."""
    raw = os.fsencode(data)
    if len(raw) >= PAGE_SIZE:
        raise OSError(errno.E2BIG, f"mount options are {len(raw)} bytes (one page at most)")
    r = _libc.mount(
        os.fsencode(source) if source else None,
        os.fsencode(target),
        fs_type.encode() if fs_type else None,
        flags,
        raw or None,
    )
    if r != 0:
        _raise(f"mount({source or fs_type} -> {target})")


def umount(target: str, *, detach: bool = False) -> None:
    r = _libc.umount2(os.fsencode(target), MNT_DETACH if detach else 0)
    if r != 0:
        _raise(f"umount({target})")
