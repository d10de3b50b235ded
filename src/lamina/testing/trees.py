"""Generated file trees and tree mutations for property tests (hypothesis), plus helpers to
materialise a tree on disk, mutate a real dir (a plain copy or an overlay merged dir) and
snapshot a tree into a comparable dict.

A :data:`Tree` maps relative paths to :class:`Node` specs; every parent is a DIR node. Trees
cover files, dirs, symlinks (relative, absolute, dangling, long, non-ASCII targets), hardlinks,
setuid/setgid/sticky modes, ``user.*`` xattrs, FIFOs, char and block devices (root only), big
uids (PAX), out-of-range mtimes (PAX), long and Unicode names.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final, NamedTuple

from hypothesis import strategies as st
from msgspec import Struct, field
from msgspec.structs import replace

from lamina.archive.entry import EntryKind

IS_ROOT: Final = os.geteuid() == 0

NAMES: Final = (
    "a", "b", "c", "d", "etc", "bin", "a.txt", "a b", "é", "日本語", "ü-x", "-dash",
    "L" * 120, "M" * 90, ".hidden", "z",
)  # fmt: skip
FILE_MODES: Final = (0o644, 0o755, 0o600, 0o444, 0o4755, 0o2755, 0o6711, 0o1644, 0o000)
DIR_MODES: Final = (0o755, 0o700, 0o1777, 0o2775, 0o555)
IDS: Final = (0, 1000, 65534, 3_000_000)  # 3,000,000 > 8**7 - 1 needs a PAX record
MTIMES: Final = (0, 1, 1_600_000_000, 1 << 33, -86_400)  # 2**33 and negative need PAX
TARGETS: Final = (
    "a", "../b", "/etc/passwd", "/lib64", "nowhere/dangling", "é/ü", "/" + "t" * 110, ".",
)  # fmt: skip
XATTR_NAMES: Final = ("user.a", "user.é", "user.long." + "n" * 40)
XATTR_VALUES: Final = (b"", b"v", b"\x00\x01\xff", b"x" * 300)
DEVICES: Final = ((1, 3), (1, 5), (4, 64), (7, 0), (8, 1), (259, 1048575))


class Node(Struct, frozen=True, kw_only=True):
    kind: EntryKind  # FILE, DIR, SYMLINK, HARDLINK, CHAR, BLOCK or FIFO
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: int = 1_600_000_000
    content: bytes = b""
    target: str = ""  # SYMLINK: the target; HARDLINK: the path of a FILE in the same tree
    rdev: tuple[int, int] = (0, 0)
    xattrs: tuple[tuple[str, bytes], ...] = ()


Tree = dict[str, Node]


class Mutation(Struct, frozen=True, kw_only=True):
    """One change made to a live tree. ``op``: write, delete, replace_dir (rm -rf + mkdir +
    new children: overlay makes it opaque), chmod, chown, touch, setxattr, add, replace."""

    op: str
    path: str
    node: Node | None = None
    subtree: Tree = field(default_factory=dict)  # relative to ``path``, for add/replace_dir
    mode: int = 0
    uid: int = 0
    gid: int = 0
    mtime: int = 0
    content: bytes = b""
    xattr: tuple[str, bytes] = ("", b"")


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _kinds(devices: bool) -> list[EntryKind]:
    ks = [EntryKind.FILE, EntryKind.DIR, EntryKind.SYMLINK, EntryKind.HARDLINK, EntryKind.FIFO]
    return [*ks, EntryKind.CHAR, EntryKind.BLOCK] if devices else ks


@st.composite
def nodes(draw: st.DrawFn, kind: EntryKind, *, files: list[str], root: bool = IS_ROOT) -> Node:
    """A node of ``kind``; a HARDLINK picks one of ``files`` (falls back to a FILE)."""
    if kind is EntryKind.HARDLINK and not files:
        kind = EntryKind.FILE
    ids = st.sampled_from(IDS if root else (os.geteuid(),))
    modes: tuple[int, ...] = DIR_MODES if kind is EntryKind.DIR else FILE_MODES
    if not root:
        modes = tuple(m | 0o700 for m in modes)
    xattrs: tuple[tuple[str, bytes], ...] = ()
    if kind in (EntryKind.FILE, EntryKind.DIR):
        pairs = draw(
            st.lists(
                st.tuples(st.sampled_from(XATTR_NAMES), st.sampled_from(XATTR_VALUES)),
                max_size=2,
                unique_by=lambda p: p[0],
            )
        )
        xattrs = tuple(sorted(pairs))
    return Node(
        kind=kind,
        mode=draw(st.sampled_from(modes)) if kind is not EntryKind.SYMLINK else 0o777,
        uid=draw(ids),
        gid=draw(ids),
        mtime=draw(st.sampled_from(MTIMES)),
        content=draw(st.binary(max_size=700)) if kind is EntryKind.FILE else b"",
        target=(
            draw(st.sampled_from(TARGETS))
            if kind is EntryKind.SYMLINK
            else draw(st.sampled_from(files))
            if kind is EntryKind.HARDLINK
            else ""
        ),
        rdev=draw(st.sampled_from(DEVICES))
        if kind in (EntryKind.CHAR, EntryKind.BLOCK)
        else (0, 0),
        xattrs=xattrs,
    )


@st.composite
def trees(
    draw: st.DrawFn, *, max_entries: int = 10, devices: bool = IS_ROOT, root: bool = IS_ROOT
) -> Tree:
    """A random tree: each entry goes into a random existing dir with a random name."""
    tree: Tree = {}
    _grow(draw, tree, "", max_entries=max_entries, devices=devices, root=root)
    return tree


def _grow(
    draw: st.DrawFn, tree: Tree, base: str, *, max_entries: int, devices: bool, root: bool
) -> None:
    dirs = [base] + [p for p, n in tree.items() if n.kind is EntryKind.DIR and p.startswith(base)]
    for _ in range(draw(st.integers(0, max_entries))):
        path = _join(draw(st.sampled_from(dirs)), draw(st.sampled_from(NAMES)))
        if path in tree:
            continue
        files = [p for p, n in tree.items() if n.kind is EntryKind.FILE]
        kind = draw(st.sampled_from(_kinds(devices)))
        tree[path] = draw(nodes(kind, files=files, root=root))
        if kind is EntryKind.DIR:
            dirs.append(path)


@st.composite
def mutated_trees(
    draw: st.DrawFn, *, max_entries: int = 10, max_mutations: int = 6, devices: bool = IS_ROOT
) -> tuple[Tree, list[Mutation]]:
    """A lower tree and a list of mutations to make to a live copy of it."""
    root = IS_ROOT
    lower = draw(trees(max_entries=max_entries, devices=devices, root=root))
    live: dict[str, EntryKind] = {p: n.kind for p, n in lower.items()}
    muts: list[Mutation] = []
    for _ in range(draw(st.integers(1, max_mutations))):
        ops = ["add", "add"] + (
            ["write", "delete", "replace_dir", "chmod", "touch", "setxattr", "replace"]
            if live
            else []
        )
        if live and root:
            ops.append("chown")
        op = draw(st.sampled_from(ops))
        files = sorted(p for p, k in live.items() if k is EntryKind.FILE)
        dirs = sorted(p for p, k in live.items() if k is EntryKind.DIR)
        if op == "add":
            parent = draw(st.sampled_from(["", *dirs]))
            path = _join(parent, draw(st.sampled_from(NAMES)))
            if path in live:
                continue
            kind = draw(st.sampled_from(_kinds(devices)))
            node = draw(nodes(kind, files=files, root=root))
            sub: Tree = {}
            if kind is EntryKind.DIR:
                _grow(draw, sub, "", max_entries=3, devices=devices, root=root)
            muts.append(Mutation(op=op, path=path, node=node, subtree=sub))
            _track(live, path, node, sub)
            continue
        path = draw(st.sampled_from(sorted(live)))
        kind = live[path]
        if op == "write" and kind in (EntryKind.FILE, EntryKind.HARDLINK):
            muts.append(Mutation(op=op, path=path, content=draw(st.binary(max_size=300))))
        elif op == "delete":
            muts.append(Mutation(op=op, path=path))
            _forget(live, path)
        elif op == "replace_dir" and kind is EntryKind.DIR:
            dnode = draw(nodes(EntryKind.DIR, files=[], root=root))
            sub = {}
            _grow(draw, sub, "", max_entries=3, devices=devices, root=root)
            muts.append(Mutation(op=op, path=path, node=dnode, subtree=sub))
            _forget(live, path)
            _track(live, path, dnode, sub)
        elif op == "replace" and kind is not EntryKind.DIR:
            new_kind = draw(st.sampled_from(_kinds(devices)))
            node = draw(nodes(new_kind, files=[f for f in files if f != path], root=root))
            sub = {}
            if new_kind is EntryKind.DIR:
                _grow(draw, sub, "", max_entries=2, devices=devices, root=root)
            muts.append(Mutation(op=op, path=path, node=node, subtree=sub))
            _forget(live, path)
            _track(live, path, node, sub)
        elif op == "chmod" and kind is not EntryKind.SYMLINK:
            modes = DIR_MODES if kind is EntryKind.DIR else FILE_MODES
            muts.append(Mutation(op=op, path=path, mode=draw(st.sampled_from(modes))))
        elif op == "chown":
            ids = st.sampled_from(IDS)
            muts.append(Mutation(op=op, path=path, uid=draw(ids), gid=draw(ids)))
        elif op == "touch" and kind is not EntryKind.DIR:
            muts.append(Mutation(op=op, path=path, mtime=draw(st.sampled_from(MTIMES))))
        elif op == "setxattr" and kind in (EntryKind.FILE, EntryKind.DIR):
            pair = (draw(st.sampled_from(XATTR_NAMES)), draw(st.sampled_from(XATTR_VALUES)))
            muts.append(Mutation(op=op, path=path, xattr=pair))
    return lower, muts


def _forget(live: dict[str, EntryKind], path: str) -> None:
    for p in [p for p in live if p == path or p.startswith(path + "/")]:
        del live[p]


def _track(live: dict[str, EntryKind], path: str, node: Node, sub: Tree) -> None:
    live[path] = EntryKind.FILE if node.kind is EntryKind.HARDLINK else node.kind
    for p, n in sub.items():
        live[_join(path, p)] = EntryKind.FILE if n.kind is EntryKind.HARDLINK else n.kind


# -- on disk ----------------------------------------------------------------------------------


def materialise(tree: Mapping[str, Node], root: Path) -> None:
    """Create ``tree`` under the existing dir ``root``; mtimes set last, deepest first."""
    # Hardlinks last: their target may sit deeper than they do.
    order = sorted(
        tree, key=lambda p: (tree[p].kind is EntryKind.HARDLINK, p.count("/"), os.fsencode(p))
    )
    for path in order:
        _create(root / path, tree[path], root)
    for path in sorted(tree, key=lambda p: -p.count("/")):
        node = tree[path]
        if node.kind is not EntryKind.HARDLINK:
            os.utime(root / path, ns=(0, node.mtime * 10**9), follow_symlinks=False)


def _create(p: Path, node: Node, root: Path) -> None:
    kind = node.kind
    if kind is EntryKind.HARDLINK:
        os.link(root / node.target, p)
        return
    if kind is EntryKind.FILE:
        p.write_bytes(node.content)
    elif kind is EntryKind.DIR:
        p.mkdir()
    elif kind is EntryKind.SYMLINK:
        os.symlink(node.target, p)
    elif kind is EntryKind.FIFO:
        os.mkfifo(p)
    else:
        kind_bit = stat.S_IFCHR if kind is EntryKind.CHAR else stat.S_IFBLK
        os.mknod(p, kind_bit | 0o600, os.makedev(*node.rdev))
    if IS_ROOT:
        os.lchown(p, node.uid, node.gid)  # before chmod: chown clears setuid
    if kind is not EntryKind.SYMLINK:
        os.chmod(p, node.mode)
    for name, value in node.xattrs:
        os.setxattr(p, name, value)


def apply_mutations(root: Path, mutations: Iterable[Mutation]) -> None:
    """Make ``mutations`` to the live tree at ``root`` (a plain dir or an overlay merged dir)."""
    for m in mutations:
        p = root / m.path
        if m.op == "write":
            with open(p, "r+b") as f:
                f.truncate(0)
                f.write(m.content)
        elif m.op == "delete":
            _remove(p)
        elif m.op in ("add", "replace", "replace_dir"):
            if m.op != "add":
                _remove(p)
            assert m.node is not None
            # A subtree's hardlinks name paths inside the subtree.
            sub = {
                _join(m.path, q): (
                    replace(n, target=_join(m.path, n.target))
                    if n.kind is EntryKind.HARDLINK
                    else n
                )
                for q, n in m.subtree.items()
            }
            materialise({m.path: m.node, **sub}, root)
        elif m.op == "chmod":
            os.chmod(p, m.mode)
        elif m.op == "chown":
            os.lchown(p, m.uid, m.gid)
        elif m.op == "touch":
            os.utime(p, ns=(0, m.mtime * 10**9), follow_symlinks=False)
        elif m.op == "setxattr":
            os.setxattr(p, *m.xattr)
        else:
            raise ValueError(f"unknown mutation {m.op!r}")


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    else:
        p.unlink()


class Snap(NamedTuple):
    kind: str
    mode: int
    uid: int
    gid: int
    mtime: int | None  # whole seconds; None for dirs (no one keeps dir mtimes across a diff)
    content: str  # sha256 hex of a file's bytes, a symlink's target, or "major:minor"
    xattrs: tuple[tuple[str, bytes], ...]
    links: frozenset[str]  # the other paths of the same inode


def snapshot(root: Path) -> dict[str, Snap]:
    """Everything the union law compares, by relative path."""
    out: dict[str, Snap] = {}
    inodes: dict[tuple[int, int], set[str]] = {}
    stats: dict[str, os.stat_result] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st_ = os.lstat(full)
            stats[rel] = st_
            if not stat.S_ISDIR(st_.st_mode):
                inodes.setdefault((st_.st_dev, st_.st_ino), set()).add(rel)
    for rel, s in stats.items():
        full = os.path.join(root, rel)
        mode = s.st_mode
        if stat.S_ISREG(mode):
            with open(full, "rb") as f:
                content = hashlib.sha256(f.read()).hexdigest()
        elif stat.S_ISLNK(mode):
            content = os.readlink(full)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            content = f"{os.major(s.st_rdev)}:{os.minor(s.st_rdev)}"
        else:
            content = ""
        names = os.listxattr(full, follow_symlinks=False)
        xattrs = tuple(
            sorted(
                (n, os.getxattr(full, n, follow_symlinks=False))
                for n in names
                if n.startswith("user.")
            )
        )
        is_dir = stat.S_ISDIR(mode)
        peers = inodes.get((s.st_dev, s.st_ino), set()) if not is_dir else set()
        out[rel] = Snap(
            kind=_KIND_NAMES[stat.S_IFMT(mode)],
            mode=stat.S_IMODE(mode),
            uid=s.st_uid,
            gid=s.st_gid,
            mtime=None if is_dir else s.st_mtime_ns // 10**9,
            content=content,
            xattrs=xattrs,
            links=frozenset(peers - {rel}),
        )
    return out


_KIND_NAMES: Final = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFCHR: "char",
    stat.S_IFBLK: "block",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}
