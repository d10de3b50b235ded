"""Files in and out of a container's rootfs, confined to it (the ``docker cp`` CVE class).

A container's rootfs belongs to whatever runs in it: ``/x -> /`` or ``/x -> ../../..`` must
resolve inside the rootfs, and a path that was checked must never be re-opened by its string
(CVE-2018-15664, a symlink swapped in between check and use). So the container side of every
operation starts from an fd that :func:`lamina.runtime.rootfs.open_in_root` resolved with
``openat2(RESOLVE_IN_ROOT)`` (or a component-by-component walk), and everything below it is
done relative to directory fds with ``O_NOFOLLOW``: symlinks met while copying are copied as
symlinks, never followed. The host side of ``cp`` is the user's own path and is taken as given.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from lamina.errors import NotFoundError, UsageError

_DIR: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_NOFOLLOW_DIR: Final = _DIR | os.O_NOFOLLOW
_CHUNK: Final = 1 << 20


def open_in_root(root: Path, path: str, *, flags: int) -> int:
    """:func:`lamina.runtime.rootfs.open_in_root`, imported on first use (``lamina.runtime``
    costs every CLI start that does not run a process)."""
    from lamina.runtime.rootfs import open_in_root as confined_open

    return confined_open(root, path, flags=flags)


@contextlib.contextmanager
def _fd(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


def open_dir_in_root(root: Path, path: str) -> int:
    """A readable dir fd for ``path`` inside ``root`` (symlinks resolved within ``root``)."""
    try:
        return open_in_root(root, path, flags=_DIR)
    except FileNotFoundError as exc:
        raise NotFoundError(f"no such directory in the container: {path}") from exc
    except NotADirectoryError as exc:
        raise UsageError(f"not a directory in the container: {path}") from exc


def mkdir_in_root(root: Path, path: str) -> None:
    """``mkdir -p`` of ``path`` inside ``root``, each component made relative to its parent's fd
    (volume and bind mount points are made in the rw layer, as Docker makes them)."""
    parts = [p for p in path.split("/") if p and p != "."]
    if ".." in parts:
        raise UsageError(f"invalid path {path!r}: '..' is not allowed")
    fd = open_in_root(root, "/", flags=_DIR)
    try:
        done = ""
        for name in parts:
            done += "/" + name
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o755, dir_fd=fd)
            # Re-resolve from the root: an existing component may be a symlink, which must
            # stay inside the rootfs however it points.
            nxt = open_dir_in_root(root, done)
            os.close(fd)
            fd = nxt
    finally:
        os.close(fd)


def make_mount_point(root: Path, path: str, *, directory: bool) -> None:
    """The mount point of a volume or bind: a dir, or an empty file for a file bind (a dir
    there would make the bind mount fail), made inside ``root`` if missing."""
    if directory:
        mkdir_in_root(root, path)
        return
    parent, _, name = ("/" + "/".join(p for p in path.split("/") if p)).rpartition("/")
    if not name or name == "..":
        raise UsageError(f"invalid mount point {path!r}")
    mkdir_in_root(root, parent or "/")
    with _fd(open_dir_in_root(root, parent or "/")) as pfd:
        try:
            os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            os.close(os.open(name, flags, 0o755, dir_fd=pfd))


def is_empty_dir(path: Path) -> bool:
    with os.scandir(path) as it:
        return next(it, None) is None


def copy_into(src_dir_fd: int, src_name: str, dst_dir_fd: int, dst_name: str) -> None:
    """Copy the entry ``src_name`` of ``src_dir_fd`` to ``dst_name`` in ``dst_dir_fd``,
    recursively, keeping modes, owners, times and symlinks (never followed). An existing
    non-dir at the destination is replaced; an existing dir is merged into."""
    st = os.stat(src_name, dir_fd=src_dir_fd, follow_symlinks=False)
    try:
        old: os.stat_result | None = os.stat(dst_name, dir_fd=dst_dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        old = None
    if old is not None and not (stat.S_ISDIR(old.st_mode) and stat.S_ISDIR(st.st_mode)):
        if stat.S_ISDIR(old.st_mode):
            raise UsageError(f"cannot overwrite directory {dst_name!r} with a non-directory")
        os.unlink(dst_name, dir_fd=dst_dir_fd)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        if old is None:
            os.mkdir(dst_name, 0o700, dir_fd=dst_dir_fd)
        with (
            _fd(os.open(src_name, _NOFOLLOW_DIR, dir_fd=src_dir_fd)) as sfd,
            _fd(os.open(dst_name, _NOFOLLOW_DIR, dir_fd=dst_dir_fd)) as dfd,
        ):
            for entry in sorted(os.listdir(sfd)):
                copy_into(sfd, entry, dfd, entry)
            _set_attrs(dfd, st, mode)
        return
    if stat.S_ISREG(st.st_mode):
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        with _fd(os.open(src_name, flags, dir_fd=src_dir_fd)) as sfd:
            wflags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            with _fd(os.open(dst_name, wflags, 0o600, dir_fd=dst_dir_fd)) as dfd:
                _copy_data(sfd, dfd)
                _set_attrs(dfd, st, mode)
        return
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src_name, dir_fd=src_dir_fd), dst_name, dir_fd=dst_dir_fd)
    else:  # fifo, socket, device
        os.mknod(dst_name, st.st_mode, st.st_rdev, dir_fd=dst_dir_fd)
    with contextlib.suppress(OSError):
        os.chown(dst_name, st.st_uid, st.st_gid, dir_fd=dst_dir_fd, follow_symlinks=False)
    with contextlib.suppress(OSError):
        os.utime(
            dst_name,
            ns=(st.st_atime_ns, st.st_mtime_ns),
            dir_fd=dst_dir_fd,
            follow_symlinks=False,
        )


def _copy_data(src: int, dst: int) -> None:
    while True:
        try:
            n = os.copy_file_range(src, dst, _CHUNK)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
            break
        if n == 0:
            return
    while chunk := os.read(src, _CHUNK):  # copy_file_range refused: plain copy
        os.write(dst, chunk)


def _set_attrs(fd: int, st: os.stat_result, mode: int) -> None:
    with contextlib.suppress(OSError):
        os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, mode)
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _split(path: str) -> tuple[str, str]:
    """(parent, last component) of a container path; last is "" for the root or a path ending
    in "/" or "/.". ".." is refused: a name is only ever looked up below its parent's fd."""
    parts = [p for p in path.split("/") if p and p != "."]
    if ".." in parts:
        raise UsageError(f"invalid container path {path!r}: '..' is not allowed")
    norm = "/" + "/".join(parts)
    if path.endswith(("/", "/.")) or norm == "/":
        return norm, ""
    parent, _, name = norm.rpartition("/")
    return parent or "/", name


def copy_out(root: Path, src: str, dest: Path) -> None:
    """``docker cp CONTAINER:SRC DEST``: ``src`` resolved inside ``root``. A dir lands at
    ``DEST/<name>`` when DEST is an existing dir, else at DEST; a trailing "/" on SRC copies
    what the dir holds."""
    parent, name = _split(src)
    if not name:  # a directory's contents
        with _fd(open_dir_in_root(root, parent)) as sfd:
            dest.mkdir(mode=0o755, exist_ok=True)
            with _fd(os.open(dest, _DIR)) as dfd:
                for entry in sorted(os.listdir(sfd)):
                    copy_into(sfd, entry, dfd, entry)
        return
    with _fd(open_dir_in_root(root, parent)) as sfd:
        try:
            os.stat(name, dir_fd=sfd, follow_symlinks=False)
        except FileNotFoundError as exc:
            raise NotFoundError(f"no such file or directory in the container: {src}") from exc
        if dest.is_dir():
            target_parent, target = dest, name
        else:
            target_parent, target = dest.parent, dest.name
            if not target_parent.is_dir():
                raise NotFoundError(f"destination directory {target_parent} does not exist")
        with _fd(os.open(target_parent, _DIR)) as dfd:
            copy_into(sfd, name, dfd, target)


def copy_in(root: Path, src: Path, dest: str) -> None:
    """``docker cp SRC CONTAINER:DEST``: ``dest`` resolved inside ``root``; a symlink there
    pointing "outside" lands inside the rootfs."""
    try:
        st = os.lstat(src)
    except FileNotFoundError as exc:
        raise NotFoundError(f"no such file or directory: {src}") from exc
    parent, name = _split(dest)
    if name == "..":
        raise UsageError(f"invalid path {dest!r}")
    src_parent = src.parent if src.name else src
    with _fd(os.open(src_parent, _DIR)) as sfd:
        src_name = src.name or "."
        if name:
            try:
                target_fd = open_in_root(root, dest, flags=_DIR)
            except (FileNotFoundError, NotADirectoryError):
                target_fd = -1
            if target_fd >= 0:  # an existing dir: copy into it
                with _fd(target_fd) as tfd:
                    copy_into(sfd, src_name, tfd, src.name)
                return
            with _fd(open_dir_in_root(root, parent)) as pfd:
                copy_into(sfd, src_name, pfd, name)
            return
        with _fd(open_dir_in_root(root, parent)) as tfd:
            if stat.S_ISDIR(st.st_mode) and dest.endswith("/."):
                for entry in sorted(os.listdir(src)):
                    copy_into(sfd, os.path.join(src_name, entry), tfd, entry)
            else:
                copy_into(sfd, src_name, tfd, src.name or "rootfs")


def fill_from_image(root: Path, path: str, data: Path) -> None:
    """Docker's volume pre-fill: copy what the image has at ``path`` into a new, empty volume's
    data dir ``data``. Nothing to copy when the path is missing or not a directory."""
    try:
        src = open_in_root(root, path, flags=_DIR)
    except (FileNotFoundError, NotADirectoryError):
        return
    with _fd(src) as sfd, _fd(os.open(data, _DIR)) as dfd:
        for entry in sorted(os.listdir(sfd)):
            copy_into(sfd, entry, dfd, entry)
        st = os.fstat(sfd)
        _set_attrs(dfd, st, stat.S_IMODE(st.st_mode))
