"""What a layer changed, as ``docker diff`` lines or as an OCI layer tar.

Two sources: two full trees (vfs, Docker's *naive* diff) and an overlay upper dir (the *native*
diff). Both read the trees once into memory (lstat + xattrs), decide, then write in Go's
``filepath.Walk`` order (depth first, siblings by name bytes), with a dir's whiteouts before its
other children as OCI suggests. Files are re-opened through directory fds with ``O_NOFOLLOW`` and
checked against the inode that was scanned, so a running container swapping paths for symlinks
cannot make the diff read outside the tree.

Callbacks (``exists_below``, ``lookup_below``, ``list_below``) take relative paths (``"etc/x"``).
"""

from __future__ import annotations

import enum
import errno
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from msgspec import Struct, field

from lamina.archive.entry import Entry, EntryKind, IndexEntry
from lamina.archive.tarwriter import TarWriter
from lamina.errors import DriverError


class ChangeKind(enum.Enum):
    MODIFIED = "C"
    ADDED = "A"
    DELETED = "D"


class Change(Struct, frozen=True):
    path: str  # absolute, as docker diff prints it: "/etc/passwd"
    kind: ChangeKind


_CAPABILITY = "security.capability"
_OVL = "trusted.overlay."
_OVL_ESCAPED = "trusted.overlay.overlay."
_USER_OVL_ESCAPED = "user.overlay.overlay."
_OPAQUE_XATTR = "trusted.overlay.opaque"
_WHITEOUT_XATTR = "trusted.overlay.whiteout"
# Their presence means the upper dir is not self-contained (renamed dirs point into lower
# layers, metadata-only copies lack data): a native diff would be wrong.
_UNSAFE_XATTRS = ("trusted.overlay.redirect", "trusted.overlay.metacopy")
# Host-specific labels, not image content.
_HOST_XATTRS = frozenset({"security.selinux"})
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class _Node(Struct):
    path: str  # relative; "" for the root
    st: os.stat_result
    xattrs: dict[str, bytes]
    target: str = ""  # symlink target
    children: dict[str, _Node] | None = None  # dirs only, in name-byte order
    peers: frozenset[str] = field(default_factory=frozenset)  # other paths of the same inode

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)

    @property
    def is_whiteout(self) -> bool:
        st = self.st
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            return True
        return stat.S_ISREG(st.st_mode) and st.st_size == 0 and _WHITEOUT_XATTR in self.xattrs


def _child(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def _read_xattrs(dir_fd: int, name: str) -> dict[str, bytes]:
    # The /proc magic link resolves the dir fd; the last component is not followed.
    p = f"/proc/self/fd/{dir_fd}/{name}"
    try:
        names = os.listxattr(p, follow_symlinks=False)
        return {n: os.getxattr(p, n, follow_symlinks=False) for n in sorted(names)}
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.ENODATA):
            return {}
        raise


def _scan_dir(dir_fd: int, node: _Node) -> None:
    node.children = {}
    for name in sorted(os.listdir(dir_fd), key=os.fsencode):
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        child = _Node(_child(node.path, name), st, _read_xattrs(dir_fd, name))
        if stat.S_ISLNK(st.st_mode):
            child.target = os.readlink(name, dir_fd=dir_fd)
        elif stat.S_ISDIR(st.st_mode):
            fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
            try:
                _scan_dir(fd, child)
            finally:
                os.close(fd)
        node.children[name] = child


def _scan(root: Path) -> _Node:
    fd = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        node = _Node("", os.fstat(fd), {})
        _scan_dir(fd, node)
    finally:
        os.close(fd)
    _link_peers(node)
    return node


def _walk(node: _Node) -> Iterator[_Node]:
    for child in (node.children or {}).values():
        yield child
        if child.children is not None:
            yield from _walk(child)


def _link_peers(root: _Node) -> None:
    groups: dict[tuple[int, int], list[_Node]] = {}
    for n in _walk(root):
        if not n.is_dir and n.st.st_nlink > 1 and not n.is_whiteout:
            groups.setdefault((n.st.st_dev, n.st.st_ino), []).append(n)
    for members in groups.values():
        paths = frozenset(m.path for m in members)
        for m in members:
            m.peers = paths - {m.path}


def _same_fs_time(a: int, b: int) -> bool:
    # go-archive sameFsTime: tar keeps whole seconds, so one side at 0 ns matches its second.
    s = 1_000_000_000
    return a == b or (a // s == b // s and (a % s == 0 or b % s == 0))


def _stat_differs(old: os.stat_result, new: os.stat_result) -> bool:
    """go-archive statDifferent: dir sizes and mtimes are no measure of change."""
    if (old.st_mode, old.st_uid, old.st_gid, old.st_rdev) != (
        new.st_mode,
        new.st_uid,
        new.st_gid,
        new.st_rdev,
    ):
        return True
    if stat.S_ISDIR(old.st_mode):
        return False
    return old.st_size != new.st_size or not _same_fs_time(old.st_mtime_ns, new.st_mtime_ns)


def _docker_differs(old: _Node, new: _Node) -> bool:
    return _stat_differs(old.st, new.st) or old.xattrs.get(_CAPABILITY) != new.xattrs.get(
        _CAPABILITY
    )


def tree_xattrs(disk: dict[str, bytes]) -> dict[str, bytes]:
    """The xattrs a layer tar records for a plain (vfs) tree, where ingest stores them
    verbatim: all but host SELinux labels."""
    return {k: v for k, v in disk.items() if k not in _HOST_XATTRS}


def upper_xattrs(disk: dict[str, bytes]) -> dict[str, bytes]:
    """The xattrs a layer tar records for an overlay upper dir: overlay's own
    ``trusted.overlay.*`` dropped, the escapes ingest and the kernel (>= 6.7) apply to image
    xattrs (``trusted.overlay.overlay.X``, ``user.overlay.overlay.X``) undone, host SELinux
    labels dropped."""
    out: dict[str, bytes] = {}
    for name, value in disk.items():
        if name in _HOST_XATTRS:
            continue
        if name.startswith(_OVL_ESCAPED):
            out[_OVL + name[len(_OVL_ESCAPED) :]] = value
        elif name.startswith(_USER_OVL_ESCAPED):
            out["user.overlay." + name[len(_USER_OVL_ESCAPED) :]] = value
        elif not name.startswith(_OVL):
            out.setdefault(name, value)
    return out


# -- docker diff ------------------------------------------------------------------------------


def tree_changes(lower: Path | None, upper: Path) -> list[Change]:
    """``docker diff`` between two full trees, with go-archive's naive rules: A only in
    ``upper``, D only in ``lower``, C when mode/uid/gid/rdev, (non-dirs) size or mtime, or the
    ``security.capability`` xattr differ, and C for a dir with a changed descendant. A replaced
    dir's old children are not listed. Root never reported; sorted by path (parents first)."""
    out: list[Change] = []
    old_root = _scan(lower) if lower is not None else None
    _tree_changes(old_root, _scan(upper), out)
    return sorted(out, key=lambda c: os.fsencode(c.path))


def _tree_changes(old: _Node | None, new: _Node, out: list[Change]) -> bool:
    old_children = (old.children or {}) if old is not None else {}
    new_children = new.children or {}
    start = len(out)
    for name, n in new_children.items():
        o = old_children.get(name)
        if o is None:
            out.append(Change("/" + n.path, ChangeKind.ADDED))
            if n.is_dir:
                _tree_changes(None, n, out)
            continue
        changed = _docker_differs(o, n)
        if changed:
            out.append(Change("/" + n.path, ChangeKind.MODIFIED))
        if n.is_dir:
            mark = len(out)
            if _tree_changes(o if o.is_dir else None, n, out) and not changed:
                out.insert(mark, Change("/" + n.path, ChangeKind.MODIFIED))
    out.extend(
        Change("/" + o.path, ChangeKind.DELETED)
        for name, o in old_children.items()
        if name not in new_children
    )
    return len(out) > start


def upper_changes(
    upper: Path,
    *,
    lookup_below: Callable[[str], os.stat_result | None],
    list_below: Callable[[str], Iterable[str]] | None = None,
) -> list[Change]:
    """``docker diff`` from an overlay upper dir: a whiteout is D; anything else is A when
    ``lookup_below`` finds nothing, C when it does (a dir only when its mode/owner or type
    changed, it is opaque, or something below it changed). An opaque dir hides all its lower
    children: given ``list_below`` (names in the dir below), those not recreated are D; without
    it they go unreported. Sorted by path (parents first)."""
    out: list[Change] = []
    _upper_changes(_scan(upper), lookup_below, list_below, out)
    return sorted(out, key=lambda c: os.fsencode(c.path))


def _upper_changes(
    node: _Node,
    lookup_below: Callable[[str], os.stat_result | None],
    list_below: Callable[[str], Iterable[str]] | None,
    out: list[Change],
) -> bool:
    start = len(out)
    for n in (node.children or {}).values():
        if n.is_whiteout:
            out.append(Change("/" + n.path, ChangeKind.DELETED))
            continue
        below = lookup_below(n.path)
        if below is None:
            out.append(Change("/" + n.path, ChangeKind.ADDED))
            if n.is_dir:
                _upper_changes(n, lambda _p: None, None, out)
            continue
        if not n.is_dir:
            out.append(Change("/" + n.path, ChangeKind.MODIFIED))
            continue
        opaque = n.xattrs.get(_OPAQUE_XATTR) == b"y"
        mark = len(out)
        inner = _upper_changes(n, lookup_below, list_below, out)
        if opaque and list_below is not None and stat.S_ISDIR(below.st_mode):
            kept = n.children or {}
            hidden = sorted(set(list_below(n.path)) - set(kept), key=os.fsencode)
            out.extend(Change("/" + _child(n.path, h), ChangeKind.DELETED) for h in hidden)
            inner = inner or bool(hidden)
        own = opaque or (below.st_mode, below.st_uid, below.st_gid) != (
            n.st.st_mode,
            n.st.st_uid,
            n.st.st_gid,
        )
        if own or inner:
            out.insert(mark, Change("/" + n.path, ChangeKind.MODIFIED))
    return len(out) > start


# -- layer tars -------------------------------------------------------------------------------


def _entry(
    n: _Node, *, mtime_clamp: int | None, xattrs: Callable[[dict[str, bytes]], dict[str, bytes]]
) -> Entry:
    st = n.st
    mode = st.st_mode
    if stat.S_ISREG(mode):
        kind, size = EntryKind.FILE, st.st_size
    else:
        size = 0
        kinds = {
            stat.S_IFDIR: EntryKind.DIR,
            stat.S_IFLNK: EntryKind.SYMLINK,
            stat.S_IFCHR: EntryKind.CHAR,
            stat.S_IFBLK: EntryKind.BLOCK,
            stat.S_IFIFO: EntryKind.FIFO,
        }
        if stat.S_IFMT(mode) not in kinds:
            raise DriverError(f"cannot put {n.path!r} in a layer: sockets have no tar form")
        kind = kinds[stat.S_IFMT(mode)]
    dev = kind in (EntryKind.CHAR, EntryKind.BLOCK)
    mtime = st.st_mtime_ns // 1_000_000_000
    return Entry(
        path=n.path,
        kind=kind,
        mode=stat.S_IMODE(mode),
        uid=st.st_uid,
        gid=st.st_gid,
        size=size,
        mtime=mtime if mtime_clamp is None else min(mtime, mtime_clamp),
        linkname=n.target,
        devmajor=os.major(st.st_rdev) if dev else 0,
        devminor=os.minor(st.st_rdev) if dev else 0,
        xattrs=xattrs(n.xattrs),
    )


class _LayerWriter:
    """Writes scanned nodes; hardlinks become TypeLink to the first path written."""

    def __init__(
        self,
        out: IO[bytes],
        *,
        mtime_clamp: int | None,
        xattrs: Callable[[dict[str, bytes]], dict[str, bytes]],
    ) -> None:
        self.tar = TarWriter(out, mtime_clamp=mtime_clamp)
        self.clamp = mtime_clamp
        self.xattrs = xattrs
        self.rows: list[IndexEntry] = []
        self._inodes: dict[tuple[int, int], str] = {}

    def whiteout(self, path: str, *, uid: int = 0, gid: int = 0, mtime: int = 0) -> None:
        # Mode 0600 as Docker's overlay converter writes them.
        e = Entry(path=path, kind=EntryKind.WHITEOUT, mode=0o600, uid=uid, gid=gid, mtime=mtime)
        self.rows.append(self.tar.add(e))

    def opaque(self, n: _Node) -> None:
        # As Docker's converter: the dir's permission bits and owner, mtime 0.
        st = n.st
        e = Entry(
            path=n.path, kind=EntryKind.OPAQUE, mode=st.st_mode & 0o777, uid=st.st_uid,
            gid=st.st_gid, mtime=0,
        )  # fmt: skip
        self.rows.append(self.tar.add(e))

    def node(self, n: _Node, dir_fd: int) -> None:
        entry = _entry(n, mtime_clamp=self.clamp, xattrs=self.xattrs)
        if not n.is_dir and n.st.st_nlink > 1:
            key = (n.st.st_dev, n.st.st_ino)
            first = self._inodes.get(key)
            if first is not None:
                link = Entry(
                    path=n.path, kind=EntryKind.HARDLINK, mode=entry.mode, uid=entry.uid,
                    gid=entry.gid, mtime=entry.mtime, linkname=first, xattrs=entry.xattrs,
                )  # fmt: skip
                self.rows.append(self.tar.add(link))
                return
            self._inodes[key] = n.path
        if entry.kind is not EntryKind.FILE:
            self.rows.append(self.tar.add(entry))
            return
        name = n.path.rpartition("/")[2]
        fd = os.open(name, _OPEN_FLAGS, dir_fd=dir_fd)
        with open(fd, "rb", buffering=0) as f:
            now = os.fstat(fd)
            if (now.st_dev, now.st_ino) != (n.st.st_dev, n.st.st_ino):
                raise DriverError(f"{n.path!r} was replaced while the layer was being written")
            self.rows.append(self.tar.add(entry, f))

    def close(self) -> list[IndexEntry]:
        self.tar.close()
        return self.rows


def _open_child(dir_fd: int, n: _Node) -> int:
    fd = os.open(n.path.rpartition("/")[2], _DIR_FLAGS, dir_fd=dir_fd)
    now = os.fstat(fd)
    if (now.st_dev, now.st_ino) != (n.st.st_dev, n.st.st_ino):
        os.close(fd)
        raise DriverError(f"{n.path!r} was replaced while the layer was being written")
    return fd


def write_tree_diff(
    lower: Path | None, upper: Path, out: IO[bytes], *, mtime_clamp: int | None = None
) -> list[IndexEntry]:
    """The vfs driver's layer: a tar of what ``upper`` changed relative to ``lower``.

    A path is written when it is new, when go-archive's naive rules call it changed, when any of
    its xattrs changed, or when its hardlink peers changed; every path of a written inode is
    written so links survive. Deleted paths become whiteouts (explicit, never opaque). A dir is
    written when it changed or anything below it is. Returns the file-index rows."""
    old = _scan(lower) if lower is not None else None
    new = _scan(upper)
    wanted: set[str] = set()
    dirty: set[str] = set()  # paths of dirs with whiteouts directly inside
    _plan(old, new, wanted, dirty)
    for n in _walk(new):  # a written inode takes all its paths along
        if n.path in wanted:
            wanted.update(n.peers)
    for p in list(wanted) + list(dirty):
        while "/" in p:
            p = p.rpartition("/")[0]
            if p in dirty and p not in wanted:
                break  # its ancestors are marked already
            dirty.add(p)
    w = _LayerWriter(out, mtime_clamp=mtime_clamp, xattrs=tree_xattrs)
    fd = os.open(upper, _DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        _write_diff(old, new, wanted | dirty, w, fd)
    finally:
        os.close(fd)
    return w.close()


def _plan(old: _Node | None, new: _Node, wanted: set[str], dirty: set[str]) -> None:
    old_children = (old.children or {}) if old is not None else {}
    new_children = new.children or {}
    if any(name not in new_children for name in old_children):
        dirty.add(new.path)
    for name, n in new_children.items():
        o = old_children.get(name)
        if (
            o is None
            or _stat_differs(o.st, n.st)
            or tree_xattrs(o.xattrs) != tree_xattrs(n.xattrs)
            or (not n.is_dir and o.peers != n.peers)
            or o.target != n.target
        ):
            wanted.add(n.path)
        if n.is_dir:
            _plan(o if o is not None and o.is_dir else None, n, wanted, dirty)


def _write_diff(old: _Node | None, new: _Node, keep: set[str], w: _LayerWriter, fd: int) -> None:
    old_children = (old.children or {}) if old is not None else {}
    new_children = new.children or {}
    for name in sorted(set(old_children) - set(new_children), key=os.fsencode):
        w.whiteout(old_children[name].path)
    for name, n in new_children.items():
        if n.path not in keep:
            continue
        w.node(n, fd)
        if n.is_dir:
            o = old_children.get(name)
            child_fd = _open_child(fd, n)
            try:
                _write_diff(o if o is not None and o.is_dir else None, n, keep, w, child_fd)
            finally:
                os.close(child_fd)


def write_upper_dir(
    upper: Path,
    out: IO[bytes],
    *,
    exists_below: Callable[[str], bool],
    mtime_clamp: int | None = None,
) -> list[IndexEntry]:
    """Overlay's native diff: the upper dir as an OCI layer tar. A 0:0 char device (or an
    ``overlay.whiteout`` file) becomes ``.wh.<name>``; an opaque dir is written, then
    ``.wh..wh..opq`` only if ``exists_below(dir)`` (the kernel marks every dir created over a
    whiteout opaque). Raises DriverError on redirect/metacopy xattrs."""
    root = _scan(upper)
    for n in _walk(root):
        for bad in _UNSAFE_XATTRS:
            if bad in n.xattrs:
                raise DriverError(
                    f"{n.path!r} in {upper} has {bad}: this upper dir needs a naive diff"
                )
    w = _LayerWriter(out, mtime_clamp=mtime_clamp, xattrs=upper_xattrs)
    fd = os.open(upper, _DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        _write_upper(root, w, fd, exists_below)
    finally:
        os.close(fd)
    return w.close()


def _write_upper(
    node: _Node, w: _LayerWriter, fd: int, exists_below: Callable[[str], bool]
) -> None:
    children = list((node.children or {}).values())
    for n in children:
        if n.is_whiteout:
            mtime = n.st.st_mtime_ns // 1_000_000_000
            if w.clamp is not None:
                mtime = min(mtime, w.clamp)
            w.whiteout(n.path, uid=n.st.st_uid, gid=n.st.st_gid, mtime=mtime)
    for n in children:
        if n.is_whiteout:
            continue
        w.node(n, fd)
        if not n.is_dir:
            continue
        if n.xattrs.get(_OPAQUE_XATTR) == b"y" and exists_below(n.path):
            w.opaque(n)
        child_fd = _open_child(fd, n)
        try:
            _write_upper(n, w, child_fd, exists_below)
        finally:
            os.close(child_fd)
