"""Writing COPY/ADD sources into a step's rootfs by Docker's destination rules.

The destination dir is resolved in-root (``openat2(RESOLVE_IN_ROOT)``: Docker follows
destination symlinks within the image), missing dirs are made, and every entry is then created
relative to a dir fd with ``O_NOFOLLOW``; sources are read through the fd-confined helpers of
:mod:`lamina.build.context`. Metadata lands as the source has it (mode, mtime), with the
owner given (``--chown``, or 0:0) or kept (``COPY --from``), and ``--chmod`` applied last.

Two rules follow Docker's classic builder, which copies and then chowns: an owner given clears
what chown(2) clears on a non-dir (S_ISUID, and S_ISGID when group-executable), so a setuid
context file does not land setuid-root; and files hardlinked to each other within one source
land as one inode (each source is copied on its own, so links between two sources are not).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

from lamina.build.context import (
    Owner,
    Selected,
    Source,
    SourceRoot,
    open_source_file,
    read_source_link,
    walk_source,
)
from lamina.errors import BuildError
from lamina.runtime.rootfs import open_in_root

__all__ = ["copy_selected", "open_dest_dir"]

_DIR: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK: Final = 1 << 20


def open_dest_dir(rootfs: Path, path: str, *, owner: Owner | None) -> int:
    """An fd of directory ``path`` in ``rootfs`` (symlinks resolved in-root), creating the
    missing components (0755, ``owner`` or root)."""
    parts = [p for p in path.split("/") if p and p != "."]
    fd = os.open(rootfs, _DIR)
    done: list[str] = []
    try:
        for part in parts:
            if part == "..":
                raise BuildError(f"destination {path!r} climbs out of the rootfs")
            done.append(part)
            try:
                nxt = open_in_root(rootfs, "/".join(done), flags=os.O_RDONLY | os.O_DIRECTORY)
            except FileNotFoundError:
                if _is_link(fd, part):
                    raise BuildError(
                        f"destination {path!r}: /{'/'.join(done)} is a dangling symlink"
                    ) from None
                os.mkdir(part, 0o755, dir_fd=fd)
                nxt = os.open(part, _DIR, dir_fd=fd)
                os.fchmod(nxt, 0o755)
                if owner is not None:
                    os.fchown(nxt, owner.uid, owner.gid)
            except NotADirectoryError:
                raise BuildError(
                    f"destination {path!r}: /{'/'.join(done)} is not a directory"
                ) from None
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def copy_selected(
    selected: Selected,
    *,
    rootfs: Path,
    dest: str,
    owner: Owner | None,
    chmod: int | None,
) -> None:
    """Copy the sources into ``rootfs`` by Docker's destination rules: ``dest`` is a dir when
    it ends with ``/``, exists as a dir, or there are several sources (then it must end with
    ``/``); a dir source copies its contents."""
    several = len(selected.sources) > 1 or selected.wildcard
    as_dir = dest.endswith("/") or dest in ("", ".")
    if several and not as_dir and len(selected.sources) > 1:
        raise BuildError(
            "when using COPY with more than one source file, the destination must be a "
            "directory and end with a /"
        )
    dest_path = dest.rstrip("/") or "/"
    if not as_dir:
        st = _stat_in_root(rootfs, dest_path)
        as_dir = st is not None and stat.S_ISDIR(st.st_mode)
    for src in selected.sources:
        if src.is_dir:
            fd = open_dest_dir(rootfs, dest_path, owner=owner)
            try:
                _copy_tree(selected.root, src, fd, owner=owner, chmod=chmod)
            finally:
                os.close(fd)
            continue
        if as_dir:
            parent, name = dest_path, src.name
        else:
            parent, _, name = dest_path.rpartition("/")
        fd = open_dest_dir(rootfs, parent or "/", owner=owner)
        try:
            _copy_entry(selected.root, src.real, src.st, fd, name, owner=owner, chmod=chmod)
        finally:
            os.close(fd)


def _stat_in_root(rootfs: Path, path: str) -> os.stat_result | None:
    try:
        fd = open_in_root(rootfs, path, flags=os.O_PATH)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def _copy_tree(
    root: SourceRoot, src: Source, dest_fd: int, *, owner: Owner | None, chmod: int | None
) -> None:
    # Dir metadata is set after the dir's contents, so copying into it does not bump mtimes.
    fds: dict[str, int] = {"": dest_fd}
    dirs: list[tuple[int, str, os.stat_result]] = []
    firsts: dict[tuple[int, int], tuple[str, str]] = {}  # (dev, ino) -> (parent, name) copied
    try:
        for sub, rel, st in walk_source(root, src):
            if not sub:
                continue
            parent, _, name = sub.rpartition("/")
            pfd = fds[parent]
            if stat.S_ISDIR(st.st_mode):
                fds[sub] = _make_dir(pfd, name, sub)
                dirs.append((fds[sub], sub, st))
                continue
            first = _first_link(firsts, st, (parent, name))
            if first is not None:
                _hardlink(fds[first[0]], first[1], pfd, name, rel)
                continue
            _copy_entry(root, rel, st, pfd, name, owner=owner, chmod=chmod)
        for fd, _, st in reversed(dirs):
            _set_meta_fd(fd, st, owner=owner, chmod=chmod)
    finally:
        for key, fd in fds.items():
            if key:
                os.close(fd)


def _first_link(
    firsts: dict[tuple[int, int], tuple[str, str]], st: os.stat_result, here: tuple[str, str]
) -> tuple[str, str] | None:
    """Where an earlier link to this regular file was copied in this tree (``firsts`` maps
    (dev, ino) to (parent, name)); None for its first (or only) name."""
    if not stat.S_ISREG(st.st_mode) or st.st_nlink < 2:
        return None
    first = firsts.setdefault((st.st_dev, st.st_ino), here)
    return None if first == here else first


def _hardlink(first_dir_fd: int, first: str, dest_fd: int, name: str, rel: str) -> None:
    _clear_for(dest_fd, name, rel)
    os.link(first, name, src_dir_fd=first_dir_fd, dst_dir_fd=dest_fd, follow_symlinks=False)


def _make_dir(parent_fd: int, name: str, sub: str) -> int:
    try:
        existing = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        existing = None
    if existing is not None and not stat.S_ISDIR(existing.st_mode):
        raise BuildError(f"cannot copy directory {sub!r} onto an existing non-directory")
    if existing is None:
        os.mkdir(name, 0o700, dir_fd=parent_fd)
    return os.open(name, _DIR, dir_fd=parent_fd)


def _set_meta_fd(fd: int, st: os.stat_result, *, owner: Owner | None, chmod: int | None) -> None:
    uid, gid = (st.st_uid, st.st_gid) if owner is None else (owner.uid, owner.gid)
    os.fchown(fd, uid, gid)
    os.fchmod(fd, stat.S_IMODE(st.st_mode) if chmod is None else chmod)
    os.utime(fd, ns=(st.st_mtime_ns, st.st_mtime_ns))


def _landed_mode(st: os.stat_result, *, owner: Owner | None, chmod: int | None) -> int:
    """The mode a non-dir lands with: ``--chmod`` if given (set after the owner, as BuildKit
    does); else the source's, less what chown(2) clears when an owner is given (Docker chowns
    after copying): S_ISUID, and S_ISGID if group-executable (without g+x it marks mandatory
    locking and the kernel keeps it). ``COPY --from`` keeping owners keeps both."""
    if chmod is not None:
        return chmod
    mode = stat.S_IMODE(st.st_mode)
    if owner is None:
        return mode
    mode &= ~stat.S_ISUID
    if mode & stat.S_IXGRP:
        mode &= ~stat.S_ISGID
    return mode


def _clear_for(dest_fd: int, name: str, rel: str) -> None:
    """Make room for non-dir ``name``: an existing non-dir goes, an existing dir is refused."""
    try:
        existing = os.stat(name, dir_fd=dest_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(existing.st_mode):
        raise BuildError(f"cannot overwrite directory {name!r} with the file {rel!r}")
    os.unlink(name, dir_fd=dest_fd)


def _copy_entry(
    root: SourceRoot,
    rel: str,
    st: os.stat_result,
    dest_fd: int,
    name: str,
    *,
    owner: Owner | None,
    chmod: int | None,
) -> None:
    """One non-dir entry (or a dir source copied as a file name is refused by the caller)."""
    _clear_for(dest_fd, name, rel)
    uid, gid = (st.st_uid, st.st_gid) if owner is None else (owner.uid, owner.gid)
    mode = _landed_mode(st, owner=owner, chmod=chmod)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(read_source_link(root.path, rel), name, dir_fd=dest_fd)
        os.chown(name, uid, gid, dir_fd=dest_fd, follow_symlinks=False)
        os.utime(name, ns=(st.st_mtime_ns,) * 2, dir_fd=dest_fd, follow_symlinks=False)
        return
    if stat.S_ISREG(st.st_mode):
        src = open_source_file(root.path, rel)
        try:
            out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600,
                          dir_fd=dest_fd)  # fmt: skip
            try:
                while chunk := os.read(src, _CHUNK):
                    os.write(out, chunk)
                os.fchown(out, uid, gid)
                os.fchmod(out, mode)  # after chown, which clears set-id bits: mode decides
                os.utime(out, ns=(st.st_mtime_ns, st.st_mtime_ns))
            finally:
                os.close(out)
        finally:
            os.close(src)
        return
    if stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        os.mknod(name, stat.S_IFMT(st.st_mode) | mode, st.st_rdev, dir_fd=dest_fd)
        os.chown(name, uid, gid, dir_fd=dest_fd, follow_symlinks=False)
        return
    raise BuildError(f"{rel!r}: sockets and unknown file types can not be copied")
