"""Files in and out of a container's rootfs, confined to it (the ``docker cp`` CVE class).

A container's rootfs belongs to whatever runs in it: ``/x -> /`` or ``/x -> ../../..`` must
resolve inside the rootfs, and a path that was checked must never be re-opened by its string
(CVE-2018-15664, a symlink swapped in between check and use). So the container side of every
operation starts from an fd that :func:`lamina.runtime.rootfs.open_in_root` resolved with
``openat2(RESOLVE_IN_ROOT)`` (or a component-by-component walk), and everything below it is
done relative to directory fds with ``O_NOFOLLOW``: symlinks met while copying are copied as
symlinks, never followed. The host side of ``cp`` is the user's own path and is taken as given.
What lands where, by ``docker cp``'s rules, is :mod:`lamina.engine.container_cp`.

A container's volumes, binds and (once it has started) the /etc/hostname, /etc/hosts and
/etc/resolv.conf a run bind-mounts from its container dir are part of what it sees; ``cp``
sees them too, as Docker's does. :func:`in_view` mounts them onto the rootfs where a run
mounts them (each destination resolved inside the rootfs, as runc resolves it), in a private
mount namespace that ends with the call (:mod:`lamina.runtime.mountns`); the copy then runs
there with the same confined lookups, so a path that crosses a mount point continues in the
mounted dir by the kernel's own rules: a symlink inside a volume that points to ``/etc`` or
``../../..`` still resolves in the container's view, never on the host. A write into a
read-only mount is refused ("mounted volume is marked read-only", as Docker). A file mount
point is never replaced: :class:`MountPoints` knows the files mounted by identity (device and
inode) and refuses a copy onto one -- for the run's files because the next start rewrites them
(Docker 20.10 fails there with EBUSY).
"""

from __future__ import annotations

import contextlib
import enum
import errno
import os
import stat
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

from lamina.errors import ConflictError, MountError, NotFoundError, UsageError

if TYPE_CHECKING:
    from lamina.runtime.spec import MountSpec

T = TypeVar("T")

DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
NOFOLLOW_DIR_FLAGS: Final = DIR_FLAGS | os.O_NOFOLLOW
_CHUNK: Final = 1 << 20


def open_in_root(root: Path, path: str, *, flags: int) -> int:
    """:func:`lamina.runtime.rootfs.open_in_root`, imported on first use (``lamina.runtime``
    costs every CLI start that does not run a process)."""
    from lamina.runtime.rootfs import open_in_root as confined_open

    return confined_open(root, path, flags=flags)


@contextlib.contextmanager
def closing(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


def open_dir_in_root(root: Path, path: str) -> int:
    """A readable dir fd for ``path`` inside ``root`` (symlinks resolved within ``root``)."""
    try:
        return open_in_root(root, path, flags=DIR_FLAGS)
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
    fd = open_in_root(root, "/", flags=DIR_FLAGS)
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


def make_working_dir(root: Path, path: str) -> None:
    """Docker's working dir, made at create (``mkdir -p`` inside ``root``, links resolved
    there). Raises UsageError with Docker's words when it cannot be a dir."""
    from lamina.runtime.rootfs import make_dirs_in_root

    try:
        make_dirs_in_root(root, path)
    except NotADirectoryError:
        pass
    except OSError as exc:
        raise UsageError(f"cannot mkdir: {path}: {exc.strerror}") from exc
    else:
        return
    try:  # as Docker words it: the dir itself is a file, or a dir above it is
        with closing(open_in_root(root, path, flags=os.O_PATH)) as fd:
            is_file = not stat.S_ISDIR(os.fstat(fd).st_mode)
    except OSError:
        is_file = False
    if is_file:
        raise UsageError(f"cannot mkdir: {path} is not a directory")
    raise UsageError(f"cannot mkdir: {path}: not a directory")


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
    with closing(open_dir_in_root(root, parent or "/")) as pfd:
        try:
            os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            os.close(os.open(name, flags, 0o755, dir_fd=pfd))


def is_empty_dir(path: Path) -> bool:
    with os.scandir(path) as it:
        return next(it, None) is None


class MountPoints:
    """The files a view of a rootfs has mounted (file binds, the run's files), by identity."""

    def __init__(self, files: Mapping[tuple[int, int], tuple[str, Path, bool]]) -> None:
        # (st_dev, st_ino) -> (container path, host file, rewritten by every start)
        self._files = dict(files)

    @classmethod
    def find(
        cls, root: Path, mounts: Sequence[MountSpec], *, rewritten: Collection[Path] = ()
    ) -> MountPoints:
        """The file mounts among ``mounts`` as ``root`` shows them now (call it once every
        mount is made: one may hide another). ``rewritten``: the sources every start writes."""
        files: dict[tuple[int, int], tuple[str, Path, bool]] = {}
        for m in mounts:
            try:
                fd = open_in_root(root, m.destination, flags=os.O_PATH)
            except OSError:
                continue
            with closing(fd):
                st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode):
                dest = "/" + "/".join(p for p in m.destination.split("/") if p)
                files.setdefault((st.st_dev, st.st_ino), (dest, m.source, m.source in rewritten))
        return cls(files)

    def refuse(self, st: os.stat_result) -> None:
        """Raise ConflictError if ``st`` (an lstat in the view) is a mounted file: a copy must
        not replace it (the kernel would refuse with EBUSY)."""
        if not stat.S_ISREG(st.st_mode):
            return
        hit = self._files.get((st.st_dev, st.st_ino))
        if hit is None:
            return
        path, host, rewritten = hit
        if rewritten:
            exc = ConflictError(
                f"cannot copy to {path}: it is mounted from {host}, which every start of the "
                "container rewrites"
            )
            exc.hint = "change it from inside the running container (lamina exec), or recreate it"
        else:
            exc = ConflictError(f"cannot copy to {path}: it is a mount point, bound from {host}")
            exc.hint = f"change {host} on the host"
        raise exc


def in_view(
    root: Path,
    mounts: Sequence[MountSpec],
    fn: Callable[[MountPoints], T],
    *,
    rewritten: Collection[Path] = (),
) -> T:
    """``fn(mount_points)`` with ``mounts`` bound onto ``root`` as a run binds them: parents
    before children, each destination resolved inside ``root`` (through what is already
    mounted) and made there if missing, as runc and Docker's ``cp`` make it. The mounts live
    in a private mount namespace that ends before this returns; ``fn`` runs on its thread.
    Raises MountError if one cannot be made."""
    if not mounts:
        return fn(MountPoints({}))
    from lamina.runtime.mountns import bind_in_root, run_in_private_namespace

    ordered = sorted(mounts, key=lambda m: len([p for p in m.destination.split("/") if p]))

    def inside() -> T:
        for m in ordered:
            try:
                make_mount_point(root, m.destination, directory=m.source.is_dir())
                bind_in_root(root, m.source, m.destination, readonly=m.readonly)
            except OSError as exc:
                raise MountError(
                    f"cannot mount {m.source} at {m.destination} in the container: "
                    f"{exc.strerror or exc}"
                ) from exc
        return fn(MountPoints.find(root, ordered, rewritten=rewritten))

    return run_in_private_namespace(inside)


class Ownership(enum.Enum):
    """Who owns what :func:`copy_into` writes, unless it is given a (uid, gid)."""

    SOURCE = "source"  # the source entry's uid and gid
    COPIER = "copier"  # whoever copies (no chown), as Docker's client extracts ``cp`` output


Owner = Ownership | tuple[int, int]  # a (uid, gid): every entry written is chowned to it


def copy_into(
    src_dir_fd: int,
    src_name: str,
    dst_dir_fd: int,
    dst_name: str,
    *,
    mount_points: MountPoints | None = None,
    owner: Owner = Ownership.SOURCE,
) -> None:
    """Copy the entry ``src_name`` of ``src_dir_fd`` to ``dst_name`` in ``dst_dir_fd``,
    recursively, keeping modes, times, symlinks (never followed) and, as ``owner`` says,
    owners. An existing non-dir at the destination is replaced by a non-dir; an existing dir
    is merged into by a dir; a dir and a non-dir never replace each other (ConflictError).

    ``mount_points`` (destination in a view of a rootfs): replacing a mounted file raises
    ConflictError (entries copied before it stay)."""
    st = os.stat(src_name, dir_fd=src_dir_fd, follow_symlinks=False)
    try:
        old: os.stat_result | None = os.stat(dst_name, dir_fd=dst_dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        old = None
    if mount_points is not None and old is not None:
        mount_points.refuse(old)
    if old is not None and not (stat.S_ISDIR(old.st_mode) and stat.S_ISDIR(st.st_mode)):
        # Neither replaces the other, as Docker's extraction for cp (NoOverwriteDirNonDir).
        if stat.S_ISDIR(old.st_mode):
            raise ConflictError(f"cannot overwrite directory {dst_name!r} with a non-directory")
        if stat.S_ISDIR(st.st_mode):
            raise ConflictError(f"cannot overwrite non-directory {dst_name!r} with a directory")
        os.unlink(dst_name, dir_fd=dst_dir_fd)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        if old is None:
            os.mkdir(dst_name, 0o700, dir_fd=dst_dir_fd)
        with (
            closing(os.open(src_name, NOFOLLOW_DIR_FLAGS, dir_fd=src_dir_fd)) as sfd,
            closing(os.open(dst_name, NOFOLLOW_DIR_FLAGS, dir_fd=dst_dir_fd)) as dfd,
        ):
            for entry in sorted(os.listdir(sfd)):
                copy_into(sfd, entry, dfd, entry, mount_points=mount_points, owner=owner)
            _set_attrs(dfd, st, mode, owner=owner)
        return
    if stat.S_ISREG(st.st_mode):
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        with closing(os.open(src_name, flags, dir_fd=src_dir_fd)) as sfd:
            wflags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            with closing(os.open(dst_name, wflags, 0o600, dir_fd=dst_dir_fd)) as dfd:
                _copy_data(sfd, dfd)
                _set_attrs(dfd, st, mode, owner=owner)
        return
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src_name, dir_fd=src_dir_fd), dst_name, dir_fd=dst_dir_fd)
    else:  # fifo, socket, device
        os.mknod(dst_name, st.st_mode, st.st_rdev, dir_fd=dst_dir_fd)
    if (ids := _owner_ids(st, owner)) is not None:
        with contextlib.suppress(OSError):
            os.chown(dst_name, *ids, dir_fd=dst_dir_fd, follow_symlinks=False)
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


def _owner_ids(st: os.stat_result, owner: Owner) -> tuple[int, int] | None:
    if owner is Ownership.SOURCE:
        return st.st_uid, st.st_gid
    return None if owner is Ownership.COPIER else owner


def _set_attrs(fd: int, st: os.stat_result, mode: int, *, owner: Owner = Ownership.SOURCE) -> None:
    if (ids := _owner_ids(st, owner)) is not None:
        with contextlib.suppress(OSError):
            os.fchown(fd, *ids)
    os.fchmod(fd, mode)
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def fill_from_image(root: Path, path: str, data: Path) -> None:
    """Docker's volume pre-fill: copy what the image has at ``path`` into a new, empty volume's
    data dir ``data``. Nothing to copy when the path is missing or not a directory."""
    try:
        src = open_in_root(root, path, flags=DIR_FLAGS)
    except (FileNotFoundError, NotADirectoryError):
        return
    with closing(src) as sfd, closing(os.open(data, DIR_FLAGS)) as dfd:
        for entry in sorted(os.listdir(sfd)):
            copy_into(sfd, entry, dfd, entry)
        st = os.fstat(sfd)
        _set_attrs(dfd, st, stat.S_IMODE(st.st_mode))
