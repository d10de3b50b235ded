"""COPY/ADD sources: picking them out of a root (the build context or another stage's rootfs)
and hashing them for the cache (:mod:`lamina.build.destination` writes them into a rootfs).

Everything is fd-confined. In a *source* root, a source path is resolved with in-root symlink
semantics (``openat2(RESOLVE_IN_ROOT)``: ``..`` and absolute targets stop at the root, so a
link can never lead out of the context or the ``--from`` rootfs). As Docker's classic builder
does, a symlink named as a source (or matched by a wildcard) is followed: ``COPY lnk /l`` copies
the file ``lnk`` leads to under the name ``lnk``, and a link to a dir copies the dir's contents.
A link whose target is missing, excluded by ``.dockerignore`` or outside the root (resolved
in-root, ``-> /etc/shadow`` names the context's own ``etc/shadow``) is "no such file"; a loop
is an error too. Below a copied dir nothing is followed: symlinks there are copied as symlinks.
In the *destination* rootfs, the destination dir is resolved in-root too (Docker follows
destination symlinks within the image), then every entry is created relative to a dir fd with
``O_NOFOLLOW``. A source that cleans to a path above the root (``COPY ../x``) is refused.

The context is what Docker's classic builder would send: paths the ``.dockerignore`` leaves out
are not there, except an ignored dir holding something a ``!`` exception keeps (see
:func:`_shown`).
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from msgspec import Struct

from lamina.build.dockerignore import IgnoreMatcher
from lamina.digest import Digest, Hasher
from lamina.errors import BuildError
from lamina.runtime.rootfs import open_in_root

__all__ = [
    "Owner",
    "Selected",
    "Source",
    "SourceRoot",
    "clean_source",
    "open_source_file",
    "read_source_link",
    "select",
    "sources_hash",
    "walk_source",
]

_DIR: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_GLOB_CHARS: Final = frozenset("*?[")
_CHUNK: Final = 1 << 20
# Docker sends only the kept entries below an ignored dir; unpacking them makes the dir itself
# (moby archive.Unpack: MkdirAll 0755, owned by root), so that is how it lands.
_IMPLIED_DIR_MODE: Final = stat.S_IFDIR | 0o755
# os.stat_result's fields past its 10-item sequence, carried over when one is rebuilt.
_STAT_EXTRAS: Final = (
    "st_atime", "st_mtime", "st_ctime", "st_atime_ns", "st_mtime_ns", "st_ctime_ns",
    "st_blksize", "st_blocks", "st_rdev",
)  # fmt: skip


class Owner(Struct, frozen=True, kw_only=True):
    """Who copied entries belong to; ``None`` keeps the source's owner (``COPY --from``)."""

    uid: int
    gid: int


class SourceRoot(Struct, frozen=True, kw_only=True):
    """Where sources come from: the context (with its .dockerignore) or a mounted rootfs."""

    path: Path
    ignore: IgnoreMatcher | None = None
    label: str = "build context"

    def ignored(self, rel: str) -> bool:
        return self.ignore is not None and bool(rel) and self.ignore.matches(rel)


class Source(Struct, frozen=True, kw_only=True):
    """One matched source: ``rel`` is its path in the root as named ("" for the root itself;
    it names the copy), ``real`` where that leads with its symlinks followed in-root (what is
    read; no symlink in it), ``st`` the stat of ``real``."""

    rel: str
    real: str
    st: os.stat_result

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1]


class Selected(Struct, frozen=True, kw_only=True):
    """The sources of one instruction, in order, with the pattern that named them."""

    root: SourceRoot
    sources: tuple[Source, ...]
    wildcard: bool  # some pattern was a glob (Docker then wants a dir destination)


def clean_source(raw: str, *, root_label: str) -> str:
    """A source path relative to the root, ``.`` parts gone; refuses one that climbs out."""
    parts: list[str] = []
    for part in raw.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise BuildError(
                    f"source {raw!r} is outside the {root_label}: paths can not climb out with '..'"
                )
            parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def _open_parent(root: Path, rel: str) -> tuple[int, str]:
    parent, _, name = rel.rpartition("/")
    fd = open_in_root(root, parent or "/", flags=os.O_RDONLY | os.O_DIRECTORY)
    return fd, name


def _lstat_in(root: Path, rel: str) -> os.stat_result | None:
    if not rel:
        return os.stat(root)
    try:
        fd, name = _open_parent(root, rel)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        _loop(exc, rel)
        raise
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    finally:
        os.close(fd)


def _glob(root: SourceRoot, pattern: str) -> list[str]:
    """Paths matching ``pattern`` segment by segment (Go ``filepath.Match`` per segment),
    walking real dirs only."""
    found = [""]
    for seg in pattern.split("/"):
        nxt: list[str] = []
        for base in found:
            if not _GLOB_CHARS & set(seg):
                rel = f"{base}/{seg}" if base else seg
                if _lstat_in(root.path, rel) is not None:
                    nxt.append(rel)
                continue
            for name in _listdir(root.path, base):
                if fnmatch.fnmatchcase(name, seg.replace("[^", "[!")):
                    nxt.append(f"{base}/{name}" if base else name)
        found = sorted(nxt)
    return found


def _loop(exc: OSError, rel: str) -> None:
    """A symlink loop on the way to ``rel`` is the user's error (BuildError), not lamina's."""
    if exc.errno == errno.ELOOP:
        raise BuildError(f"{rel}: too many levels of symbolic links (a symlink loop)") from None


def _listdir(root: Path, rel: str) -> list[str]:
    try:
        fd = open_in_root(root, rel or "/", flags=os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        _loop(exc, rel)
        raise
    try:
        return sorted(os.listdir(fd))
    finally:
        os.close(fd)


def select(root: SourceRoot, patterns: list[str]) -> Selected:
    """Resolve COPY/ADD source patterns (already expanded) to sources; a pattern matching
    nothing, or only ignored paths, is an error as in Docker."""
    out: list[Source] = []
    wildcard = False
    kept: dict[str, bool] = {}
    for raw in patterns:
        rel = clean_source(raw, root_label=root.label)
        if _GLOB_CHARS & set(rel):
            wildcard = True
            rels = _glob(root, rel)
        else:
            rels = [rel]
        matched = False
        for r in rels:
            st = _lstat_in(root.path, r)
            if st is None or (stat.S_ISLNK(st.st_mode) and root.ignored(r)):
                continue  # missing, or a link the .dockerignore leaves out (never sent)
            found = _follow(root, r)
            shown = None if found is None else _shown(root, found[0], found[1], kept)
            if found is None or shown is None:
                if stat.S_ISLNK(st.st_mode):
                    raise BuildError(
                        f"{r}: no such file or directory in the {root.label} "
                        "(a symlink to a missing or excluded path)"
                    )
                continue
            out.append(Source(rel=r, real=found[0], st=shown))
            matched = True
        if not matched:
            raise BuildError(f"{raw}: no such file or directory in the {root.label}")
    return Selected(root=root, sources=tuple(out), wildcard=wildcard)


def _follow(root: SourceRoot, rel: str) -> tuple[str, os.stat_result] | None:
    """Where ``rel`` leads with all its symlinks followed in-root, and that target's stat;
    None if it leads nowhere (whether the .dockerignore keeps it is :func:`_shown`'s call)."""
    try:
        fd = open_in_root(root.path, rel or "/", flags=os.O_PATH)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise BuildError(
            f"{rel}: too many levels of symbolic links in the {root.label} (a symlink loop)"
        ) from None
    try:
        real = _path_in_root(root.path, fd, rel)
        st = os.fstat(fd)
    finally:
        os.close(fd)
    return real, st


def _path_in_root(root: Path, fd: int, rel: str) -> str:
    """The path of ``fd`` relative to ``root``, as the kernel names it (no symlinks left)."""
    top = os.path.realpath(root)
    where = os.readlink(f"/proc/self/fd/{fd}")
    if where == top:
        return ""
    prefix = top.rstrip("/") + "/"
    if not where.startswith(prefix):  # cannot happen with in-root resolution; refuse anyway
        raise BuildError(f"{rel}: resolves to {where!r}, which is not below {top!r}")
    return where[len(prefix) :]


def walk_source(root: SourceRoot, src: Source) -> Iterator[tuple[str, str, os.stat_result]]:
    """(path relative to the source, path in the root, lstat) for the source and everything
    below a dir source, parents first, sorted; ignored paths left out (see :func:`_shown`).
    The source itself is the followed ``real`` path with its stat; nothing below it is
    followed."""
    yield "", src.real, src.st
    if not src.is_dir:
        return
    kept: dict[str, bool] = {}
    stack = [("", src.real)]
    while stack:
        sub, rel = stack.pop()
        entries = []
        for name, st in _children(root.path, rel):
            child = f"{rel}/{name}" if rel else name
            shown = _shown(root, child, st, kept)
            if shown is not None:
                entries.append((f"{sub}/{name}" if sub else name, child, shown))
        yield from entries
        stack.extend((s, c) for s, c, st in reversed(entries) if stat.S_ISDIR(st.st_mode))


def _shown(
    root: SourceRoot, rel: str, st: os.stat_result, kept: dict[str, bool]
) -> os.stat_result | None:
    """How ``rel`` (lstat ``st``) appears in the root, or None if the .dockerignore leaves it out.

    An ignored dir still appears when something below it is kept: moby's context walk
    (``archive.TarWithOptions``) descends into an ignored dir that an exception could match
    below, and sends the kept entries, so the dir shows up as their parent, as unpacking makes
    it. ``kept`` remembers, for one walk, which ignored dirs hold kept entries.
    """
    if not root.ignored(rel):
        return st
    assert root.ignore is not None  # ignored() says so
    if not stat.S_ISDIR(st.st_mode) or root.ignore.can_skip_dir(rel):
        return None
    return _implied_dir(st) if _holds_kept(root, rel, kept) else None


def _holds_kept(root: SourceRoot, rel: str, kept: dict[str, bool]) -> bool:
    """Whether the ignored dir ``rel`` holds an entry the .dockerignore keeps, at any depth
    through ignored dirs an exception could match below. Iterative (a hostile context may nest
    thousands of dirs deep); ``kept`` memoises the answer for every ignored dir settled."""
    assert root.ignore is not None
    if rel in kept:
        return kept[rel]
    stack: list[tuple[str, Iterator[tuple[str, os.stat_result]]]] = [
        (rel, iter(_children(root.path, rel)))
    ]
    while stack:
        here, entries = stack[-1]
        for name, st in entries:
            child = f"{here}/{name}"
            found = not root.ignored(child) or kept.get(child, False)
            if found:
                kept.update((d, True) for d, _ in stack)  # every dir on the way holds it
                return True
            if (
                child not in kept
                and stat.S_ISDIR(st.st_mode)
                and not root.ignore.can_skip_dir(child)
            ):
                stack.append((child, iter(_children(root.path, child))))
                break
        else:
            stack.pop()
            kept[here] = False
    return False


def _implied_dir(st: os.stat_result) -> os.stat_result:
    """``st`` as the dir unpacking creates: mode 0755, owned by root, times kept."""
    _, ino, dev, nlink, _uid, _gid, size, atime, mtime, ctime = tuple(st)[:10]
    extras = {name: getattr(st, name) for name in _STAT_EXTRAS}
    fields = (_IMPLIED_DIR_MODE, ino, dev, nlink, 0, 0, size, atime, mtime, ctime)
    return os.stat_result(fields, extras)


def _children(root: Path, rel: str) -> list[tuple[str, os.stat_result]]:
    """(name, lstat) of each entry of the dir ``rel``, sorted by name."""
    fd = _open_dir(root, rel)
    try:
        return [
            (name, os.stat(name, dir_fd=fd, follow_symlinks=False))
            for name in sorted(os.listdir(fd))
        ]
    finally:
        os.close(fd)


def _open_dir(root: Path, rel: str) -> int:
    if not rel:
        return os.open(root, _DIR)
    fd, name = _open_parent(root, rel)
    try:
        return os.open(name, _DIR, dir_fd=fd)
    finally:
        os.close(fd)


def open_source_file(root: Path, rel: str) -> int:
    fd, name = _open_parent(root, rel)
    try:
        return os.open(name, _FILE, dir_fd=fd)
    finally:
        os.close(fd)


def _file_sha(root: Path, rel: str, size: int) -> str:
    h = Hasher(expected_size=size)
    fd = open_source_file(root, rel)
    try:
        while chunk := os.read(fd, _CHUNK):
            h.update(chunk)
    finally:
        os.close(fd)
    return h.digest().hex


def read_source_link(root: Path, rel: str) -> str:
    fd, name = _open_parent(root, rel)
    try:
        return os.readlink(name, dir_fd=fd)
    finally:
        os.close(fd)


def sources_hash(selected: Selected, *, owner: Owner | None, chmod: int | None) -> str:
    """Docker's source hash shape (``file:``/``dir:``/``multi:`` + sha256) over what lands in
    the layer: names, kinds, modes, owners, sizes, link targets, hardlinks and content (of a
    followed source link's target) — not mtimes, so touching a file keeps the cache while
    editing, renaming or chmod-ing it does not."""
    per_source: list[str] = []
    for src in selected.sources:
        lines: list[str] = []
        firsts: dict[tuple[int, int], str] = {}  # hardlinks: (dev, ino) -> first name
        for sub, rel, st in walk_source(selected.root, src):
            name = sub or src.name
            mode = stat.S_IMODE(st.st_mode) if chmod is None else chmod
            uid, gid = (st.st_uid, st.st_gid) if owner is None else (owner.uid, owner.gid)
            kind = stat.S_IFMT(st.st_mode)
            extra = ""
            if stat.S_ISREG(st.st_mode):
                first = name
                if st.st_nlink > 1:
                    first = firsts.setdefault((st.st_dev, st.st_ino), name)
                extra = (
                    f"hardlink:{first}"
                    if first != name
                    else _file_sha(selected.root.path, rel, st.st_size)
                )
            elif stat.S_ISLNK(st.st_mode):
                extra = read_source_link(selected.root.path, rel)
            lines.append(f"{name}\0{kind:o}\0{mode:o}\0{uid}\0{gid}\0{st.st_size}\0{extra}")
        digest = Digest.of("\n".join(lines).encode("utf-8", "surrogateescape")).hex
        per_source.append(("dir:" if src.is_dir else "file:") + digest)
    if len(per_source) == 1:
        return per_source[0]
    return "multi:" + Digest.of(",".join(per_source).encode()).hex
