"""A private mount namespace, for looking at a container's rootfs with its mounts in place.

``cp`` must see a container's volumes and bind mounts where its process sees them. Docker does
it as moby's ``containerFSView`` does: on a dedicated OS thread that unshares its mount
namespace, it binds the volumes into the rootfs and works there. :func:`run_in_private_namespace`
is that: a new thread unshares its mount namespace (and its fs struct, which CLONE_NEWNS needs
in a threaded process), makes every mount of the copy private -- so nothing made there reaches
the host's table, whatever the host's propagation (``/`` is shared under systemd) -- runs the
function, and joins the host's namespace again before the thread ends. The private namespace
then has no task left: it goes, with every mount made in it, before the call returns. Nothing
can outlive it -- not even a ``kill -9``, since a namespace dies with its last task.

A thread rather than a forked child: results and exceptions come back as they are, the
function can write to the caller's file objects, and only that thread's view changes (the
process's other threads keep the host's).

:func:`bind_in_root` binds a host path onto a path of a rootfs resolved inside it, with the
new mount API: ``open_tree(OPEN_TREE_CLONE)`` makes a detached copy, ``mount_setattr`` makes it
read-only before it is visible anywhere, and ``move_mount`` attaches it to the ``O_PATH`` fd
that :func:`lamina.runtime.rootfs.open_in_root` resolved -- no path string is looked up again
between resolving and mounting. Needs Linux 5.12 (Debian 12 ships 6.1).
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

from lamina.runtime.rootfs import open_in_root

T = TypeVar("T")

# The mount-API syscalls have the same numbers on every architecture's unified table.
_NR: Final = {"open_tree": 428, "move_mount": 429, "mount_setattr": 442}
_AT_FDCWD: Final = -100
_AT_EMPTY_PATH: Final = 0x1000
_AT_RECURSIVE: Final = 0x8000
_OPEN_TREE_CLONE: Final = 1
_MOVE_MOUNT_F_EMPTY_PATH: Final = 0x4
_MOVE_MOUNT_T_EMPTY_PATH: Final = 0x40
_MOUNT_ATTR_RDONLY: Final = 0x1
_CLONE_FS: Final = 0x200
_CLONE_NEWNS: Final = 0x20000
_MS_REC: Final = 0x4000
_MS_PRIVATE: Final = 1 << 18

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

# While a thread is in a private namespace: the inode of the host namespace it left.
_VIEW = threading.local()


class _MountAttr(ctypes.Structure):
    _fields_ = (
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    )


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), what)
    return result


def _namespace_inode() -> int:
    return os.stat("/proc/thread-self/ns/mnt").st_ino


def run_in_private_namespace(fn: Callable[[], T]) -> T:
    """``fn()`` on a new thread in a private mount namespace that ends before this returns;
    its result, or its exception re-raised here."""
    results: list[T] = []
    errors: list[BaseException] = []

    def body() -> None:
        try:
            results.append(_in_namespace(fn))
        except BaseException as exc:  # handed to the caller's thread as it is
            errors.append(exc)

    # daemon: an interrupted caller's exit is not held up by a copy in progress (the process's
    # end takes the namespace with it).
    thread = threading.Thread(target=body, name="lamina-mount-view", daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


def _in_namespace(fn: Callable[[], T]) -> T:
    host = os.open("/proc/thread-self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        host_inode = os.fstat(host).st_ino
        _check(_libc.unshare(_CLONE_NEWNS | _CLONE_FS), "unshare(CLONE_NEWNS)")
        try:
            none = ctypes.c_char_p(None)
            flags = ctypes.c_ulong(_MS_REC | _MS_PRIVATE)
            _check(_libc.mount(none, b"/", none, flags, none), "mount(/, MS_REC|MS_PRIVATE)")
            _VIEW.host = host_inode
            try:
                return fn()
            finally:
                del _VIEW.host
        finally:
            # Back to the host's namespace: the private one has no task left and is torn down,
            # mounts and all, inside this call. (Should it fail, the thread's end does it.)
            _libc.setns(host, _CLONE_NEWNS)
    finally:
        os.close(host)


def bind_in_root(root: Path, source: Path, destination: str, *, readonly: bool) -> None:
    """Bind ``source`` (a host path, with what is mounted below it, as runc's ``rbind``) onto
    ``destination`` as seen from inside ``root`` (symlinks resolved within ``root``; it must
    exist, as a dir for a dir and a file for a file). ``readonly`` covers the top mount, as
    runc's ``ro``. Only in :func:`run_in_private_namespace`: anywhere else it raises
    RuntimeError rather than mount into the host's namespace. Raises OSError."""
    host = getattr(_VIEW, "host", None)
    if host is None or _namespace_inode() == host:
        raise RuntimeError("bind_in_root outside a private mount namespace")
    tree = _check(
        _libc.syscall(
            ctypes.c_long(_NR["open_tree"]),
            ctypes.c_int(_AT_FDCWD),
            ctypes.c_char_p(os.fsencode(source)),
            ctypes.c_uint(_OPEN_TREE_CLONE | os.O_CLOEXEC | _AT_RECURSIVE),
        ),
        f"open_tree({source})",
    )
    try:
        if readonly:
            attr = _MountAttr(attr_set=_MOUNT_ATTR_RDONLY)
            _check(
                _libc.syscall(
                    ctypes.c_long(_NR["mount_setattr"]),
                    ctypes.c_int(tree),
                    ctypes.c_char_p(b""),
                    ctypes.c_uint(_AT_EMPTY_PATH),
                    ctypes.byref(attr),
                    ctypes.c_size_t(ctypes.sizeof(attr)),
                ),
                f"mount_setattr({source}, MOUNT_ATTR_RDONLY)",
            )
        target = open_in_root(root, destination, flags=os.O_PATH)
        try:
            _check(
                _libc.syscall(
                    ctypes.c_long(_NR["move_mount"]),
                    ctypes.c_int(tree),
                    ctypes.c_char_p(b""),
                    ctypes.c_int(target),
                    ctypes.c_char_p(b""),
                    ctypes.c_uint(_MOVE_MOUNT_F_EMPTY_PATH | _MOVE_MOUNT_T_EMPTY_PATH),
                ),
                f"move_mount({source} -> {destination})",
            )
        finally:
            os.close(target)
    finally:
        os.close(tree)
