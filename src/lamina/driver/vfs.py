"""The ``vfs`` driver: every layer is a full copy of its parent's tree, then the layer applied on
top (whiteouts delete). Portable (any filesystem, no mounts, no root needed to read), O(size)
per layer.

::

    <home>/                      0710
      <layer_id>/                0710
        rootfs/                  the full tree; mode copied from the parent's (0755 when new)
        parent                   0644  the parent's layer_id; absent for a base layer
        mountcount               0600  "<refs> <boot-id>", changed under flock (base.MountRefs)

Docker's vfs keeps the bare tree at ``vfs/dir/<id>`` and records the parent in its layer store;
lamina's driver gets no parent at ``changes()`` time, so it keeps it next to the tree.
``mount()`` returns ``rootfs`` itself; the count only guards ``remove`` (there is no kernel state
to reconcile, so a count from before the last reboot reads as 0).

The copy is ``cp -a`` in Python: modes, owners, xattrs (``trusted.*`` included, as root),
hardlinks within the tree, devices, fifos, sockets, symlinks and nanosecond mtimes;
file data through ``os.copy_file_range`` (reflinks / in-kernel copies where the filesystem can).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING

from lamina.atomic import remove_tree
from lamina.driver.base import LayerApplier, MountRefs, check_layer_id
from lamina.errors import ConflictError, DriverError, LayerInUseError, LayerNotFoundError

if TYPE_CHECKING:
    from lamina.archive.apply import WhiteoutFormat
    from lamina.archive.changes import Change

HOME_MODE = 0o710
LAYER_MODE = 0o710
ROOTFS = "rootfs"
_COPY_CHUNK = 1 << 30  # copy_file_range asks for up to 1 GiB per call


class VfsDriver(LayerApplier):
    name = "vfs"

    def __init__(self, *, home: Path) -> None:
        self.home = home
        home.mkdir(mode=HOME_MODE, parents=True, exist_ok=True)

    @property
    def whiteout_format(self) -> WhiteoutFormat:
        from lamina.archive.apply import WhiteoutFormat

        return WhiteoutFormat.APPLY

    def _dir(self, layer_id: str) -> Path:
        return self.home / check_layer_id(layer_id)

    def _existing(self, layer_id: str) -> Path:
        d = self._dir(layer_id)
        if not d.is_dir():
            raise LayerNotFoundError(f"vfs layer {layer_id} does not exist")
        return d

    def _parent_tree(self, d: Path) -> Path | None:
        try:
            parent = (d / "parent").read_text().strip()
        except FileNotFoundError:
            return None
        return self._existing(parent) / ROOTFS

    def apply_dir(self, layer_id: str) -> Path:
        return self._existing(layer_id) / ROOTFS

    def exists(self, layer_id: str) -> bool:
        return self._dir(layer_id).is_dir()

    def create(self, layer_id: str, *, parent: str | None, writable: bool = False) -> Path:
        # ``writable`` changes nothing here: every vfs tree is a plain directory.
        final = self._dir(layer_id)
        if final.exists():
            raise ConflictError(f"vfs layer {layer_id} already exists")
        source = None if parent is None else self._existing(parent) / ROOTFS
        stage = self.home / f".create-{layer_id}-{os.urandom(4).hex()}"
        stage.mkdir(mode=LAYER_MODE)
        try:
            if source is None:
                (stage / ROOTFS).mkdir(mode=0o755)
                os.chmod(stage / ROOTFS, 0o755)
            else:
                copy_tree(source, stage / ROOTFS)
                (stage / "parent").write_text(parent or "")
            try:
                os.rename(stage, final)
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    raise ConflictError(f"vfs layer {layer_id} already exists") from exc
                raise
        except BaseException:
            remove_tree(stage, ignore_errors=True)
            raise
        return final / ROOTFS

    def remove(self, layer_id: str) -> None:

        d = self._dir(layer_id)
        if not d.is_dir():
            return
        trash = self.home / f".remove-{layer_id}-{os.urandom(4).hex()}"
        try:
            with MountRefs(d / "mountcount").locked() as refs:
                if refs.count > 0:
                    raise LayerInUseError(f"vfs layer {layer_id} is mounted ({refs.count} refs)")
                os.rename(d, trash)
        except FileNotFoundError:
            return
        remove_tree(trash)

    def mount(self, layer_id: str) -> Path:
        d = self._existing(layer_id)
        try:
            with MountRefs(d / "mountcount").locked() as refs:
                refs.count += 1
        except FileNotFoundError as exc:  # removed by another process meanwhile
            raise LayerNotFoundError(f"vfs layer {layer_id} does not exist") from exc
        return d / ROOTFS

    def unmount(self, layer_id: str) -> None:
        with (
            contextlib.suppress(FileNotFoundError),
            MountRefs(self._dir(layer_id) / "mountcount").locked() as refs,
        ):
            refs.count = max(refs.count - 1, 0)

    def mount_count(self, layer_id: str) -> int:
        return MountRefs(self._existing(layer_id) / "mountcount").peek()

    def changes(self, layer_id: str) -> list[Change]:
        from lamina.archive.changes import tree_changes

        d = self._existing(layer_id)
        return tree_changes(self._parent_tree(d), d / ROOTFS)

    def diff_tar(self, layer_id: str, out: IO[bytes]) -> None:
        from lamina.archive.changes import write_tree_diff

        d = self._existing(layer_id)
        write_tree_diff(self._parent_tree(d), d / ROOTFS, out)

    def diff_size(self, layer_id: str) -> int:
        """moby's naive ``DiffSize`` (``archive.ChangesSize``): the non-dirs of the layer's
        A and C changes, as they are in its tree, a hardlinked inode once."""
        from lamina.archive.changes import ChangeKind

        tree = self.apply_dir(layer_id)
        size = 0
        seen: set[int] = set()
        for change in self.changes(layer_id):
            if change.kind is ChangeKind.DELETED:
                continue
            try:
                st = os.lstat(tree / change.path.lstrip("/"))
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode):
                continue
            if st.st_nlink > 1:
                if st.st_ino in seen:
                    continue
                seen.add(st.st_ino)
            size += st.st_size
        return size

    def metadata(self, layer_id: str) -> Mapping[str, str]:
        """Docker's vfs reports no GraphDriver data (``null``); lamina gives the one path that
        means something: the tree a container sees and writes to, as ``MergedDir``."""
        return {"MergedDir": str(self._existing(layer_id) / ROOTFS)}

    def recover(self, live_layer_ids: set[str]) -> list[str]:
        removed: list[str] = []
        for entry in sorted(os.scandir(self.home), key=lambda e: e.name):
            if not entry.is_dir(follow_symlinks=False):
                continue
            if entry.name in live_layer_ids or _staged_for(entry.name, live_layer_ids):
                # Reading through the lock drops a count left from before a reboot.
                with (
                    contextlib.suppress(FileNotFoundError),
                    MountRefs(Path(entry.path) / "mountcount").locked() as refs,
                ):
                    refs.count = refs.count
                continue

            remove_tree(entry.path, ignore_errors=True)
            if not entry.name.startswith("."):  # not a create/remove left half-done
                removed.append(entry.name)
        return removed


def copy_tree(src: Path, dst: Path) -> None:
    """``cp -a src dst`` for a tree lamina owns (dst must not exist)."""
    links: dict[tuple[int, int], bytes] = {}
    _copy_dir(os.fsencode(src), os.fsencode(dst), os.lstat(src), links)


def _copy_dir(
    src: bytes, dst: bytes, st: os.stat_result, links: dict[tuple[int, int], bytes]
) -> None:
    os.mkdir(dst, 0o700)
    with os.scandir(src) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        s = entry.path
        d = os.path.join(dst, entry.name)
        est = entry.stat(follow_symlinks=False)
        if stat.S_ISDIR(est.st_mode):
            _copy_dir(s, d, est, links)
            continue
        key = (est.st_dev, est.st_ino)
        if est.st_nlink > 1 and key in links:
            os.link(links[key], d)
            continue
        if stat.S_ISREG(est.st_mode):
            _copy_file(s, d)
        elif stat.S_ISLNK(est.st_mode):
            os.symlink(os.readlink(s), d)
        elif stat.S_ISFIFO(est.st_mode):
            os.mkfifo(d, 0o600)
        elif stat.S_ISCHR(est.st_mode) or stat.S_ISBLK(est.st_mode) or stat.S_ISSOCK(est.st_mode):
            os.mknod(d, stat.S_IFMT(est.st_mode) | 0o600, est.st_rdev)
        else:
            raise DriverError(f"cannot copy {os.fsdecode(s)}: unknown file type")
        _copy_meta(s, d, est)
        if est.st_nlink > 1:
            links[key] = d
    _copy_meta(src, dst, st)


def _copy_file(src: bytes, dst: bytes) -> None:
    with open(src, "rb") as fi, open(dst, "xb") as fo:
        try:
            while os.copy_file_range(fi.fileno(), fo.fileno(), _COPY_CHUNK):
                pass
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            import shutil  # imports bz2 and lzma (~1.5 ms): loaded only for this fallback

            shutil.copyfileobj(fi, fo, 1 << 20)


def _copy_meta(src: bytes, dst: bytes, st: os.stat_result) -> None:
    """Owner, then mode (chown clears setuid bits), then xattrs (chown clears
    ``security.capability``), then times (last: every other write changes them)."""
    is_link = stat.S_ISLNK(st.st_mode)
    os.lchown(dst, st.st_uid, st.st_gid)
    if not is_link:
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        names = []
    for name in names:
        os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _staged_for(name: str, live_layer_ids: set[str]) -> bool:
    """``.create-<id>-<rand>`` is a layer a live writer is still building: not an orphan."""
    if not name.startswith(".create-"):
        return False
    layer_id = name[len(".create-") :].rpartition("-")[0]
    return layer_id in live_layer_ids
