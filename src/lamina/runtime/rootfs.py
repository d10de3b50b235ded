"""Looking at files inside a container's rootfs from the host, without leaving it.

The rootfs belongs to whoever made the image: ``/etc/passwd`` may be a symlink to
``/../../../etc/shadow``, a FIFO that blocks the reader, or a 10 GB file (the CVE-2024-9676
class). Every lookup here starts from an fd of the rootfs and resolves symlinks *as the
container would* -- ``..`` and absolute targets stop at the rootfs -- with
``openat2(RESOLVE_IN_ROOT)`` where the kernel has it (5.6+) and a component-by-component walk
(``O_NOFOLLOW`` on every step, targets re-rooted by hand) where it does not. Nothing here ever
executes a file from the rootfs.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
from pathlib import Path
from typing import Final

from msgspec import Struct

from lamina.errors import LimitExceededError

_SYS_OPENAT2: Final = {"x86_64": 437, "aarch64": 437}.get(os.uname().machine)
_RESOLVE_NO_MAGICLINKS: Final = 0x02
_RESOLVE_IN_ROOT: Final = 0x10
_MAX_SYMLINKS: Final = 40  # the kernel's own limit (MAXSYMLINKS)

# /etc/passwd and /etc/group of real images are a few KiB; refuse anything absurd.
MAX_ACCOUNT_FILE: Final = 4 << 20


class _OpenHow(ctypes.Structure):
    _fields_ = (
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    )


_libc = ctypes.CDLL(None, use_errno=True)
# Whether openat2 works here: None until the first call tells (a dict, to avoid a global).
_OPENAT2: dict[str, bool | None] = {"works": None if _SYS_OPENAT2 is not None else False}


def _openat2(root_fd: int, path: str, flags: int) -> int | None:
    """openat2 with RESOLVE_IN_ROOT; None if the kernel lacks it."""
    if _SYS_OPENAT2 is None or _OPENAT2["works"] is False:
        return None
    how = _OpenHow(
        flags=flags | os.O_CLOEXEC, mode=0, resolve=_RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS
    )
    fd = _libc.syscall(
        ctypes.c_long(_SYS_OPENAT2),
        ctypes.c_int(root_fd),
        ctypes.c_char_p(os.fsencode(path)),
        ctypes.byref(how),
        ctypes.c_size_t(ctypes.sizeof(how)),
    )
    if fd >= 0:
        _OPENAT2["works"] = True
        return int(fd)
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EPERM) and _OPENAT2["works"] is None:
        # ENOSYS: old kernel; EPERM: a seccomp filter that refuses the syscall outright.
        _OPENAT2["works"] = False
        return None
    raise OSError(err, os.strerror(err), path)


def _walk(root_fd: int, path: str, flags: int, *, make_dirs: bool = False) -> int:
    """Resolve ``path`` under ``root_fd`` by hand, re-rooting symlink targets; with
    ``make_dirs``, a missing component is made (a dir, 0755) where the walk arrived."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    stack: list[int] = []  # fds of the directories above the current one
    cur = os.dup(root_fd)
    hops = 0
    try:
        while parts:
            name = parts.pop(0)
            if name == "..":
                if stack:
                    os.close(cur)
                    cur = stack.pop()
                continue
            last = not parts
            try:
                st = os.stat(name, dir_fd=cur, follow_symlinks=False)
            except FileNotFoundError:
                if not make_dirs:
                    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path) from None
                with contextlib.suppress(FileExistsError):  # made meanwhile: looked at again
                    os.mkdir(name, 0o755, dir_fd=cur)
                parts.insert(0, name)
                continue
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > _MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                target = os.readlink(name, dir_fd=cur)
                if target.startswith("/"):
                    for fd in stack:
                        os.close(fd)
                    stack.clear()
                    os.close(cur)
                    cur = os.dup(root_fd)
                parts[:0] = [p for p in target.split("/") if p not in ("", ".")]
                continue
            if last:
                return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=cur)
            nxt = os.open(
                name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=cur
            )
            stack.append(cur)
            cur = nxt
        # The path named a directory (or the root itself).
        return os.open(".", flags | os.O_CLOEXEC, dir_fd=cur)
    finally:
        os.close(cur)
        for fd in stack:
            os.close(fd)


def open_in_root(root: Path, path: str, *, flags: int = os.O_RDONLY) -> int:
    """An fd for ``path`` as seen from inside ``root``; symlinks never lead out of ``root``.

    Raises OSError (FileNotFoundError, NotADirectoryError, ELOOP, ...) like open(2)."""
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = _openat2(root_fd, path.lstrip("/") or ".", flags)
        if fd is not None:
            return fd
        return _walk(root_fd, path, flags)
    finally:
        os.close(root_fd)


def make_dirs_in_root(root: Path, path: str) -> None:
    """``mkdir -p`` of ``path`` as seen from inside ``root``: symlinks on the way (dangling
    ones too) resolve inside ``root``, and what is missing where they lead is made there, as
    Docker makes a container's working dir. Raises NotADirectoryError (a component is a
    file), OSError (ELOOP, ...)."""
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.close(_walk(root_fd, path, os.O_PATH | os.O_DIRECTORY, make_dirs=True))
    finally:
        os.close(root_fd)


def read_small_file(root: Path, path: str, *, limit: int = MAX_ACCOUNT_FILE) -> bytes | None:
    """The bytes of regular file ``path`` inside ``root``; None if it is missing or not a file.

    O_NONBLOCK keeps a FIFO planted at ``path`` from hanging the host; the size cap keeps a huge
    file from exhausting its memory. Raises LimitExceededError past ``limit`` bytes."""
    try:
        fd = open_in_root(root, path, flags=os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        if st.st_size > limit:
            raise LimitExceededError(limit_name="size", limit=limit, what=f"image file {path}")
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, 1 << 16):
            total += len(chunk)
            if total > limit:  # it grew while we read
                raise LimitExceededError(limit_name="size", limit=limit, what=f"image file {path}")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class Executable(Struct, frozen=True, kw_only=True):
    """What a lookup of the container's command found: the path inside the rootfs, whether
    it can be executed (a regular file with an x bit), and why not."""

    path: str
    executable: bool
    reason: str = ""


def find_command(root: Path, command: str, *, path_env: str, cwd: str) -> Executable | None:
    """Resolve ``command`` as runc will (Go's ``exec.LookPath``), without executing anything.

    A name with a ``/`` is taken as it is (relative to ``cwd``); a bare name is searched in
    ``path_env``, where entries that are not executable are skipped as LookPath skips them.
    None: nothing by that name exists (exit 127 under Docker); ``executable=False``: it
    exists but cannot be run (exit 126)."""
    if "/" in command:
        full = command if command.startswith("/") else f"{cwd.rstrip('/')}/{command}"
        return _probe(root, full)
    for directory in path_env.split(":"):
        full = f"{directory or '.'}/{command}"
        if not full.startswith("/"):
            full = f"{cwd.rstrip('/')}/{full}"
        found = _probe(root, full)
        if found is not None and found.executable:
            return found
    return None


# What runc's init opens in the container (user.GetExecUserPath) before the process runs,
# whatever the user: with a plain open(2), so a FIFO there never returns and a device may not.
ACCOUNT_FILES: Final = ("/etc/passwd", "/etc/group")


def blocking_account_file(root: Path) -> str | None:
    """The first of :data:`ACCOUNT_FILES` that is a FIFO or a device inside ``root`` (links
    followed inside it, as runc follows them after pivot_root); None when all are safe to
    open. Such an image hung ``run`` (and ``exec``) in runc's init, waiting for a writer."""
    for path in ACCOUNT_FILES:
        try:
            fd = open_in_root(root, path, flags=os.O_PATH)
        except OSError:
            continue  # missing, a loop, ...: runc skips a file it cannot open
        try:
            mode = os.fstat(fd).st_mode
        finally:
            os.close(fd)
        if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            return path
    return None


def _probe(root: Path, path: str) -> Executable | None:
    try:
        fd = open_in_root(root, path, flags=os.O_PATH)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        return Executable(path=path, executable=False, reason=exc.strerror or str(exc))
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if stat.S_ISDIR(st.st_mode):
        return Executable(path=path, executable=False, reason="is a directory")
    if not stat.S_ISREG(st.st_mode) or not st.st_mode & 0o111:
        return Executable(path=path, executable=False, reason="permission denied")
    return Executable(path=path, executable=True)
