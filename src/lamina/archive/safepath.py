"""An fd-confined directory tree: the only way archive code touches the filesystem.

Every path handed to :class:`Tree` is relative to its root and is walked one component at a
time with ``os.open(part, O_DIRECTORY | O_NOFOLLOW, dir_fd=parent)``; every effect then happens
relative to the resulting directory fd (``mkdir``/``mknod``/``symlink``/``link``/``unlink`` with
``dir_fd=``, ``fchown``/``fchmod``/``fsetxattr`` on fds, ``follow_symlinks=False`` where a name
is used). A symlink met *while walking* is refused, wherever it points; a path string is never
re-opened after it was checked, so nothing the archive creates can redirect a later write.
Symlink *targets* are data: they are created verbatim and never followed here.

A plain archive extracted into a container (``docker cp -``) is the one exception: there
Docker follows symlinks as the container would, so a Tree made with ``follow`` hands a
symlinked component to it (``follow(rel)``: a dir fd for ``rel`` resolved *inside the
container's root*, ``openat2(RESOLVE_IN_ROOT)``) instead of refusing it. Only the parents of
what is written are followed; the last component is still never followed.

Directory fds are cached (a small LRU keyed by relative path) because layer tars come in walk
order and consecutive members share parents; anything removed through :meth:`Tree.remove` drops
its own and its descendants' cached fds, so a cached fd never names a replaced directory.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Final, Self

from lamina.errors import UnsafeArchivePathError

_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CACHE_SIZE: Final = 256
IMPLICIT_DIR_MODE: Final = 0o755  # parents a layer writes into without a dir entry (as Docker)


def split(rel: str) -> tuple[str, str]:
    """``"a/b/c"`` -> ``("a/b", "c")``; ``"c"`` -> ``("", "c")``."""
    head, _, tail = rel.rpartition("/")
    return head, tail


def proc_path(dir_fd: int, name: str) -> str:
    """A path for the few calls without ``dir_fd`` (``setxattr`` with ``follow_symlinks=False``):
    the magic link pins the already-confined directory, only ``name`` is looked up in it."""
    return f"/proc/self/fd/{dir_fd}/{name}"


class Tree:
    """A directory opened once; all later access is relative to its fd."""

    def __init__(self, root: Path | int, *, follow: Callable[[str], int] | None = None) -> None:
        """``root``: a path, or a directory fd the tree takes over. ``follow``: see the module
        doc; it raises OSError as open(2) does (FileNotFoundError, NotADirectoryError)."""
        self.root_fd = root if isinstance(root, int) else os.open(root, _DIR_FLAGS)
        self._follow = follow
        self._cache: dict[str, int] = {}

    def close(self) -> None:
        for fd in self._cache.values():
            os.close(fd)
        self._cache.clear()
        os.close(self.root_fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def dir_fd(self, rel: str, *, create: bool) -> int:
        """Borrowed fd of directory ``rel`` (valid until the next call that changes the tree).

        Raises UnsafeArchivePathError if a component is a symlink, NotADirectoryError if one is
        something else, FileNotFoundError if one is missing and ``create`` is false; with
        ``create`` missing components are made with mode 0755."""
        if not rel:
            return self.root_fd
        fd = self._cache.pop(rel, None)
        if fd is not None:
            self._cache[rel] = fd  # most recently used goes last
            return fd
        head, name = split(rel)
        parent = self.dir_fd(head, create=create)
        fd = self._open_child(parent, name, rel, create=create)
        self._remember(rel, fd)
        return fd

    def parent_fd(self, rel: str, *, create: bool) -> tuple[int, str]:
        """(fd of the directory holding ``rel``, basename of ``rel``)."""
        head, name = split(rel)
        return self.dir_fd(head, create=create), name

    def adopt(self, rel: str, fd: int) -> None:
        """Cache ``fd`` (a directory just opened at ``rel``); the tree now owns it."""
        old = self._cache.pop(rel, None)
        if old is not None:
            os.close(old)
        self._remember(rel, fd)

    def forget(self, rel: str) -> None:
        """Drop cached fds of ``rel`` and everything below it."""
        prefix = rel + "/"
        for key in [k for k in self._cache if k == rel or k.startswith(prefix) or not rel]:
            os.close(self._cache.pop(key))

    def lstat(self, dir_fd: int, name: str) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def remove(self, dir_fd: int, name: str, rel: str) -> bool:
        """Remove ``name`` (a whole tree if it is a directory). False if it did not exist."""
        self.forget(rel)
        try:
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            return False
        except IsADirectoryError:
            # shutil.rmtree with dir_fd uses its fd-based walk, which never follows symlinks.
            shutil.rmtree(name, dir_fd=dir_fd)
        return True

    def open_dir_at(self, dir_fd: int, name: str) -> int | None:
        """fd of the real directory ``name`` in ``dir_fd``, or None if it is anything else."""
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return None
            raise

    def _open_child(self, parent: int, name: str, rel: str, *, create: bool) -> int:
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            st = self.lstat(parent, name)
            if st is not None and stat.S_ISLNK(st.st_mode):
                if self._follow is not None:
                    return self._follow(rel)
                raise UnsafeArchivePathError(rel, f"{rel!r} is a symlink") from exc
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", rel) from exc
        # FileExistsError: made meanwhile; the open below still refuses all but a real dir.
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, IMPLICIT_DIR_MODE, dir_fd=parent)
        return self._open_child(parent, name, rel, create=False)

    def _remember(self, rel: str, fd: int) -> None:
        self._cache[rel] = fd
        if len(self._cache) > _CACHE_SIZE:
            oldest = next(iter(self._cache))
            os.close(self._cache.pop(oldest))
