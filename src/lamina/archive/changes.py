"""What a layer changed, as ``docker diff`` lines or as an OCI layer tar.

Two sources: two full trees (vfs, Docker's *naive* diff) and an overlay upper dir (the *native*
diff). Both read the trees once into memory (lstat + xattrs), decide, then write in Go's
``filepath.Walk`` order (depth first, siblings by name bytes), with a dir's whiteouts before its
other children as OCI suggests. Files are re-opened through directory fds with ``O_NOFOLLOW`` and
checked against the inode that was scanned, so a running container swapping paths for symlinks
cannot make the diff read outside the tree.

Callbacks (``exists_below``, ``lookup_below``, ``list_below``) take relative paths (``"etc/x"``).

Every walk is iterative and holds one directory fd (:class:`_Cursor`): a container can make a
tree thousands of levels deep (``mkdir d; cd d`` in a loop), which made the recursive walks a
RecursionError (exit 70) past ~1,000 levels, and an fd per level would run into the open-file
limit soon after. Docker's walks (Go, growing stacks) list such a tree.
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

from lamina.archive.entry import Entry, EntryKind, IndexEntry, RowSink
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


class _Cursor:
    """The one open directory fd of a depth-first walk over a scanned tree. :meth:`down` opens
    a child by name, :meth:`up` the parent by ``..``; each checks the dir it reaches is the
    inode that was scanned there, so a running container renaming dirs meanwhile cannot lead
    the walk elsewhere (a DriverError instead). Use as a context manager."""

    def __init__(self, root: Path) -> None:
        self.fd = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)
        self._path: list[_Node] = []

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)

    def _move(self, name: str, expected: _Node) -> None:
        fd = os.open(name, _DIR_FLAGS, dir_fd=self.fd)
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (expected.st.st_dev, expected.st.st_ino):
            os.close(fd)
            raise DriverError(f"{expected.path!r} was replaced while the tree was being read")
        os.close(self.fd)
        self.fd = fd

    def down(self, parent: _Node, child: _Node) -> None:
        self._move(child.path.rpartition("/")[2], child)
        self._path.append(parent)

    def up(self) -> None:
        self._move("..", self._path.pop())

    def walk(self, root: _Node, children: Callable[[_Node], Iterator[_Node]]) -> Iterator[_Node]:
        """Depth first below ``root`` (the dir the cursor is on): each node ``children(dir)``
        gives, yielded while :attr:`fd` is the dir holding it; a dir is then entered, and
        ``children`` is asked for its nodes with :attr:`fd` on it. Iterative: a tree
        thousands of levels deep costs a list, not the interpreter's stack."""
        stack = [(root, children(root))]
        while stack:
            node, pending = stack[-1]
            n = next(pending, None)
            if n is None:
                stack.pop()
                if stack:
                    self.up()
                continue
            yield n
            if n.is_dir:
                self.down(node, n)
                stack.append((n, children(n)))


def _fill(dir_fd: int, node: _Node) -> None:
    """``node.children`` from the dir ``dir_fd`` (lstat, xattrs, link targets; one level)."""
    node.children = {}
    for name in sorted(os.listdir(dir_fd), key=os.fsencode):
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        child = _Node(_child(node.path, name), st, _read_xattrs(dir_fd, name))
        if stat.S_ISLNK(st.st_mode):
            child.target = os.readlink(name, dir_fd=dir_fd)
        node.children[name] = child


def _subdirs(node: _Node) -> Iterator[_Node]:
    return (c for c in (node.children or {}).values() if c.is_dir)


def _scan(root: Path) -> _Node:
    with _Cursor(root) as cursor:
        top = _Node("", os.fstat(cursor.fd), {})

        def subdirs(node: _Node) -> Iterator[_Node]:
            _fill(cursor.fd, node)  # the cursor is on node: read its entries
            return _subdirs(node)

        for _ in cursor.walk(top, subdirs):
            pass
    _link_peers(top)
    return top


def _walk(node: _Node) -> Iterator[_Node]:
    """Every node below ``node``, depth first, parents before children."""
    stack = [iter((node.children or {}).values())]
    while stack:
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
            continue
        yield child
        if child.children is not None:
            stack.append(iter(child.children.values()))


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


class _DiffFrame:
    """A dir being compared: what it was, what it is, where its changes start in ``out``,
    and whether it was reported already (then changes below do not make it C)."""

    __slots__ = ("below", "items", "new", "old", "reported", "start")

    def __init__(
        self, old: _Node | None, new: _Node, start: int, *, reported: bool,
        below: os.stat_result | None = None,
    ) -> None:  # fmt: skip
        self.old = old
        self.new = new
        self.start = start
        self.reported = reported
        self.below = below  # upper_changes: the dir below this one, when there is one
        self.items = iter((new.children or {}).values())


def _tree_changes(old: _Node | None, new: _Node, out: list[Change]) -> None:
    # The caller sorts ``out``: a dir's C for changes below it is appended when they are known.
    frames = [_DiffFrame(old, new, len(out), reported=True)]
    while frames:
        f = frames[-1]
        old_children = (f.old.children or {}) if f.old is not None else {}
        n = next(f.items, None)
        if n is None:
            frames.pop()
            new_children = f.new.children or {}
            out.extend(
                Change("/" + o.path, ChangeKind.DELETED)
                for name, o in old_children.items()
                if name not in new_children
            )
            if len(out) > f.start and not f.reported:
                out.append(Change("/" + f.new.path, ChangeKind.MODIFIED))
            continue
        o = old_children.get(n.path.rpartition("/")[2])
        if o is None:
            out.append(Change("/" + n.path, ChangeKind.ADDED))
            if n.is_dir:
                frames.append(_DiffFrame(None, n, len(out), reported=True))
            continue
        changed = _docker_differs(o, n)
        if changed:
            out.append(Change("/" + n.path, ChangeKind.MODIFIED))
        if n.is_dir:
            frames.append(_DiffFrame(o if o.is_dir else None, n, len(out), reported=changed))


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
    root: _Node,
    lookup_below: Callable[[str], os.stat_result | None],
    list_below: Callable[[str], Iterable[str]] | None,
    out: list[Change],
) -> None:
    # A frame with ``below`` is a dir that exists below (its C is decided when it is done);
    # one without is inside an added dir, where everything is A and nothing is looked up.
    frames = [_DiffFrame(None, root, len(out), reported=True, below=root.st)]
    while frames:
        f = frames[-1]
        n = next(f.items, None)
        if n is None:
            frames.pop()
            if frames and f.below is not None:
                _finish_upper_dir(f, list_below, out)
            continue
        if n.is_whiteout:
            out.append(Change("/" + n.path, ChangeKind.DELETED))
            continue
        below = lookup_below(n.path) if f.below is not None else None
        if below is None:
            out.append(Change("/" + n.path, ChangeKind.ADDED))
            if n.is_dir:
                frames.append(_DiffFrame(None, n, len(out), reported=True))
            continue
        if not n.is_dir:
            out.append(Change("/" + n.path, ChangeKind.MODIFIED))
            continue
        frames.append(_DiffFrame(None, n, len(out), reported=False, below=below))


def _finish_upper_dir(
    f: _DiffFrame, list_below: Callable[[str], Iterable[str]] | None, out: list[Change]
) -> None:
    n, below = f.new, f.below
    assert below is not None
    opaque = n.xattrs.get(_OPAQUE_XATTR) == b"y"
    inner = len(out) > f.start
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
        out.append(Change("/" + n.path, ChangeKind.MODIFIED))


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
        rows: RowSink | None,
    ) -> None:
        self.tar = TarWriter(out, mtime_clamp=mtime_clamp)
        self.clamp = mtime_clamp
        self.xattrs = xattrs
        self.sink = rows  # None: the rows go (commit and build re-read them from the tar)
        self._inodes: dict[tuple[int, int], str] = {}

    def whiteout(self, path: str, *, uid: int = 0, gid: int = 0, mtime: int = 0) -> None:
        # Mode 0600 as Docker's overlay converter writes them.
        e = Entry(path=path, kind=EntryKind.WHITEOUT, mode=0o600, uid=uid, gid=gid, mtime=mtime)
        self._row(self.tar.add(e))

    def opaque(self, n: _Node) -> None:
        # As Docker's converter: the dir's permission bits and owner, mtime 0.
        st = n.st
        e = Entry(
            path=n.path, kind=EntryKind.OPAQUE, mode=st.st_mode & 0o777, uid=st.st_uid,
            gid=st.st_gid, mtime=0,
        )  # fmt: skip
        self._row(self.tar.add(e))

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
                self._row(self.tar.add(link))
                return
            self._inodes[key] = n.path
        if entry.kind is not EntryKind.FILE:
            self._row(self.tar.add(entry))
            return
        name = n.path.rpartition("/")[2]
        fd = os.open(name, _OPEN_FLAGS, dir_fd=dir_fd)
        with open(fd, "rb", buffering=0) as f:
            now = os.fstat(fd)
            if (now.st_dev, now.st_ino) != (n.st.st_dev, n.st.st_ino):
                raise DriverError(f"{n.path!r} was replaced while the layer was being written")
            self._row(self.tar.add(entry, f))

    def _row(self, row: IndexEntry) -> None:
        if self.sink is not None:
            self.sink([row])

    def close(self) -> None:
        self.tar.close()


def write_tree_diff(
    lower: Path | None,
    upper: Path,
    out: IO[bytes],
    *,
    mtime_clamp: int | None = None,
    rows: RowSink | None = None,
) -> None:
    """The vfs driver's layer: a tar of what ``upper`` changed relative to ``lower``.

    A path is written when it is new, when go-archive's naive rules call it changed, when any of
    its xattrs changed, or when its hardlink peers changed; every path of a written inode is
    written so links survive. Deleted paths become whiteouts (explicit, never opaque). A dir is
    written when it changed or anything below it is. Its file-index rows go to ``rows``, if
    given, one at a time."""
    old = _scan(lower) if lower is not None else None
    new = _scan(upper)
    wanted: set[str] = set()
    dirty: set[str] = set()  # paths of dirs with whiteouts directly inside
    _plan(old, new, wanted, dirty)
    for n in _walk(new):  # a written inode takes all its paths along
        if n.path in wanted:
            wanted.update(n.peers)
    climbed: set[str] = set()  # dirs whose ancestors are all in dirty already
    for p in list(wanted) + list(dirty):
        while "/" in p:
            p = p.rpartition("/")[0]
            if p in climbed:
                break  # each path is climbed once: a deep tree's were climbed once per level
            climbed.add(p)
            dirty.add(p)
    w = _LayerWriter(out, mtime_clamp=mtime_clamp, xattrs=tree_xattrs, rows=rows)
    _write_diff(old, new, wanted | dirty, w, upper)
    w.close()


def _plan(old: _Node | None, new: _Node, wanted: set[str], dirty: set[str]) -> None:
    stack = [(old, new)]
    while stack:
        old, new = stack.pop()
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
                stack.append((o if o is not None and o.is_dir else None, n))


def _write_diff(
    old: _Node | None, new: _Node, keep: set[str], w: _LayerWriter, upper: Path
) -> None:
    below: dict[str, _Node | None] = {new.path: old}  # each dir's counterpart in ``old``

    def kept(node: _Node) -> Iterator[_Node]:
        """The dir's whiteouts written; its kept children, each dir's counterpart noted."""
        counterpart = below.pop(node.path)
        old_children = (counterpart.children or {}) if counterpart is not None else {}
        new_children = node.children or {}
        for name in sorted(set(old_children) - set(new_children), key=os.fsencode):
            w.whiteout(old_children[name].path)
        children = [n for n in new_children.values() if n.path in keep]
        for n in children:
            if n.is_dir:
                o = old_children.get(n.path.rpartition("/")[2])
                below[n.path] = o if o is not None and o.is_dir else None
        return iter(children)

    with _Cursor(upper) as cursor:
        for n in cursor.walk(new, kept):
            w.node(n, cursor.fd)


def write_upper_dir(
    upper: Path,
    out: IO[bytes],
    *,
    exists_below: Callable[[str], bool],
    mtime_clamp: int | None = None,
    rows: RowSink | None = None,
) -> None:
    """Overlay's native diff: the upper dir as an OCI layer tar. A 0:0 char device (or an
    ``overlay.whiteout`` file) becomes ``.wh.<name>``; an opaque dir is written, then
    ``.wh..wh..opq`` only if ``exists_below(dir)`` (the kernel marks every dir created over a
    whiteout opaque). Its file-index rows go to ``rows``, if given, one at a time. Raises
    DriverError on redirect/metacopy xattrs."""
    root = _scan(upper)
    for n in _walk(root):
        for bad in _UNSAFE_XATTRS:
            if bad in n.xattrs:
                raise DriverError(
                    f"{n.path!r} in {upper} has {bad}: this upper dir needs a naive diff"
                )
    w = _LayerWriter(out, mtime_clamp=mtime_clamp, xattrs=upper_xattrs, rows=rows)
    _write_upper(root, w, upper, exists_below)
    w.close()


def _write_upper(
    root: _Node, w: _LayerWriter, upper: Path, exists_below: Callable[[str], bool]
) -> None:
    def whiteouts(node: _Node) -> Iterator[_Node]:
        """Write the dir's whiteouts; the rest of its children, to write after them."""
        children = list((node.children or {}).values())
        for n in children:
            if n.is_whiteout:
                mtime = n.st.st_mtime_ns // 1_000_000_000
                if w.clamp is not None:
                    mtime = min(mtime, w.clamp)
                w.whiteout(n.path, uid=n.st.st_uid, gid=n.st.st_gid, mtime=mtime)
        return (n for n in children if not n.is_whiteout)

    with _Cursor(upper) as cursor:
        for n in cursor.walk(root, whiteouts):
            w.node(n, cursor.fd)
            if n.is_dir and n.xattrs.get(_OPAQUE_XATTR) == b"y" and exists_below(n.path):
                w.opaque(n)
