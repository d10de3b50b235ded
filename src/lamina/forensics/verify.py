"""``lamina verify --deep``: walk every unpacked layer dir and check it against the file index.

Blobs are content-addressed and re-hashed by plain ``verify``; the unpacked dirs are what
containers actually run, and nothing else checks them (Docker notices a changed layer file only
when re-exporting). Each file is compared with the row the layer's verified tar produced:
type, content sha256 and size, mode, owner, link target, device number and xattrs.

Normalisation (what is *not* a finding, and why):

- no timestamps at all: directory mtimes change whenever a child does (podman#25101), atimes on
  every read, and a content change is caught by the hash anyway;
- ``overlay`` dirs hold overlayfs's own vocabulary, translated back before comparing: a char
  device 0:0 is the whiteout of that row, ``trusted.overlay.opaque=y`` is an opaque marker (or a
  dir that replaced a whiteout in the same layer), escaped ``trusted.overlay.overlay.X`` is the
  image's ``trusted.overlay.X``; ``origin``/``impure``/``nlink``/``uuid``/``upper`` are written
  by the kernel into dirs it used as upper or index dirs and do not change what a mount shows,
  so they are ignored, while ``redirect``/``metacopy``/``whiteout`` (which do) are findings;
- ``security.selinux`` is the host's label, not image content;
- parent dirs a layer wrote into without listing them are created by extraction (``implicit``):
  only their type is checked; the layer root's own attributes are the driver's;
- hardlinks: the content is checked, mode and owner are the target's;
- ``vfs`` layers are full trees, so they are compared with the merged view of their chain (the
  parent's files are expected there, not "added");
- owners are compared when running as root (rootless extraction keeps them only in the index).
"""

from __future__ import annotations

import collections
import enum
import hashlib
import os
import stat
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Final

from msgspec import Struct

from lamina.archive.entry import EntryKind, IndexEntry
from lamina.archive.whiteout import OPAQUE_XATTR, unescape_xattr_name
from lamina.digest import Digest
from lamina.errors import (
    BlobNotFoundError,
    DigestMismatchError,
    LayerInUseError,
    SizeMismatchError,
)
from lamina.store.index import ancestors
from lamina.store.layers import LayerRecord
from lamina.store.store import Problem, ProblemKind, Store

_KERNEL_XATTRS: Final = frozenset(
    f"{ns}overlay.{n}"
    for ns in ("trusted.", "user.")
    for n in ("origin", "impure", "nlink", "uuid", "upper")
)
_HOST_XATTRS: Final = frozenset({"security.selinux"})
_IN_FLIGHT: Final = 256  # hashes queued on the workers at once (enough to keep 2 busy)
_KIND_OF_MODE: Final = {
    stat.S_IFREG: EntryKind.FILE,
    stat.S_IFDIR: EntryKind.DIR,
    stat.S_IFLNK: EntryKind.SYMLINK,
    stat.S_IFCHR: EntryKind.CHAR,
    stat.S_IFBLK: EntryKind.BLOCK,
    stat.S_IFIFO: EntryKind.FIFO,
}


class Issue(enum.Enum):
    MODIFIED = "modified"  # content or size
    ADDED = "added"
    DELETED = "deleted"
    MODE = "chmod"
    OWNER = "chown"
    XATTRS = "xattrs"
    TYPE = "type"
    LINK = "link"
    DEVICE = "device"


class DeepFinding(Struct, frozen=True, kw_only=True):
    chain_id: Digest
    cache_id: str
    path: str
    issue: Issue
    expected: str
    actual: str

    def __str__(self) -> str:
        return (
            f"{self.issue.value}: /{self.path} in layer {self.chain_id}"
            f" (expected {self.expected}, found {self.actual})"
        )


class LayerCheck(Struct, frozen=True, kw_only=True):
    chain_id: Digest
    cache_id: str
    directory: Path
    findings: tuple[DeepFinding, ...]
    files: int
    bytes_hashed: int
    repaired: bool = False


class DeepResult(Struct, frozen=True, kw_only=True):
    layers: tuple[LayerCheck, ...]
    store_problems: tuple[Problem, ...] = ()  # plain ``verify``'s, when the whole store ran

    @property
    def findings(self) -> list[DeepFinding]:
        return [f for lc in self.layers for f in lc.findings]

    @property
    def bytes_hashed(self) -> int:
        return sum(lc.bytes_hashed for lc in self.layers)


class _Expect(Struct, frozen=True, kw_only=True):
    kind: EntryKind
    row: IndexEntry | None  # None for an implicit parent dir or an overlay whiteout device
    opaque: bool = False
    whiteout: bool = False


def _overlay_expect(rows: Sequence[IndexEntry]) -> dict[str, _Expect]:
    out: dict[str, _Expect] = {}
    whiteout_at: dict[str, int] = {}
    written = {
        ie.entry.path: ie
        for ie in rows
        if ie.entry.kind not in (EntryKind.WHITEOUT, EntryKind.OPAQUE)
    }
    nondirs = {p for p, ie in written.items() if ie.entry.kind is not EntryKind.DIR}

    def moot(path: str, *, itself: bool) -> bool:
        # Extraction ignores a marker under (or, for opaque, on) a non-dir of the same layer.
        return any(a in nondirs for a in ancestors(path)) or (itself and path in nondirs)

    opaque = {
        ie.entry.path
        for ie in rows
        if ie.entry.kind is EntryKind.OPAQUE and not moot(ie.entry.path, itself=True)
    }
    for ie in rows:
        e = ie.entry
        if e.kind is EntryKind.WHITEOUT and not moot(e.path, itself=False):
            w = written.get(e.path)
            if w is None or w.position > ie.position:
                whiteout_at[e.path] = ie.position
            if w is None:
                out[e.path] = _Expect(kind=EntryKind.CHAR, row=None, whiteout=True)
    for path, ie in written.items():
        # A dir written after a whiteout of its own path hides the lower dir's children too.
        after_whiteout = path in whiteout_at and ie.entry.kind is EntryKind.DIR
        out[path] = _Expect(kind=ie.entry.kind, row=ie, opaque=path in opaque or after_whiteout)
    for path in opaque:
        if path not in out:
            out[path] = _Expect(kind=EntryKind.DIR, row=None, opaque=True)
    return out


def _tree_expect(view: Mapping[str, IndexEntry]) -> dict[str, _Expect]:
    return {p: _Expect(kind=ie.entry.kind, row=ie) for p, ie in view.items()}


def _disk_xattrs(path: str, *, overlay: bool) -> tuple[dict[str, bytes], bool]:
    """(image xattrs as the index names them, the opaque flag)."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}, False
    out: dict[str, bytes] = {}
    opaque = False
    for name in names:
        if name in _HOST_XATTRS or (overlay and name in _KERNEL_XATTRS):
            continue
        value = os.getxattr(path, name, follow_symlinks=False)
        if overlay:
            if name == OPAQUE_XATTR and value == b"y":
                opaque = True
                continue
            original = unescape_xattr_name(name)
            out[original if original is not None else f"(overlay's own) {name}"] = value
        else:
            out[name] = value
    return out, opaque


def _hash(path: str) -> str:
    with open(path, "rb", buffering=0) as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class _Checker:
    def __init__(
        self, rec: LayerRecord, root: Path, expect: dict[str, _Expect], *, overlay: bool
    ) -> None:
        self.rec = rec
        self.root = root
        self.expect = expect
        self.overlay = overlay
        self.implicit = {a for p in expect for a in ancestors(p)} - expect.keys()
        self.findings: list[DeepFinding] = []
        self.files = 0
        self.hashed = 0
        self.owners = os.geteuid() == 0
        # (path, expected sha256, future): hashing runs on worker threads (hashlib and file
        # reads release the GIL) while this thread walks and stats; 2 cores, 2 workers. At
        # most _IN_FLIGHT at a time: a future for every file of a layer of 300,000 empty
        # files took verify to 800 MB (10 GB at the 4M-entry limit).
        self.pending: collections.deque[tuple[str, str, Future[str]]] = collections.deque()
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lamina-verify")

    def add(self, path: str, issue: Issue, expected: object, actual: object) -> None:
        self.findings.append(
            DeepFinding(
                chain_id=self.rec.chain_id,
                cache_id=self.rec.cache_id,
                path=path,
                issue=issue,
                expected=str(expected),
                actual=str(actual),
            )
        )

    def run(self) -> None:
        try:
            self._walk()
            self._collect(keep=0)
        finally:
            self.pool.shutdown(cancel_futures=True)

    def _collect(self, *, keep: int) -> None:
        """Check hashes, oldest first, until at most ``keep`` are in flight."""
        while len(self.pending) > keep:
            path, want, fut = self.pending.popleft()
            sha = fut.result()
            if sha != want:
                self.add(path, Issue.MODIFIED, f"sha256:{want[:12]}", f"sha256:{sha[:12]}")

    def _walk(self) -> None:
        seen: set[str] = set()
        _, root_opaque = _disk_xattrs(str(self.root), overlay=self.overlay)
        want_root = self.expect.get("")
        if self.overlay and root_opaque != bool(want_root and want_root.opaque):
            self.add("", Issue.XATTRS, "opaque" if want_root else "not opaque", "changed")
        stack = [""]
        while stack:
            rel = stack.pop()
            base = self.root / rel if rel else self.root
            with os.scandir(base) as it:
                for d in it:
                    path = f"{rel}/{d.name}" if rel else d.name
                    seen.add(path)
                    st = d.stat(follow_symlinks=False)
                    self.files += 1
                    if self.check(path, d.path, st) and stat.S_ISDIR(st.st_mode):
                        stack.append(path)
        for path in sorted(self.expect.keys() - seen):
            self.add(path, Issue.DELETED, self.expect[path].kind.value, "missing")

    def check(self, path: str, full: str, st: os.stat_result) -> bool:
        """Compare one entry; True to descend into it."""
        kind = _KIND_OF_MODE.get(stat.S_IFMT(st.st_mode))
        exp = self.expect.get(path)
        if exp is None:
            if path in self.implicit and kind is EntryKind.DIR:
                return True
            self.add(path, Issue.ADDED, "nothing", kind.value if kind else "socket")
            return False
        if exp.whiteout:
            if kind is not EntryKind.CHAR or st.st_rdev != 0:
                self.add(path, Issue.TYPE, "whiteout (char 0:0)", kind.value if kind else "?")
            return False
        want = EntryKind.FILE if exp.kind is EntryKind.HARDLINK else exp.kind
        if kind is not want:
            self.add(path, Issue.TYPE, want.value, kind.value if kind else "socket")
            return False
        xattrs, opaque = _disk_xattrs(full, overlay=self.overlay)
        if self.overlay and opaque != exp.opaque:
            self.add(
                path,
                Issue.XATTRS,
                "opaque" if exp.opaque else "not opaque",
                "opaque" if opaque else "not opaque",
            )
        row = exp.row
        if row is None:
            return True
        e = row.entry
        if kind is EntryKind.FILE:
            if st.st_size != e.size and exp.kind is EntryKind.FILE:
                self.add(path, Issue.MODIFIED, f"{e.size} bytes", f"{st.st_size} bytes")
            elif row.sha256 is not None:
                self.hashed += st.st_size
                self.pending.append((path, row.sha256, self.pool.submit(_hash, full)))
                if len(self.pending) >= _IN_FLIGHT:
                    self._collect(keep=_IN_FLIGHT // 2)
            if exp.kind is EntryKind.HARDLINK:
                return False  # mode and owner are the target's
        elif kind is EntryKind.SYMLINK:
            target = os.readlink(full)
            if target != e.linkname:
                self.add(path, Issue.LINK, e.linkname, target)
        elif kind in (EntryKind.CHAR, EntryKind.BLOCK) and (
            (os.major(st.st_rdev), os.minor(st.st_rdev)) != (e.devmajor, e.devminor)
        ):
            self.add(
                path,
                Issue.DEVICE,
                f"{e.devmajor}:{e.devminor}",
                f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}",
            )
        if kind is not EntryKind.SYMLINK and stat.S_IMODE(st.st_mode) != e.mode:
            self.add(path, Issue.MODE, f"{e.mode:04o}", f"{stat.S_IMODE(st.st_mode):04o}")
        if self.owners and (st.st_uid, st.st_gid) != (e.uid, e.gid):
            self.add(path, Issue.OWNER, f"{e.uid}:{e.gid}", f"{st.st_uid}:{st.st_gid}")
        if xattrs != dict(e.xattrs):
            self.add(path, Issue.XATTRS, sorted(e.xattrs), sorted(xattrs))
        return True


def check_layer(store: Store, rec: LayerRecord) -> LayerCheck:
    """Compare one layer record's dir with its index rows (overlay) or merged view (vfs)."""
    driver = store.driver
    root = driver.apply_dir(rec.cache_id)
    overlay = driver.name != "vfs"
    if overlay:
        expect = _overlay_expect(store.layers.entries(rec.chain_id))
    else:
        expect = _tree_expect(store.layers.merged_view(rec.chain_id))
    checker = _Checker(rec, root, expect, overlay=overlay)
    checker.run()
    return LayerCheck(
        chain_id=rec.chain_id,
        cache_id=rec.cache_id,
        directory=root,
        findings=tuple(checker.findings),
        files=checker.files,
        bytes_hashed=checker.hashed,
    )


def _users_mounted(store: Store, rec: LayerRecord) -> list[str]:
    """Mounts that read ``rec``'s dir: its own and any layer stacked on it (overlay lowers),
    plus any mount whose options name the dir (containers' rw layers)."""
    from lamina.driver import mountinfo

    out: list[str] = []
    records = {r.chain_id: r for r in store.layers.list()}
    for r in records.values():
        cur: LayerRecord | None = r
        while cur is not None and cur.chain_id != rec.chain_id:
            cur = records.get(cur.parent) if cur.parent is not None else None
        if cur is not None and store.driver.mount_count(r.cache_id) > 0:
            out.append(f"layer {r.chain_id} is mounted")
    needle = os.path.realpath(store.driver.apply_dir(rec.cache_id))
    home = store.driver.home
    for m in mountinfo.read_mounts():
        if m.fs_type != "overlay":
            continue
        dirs = m.lowerdirs() + m.option_values("upperdir")
        # Legacy mounts name lowers relative to the driver home (l/<short> links).
        if any(os.path.realpath(home / d) == needle for d in dirs):
            out.append(f"mount at {m.target}")
    return out


def _blob_problems(store: Store, records: Sequence[LayerRecord]) -> tuple[Problem, ...]:
    """Plain ``verify``'s blob re-hash, for just these layers' blobs."""
    out: list[Problem] = []
    for rec in records:
        try:
            store.blobs.verify(rec.blob_digest)
        except (DigestMismatchError, SizeMismatchError) as exc:
            out.append(
                Problem(kind=ProblemKind.BLOB_CORRUPT, subject=rec.blob_digest, detail=str(exc))
            )
        except BlobNotFoundError:
            out.append(
                Problem(
                    kind=ProblemKind.BLOB_MISSING,
                    subject=rec.blob_digest,
                    detail=f"layer {rec.chain_id} references a blob that is not stored",
                )
            )
    return tuple(out)


def verify_layers(
    store: Store, *, records: Sequence[LayerRecord] | None, repair: bool
) -> DeepResult:
    """Check the layers ``records`` (the whole store, blobs and records too, when None); with
    ``repair`` re-extract each tampered layer (LayerInUseError while a mount reads it)."""
    problems = tuple(store.verify()) if records is None else _blob_problems(store, records)
    recs = list(records) if records is not None else store.layers.list()
    out: list[LayerCheck] = []
    for rec in recs:
        lc = check_layer(store, rec)
        if repair and lc.findings:
            users = _users_mounted(store, rec)
            if users:
                raise LayerInUseError(
                    f"cannot repair layer {rec.chain_id} while it is in use: {', '.join(users)}"
                )
            store.layers.reextract(rec.chain_id)
            again = check_layer(store, rec)
            lc = LayerCheck(
                chain_id=lc.chain_id,
                cache_id=lc.cache_id,
                directory=lc.directory,
                findings=lc.findings + again.findings,
                files=lc.files,
                bytes_hashed=lc.bytes_hashed + again.bytes_hashed,
                repaired=not again.findings,
            )
        out.append(lc)
    return DeepResult(layers=tuple(out), store_problems=problems)
