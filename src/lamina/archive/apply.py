"""Apply one layer blob to a directory in one pass: read -> (tee) -> hash blob -> inflate ->
hash diff_id -> parse -> fd-confined extraction -> file-index rows.

Two threads: :class:`~lamina.archive.layerpipe.LayerPipe`'s producer reads, tees, hashes and
inflates, and in its spare time hashes mid-size files' contents for the index rows; the calling
thread parses (:class:`~lamina.archive.tarstream.TarStream`) and writes through
:class:`~lamina.archive.safepath.Tree`. Both digests cover the whole stream, trailing
bytes after the tar's end included: the stream is drained before they are compared.

Formats (:class:`WhiteoutFormat`):

- ``OVERLAY``: ``dest`` is an empty overlay ``diff/``. ``.wh.x`` becomes a char device 0:0 ``x``;
  ``.wh..wh..opq`` sets ``trusted.overlay.opaque=y`` on its dir, as does a dir entry that replaces
  a whiteout of the same layer (lower content stays hidden). Image-supplied ``trusted.overlay.*``
  and ``user.overlay.*`` xattrs are escaped to ``trusted.overlay.overlay.*`` /
  ``user.overlay.overlay.*`` (the kernel >= 6.7 shows the original names in the merged view and
  never acts on them). Hardlink targets must be entries of this layer.
- ``APPLY``: ``dest`` holds the full parent tree (vfs). Whiteouts delete. An opaque marker must act
  before the layer's own children of its dir wherever it sits in the tar, and a stream cannot be
  pre-scanned, so the layer remembers what it wrote: at the marker, every child of the dir that
  this layer did not write (or write into) is deleted, recursively inside dirs it wrote into.
  xattrs are stored verbatim (a vfs tree is used as is, never as an overlay layer).

- ``PLAIN``: not a layer but a plain archive extracted into a live tree (``docker cp -
  CONTAINER:DEST``, :func:`extract_plain`), by Docker's ``Untar`` rules: ``.wh.*`` names are
  files, a repeated name replaces the earlier copy, ``..`` is cleaned and refused only above the
  root (:class:`~lamina.archive.tarstream.TarStream` with ``layer=False``); an existing dir and a
  non-dir never replace each other (``NoOverwriteDirNonDir``), a dir over a dir only gets the
  entry's attributes; a relative symlink target that climbs out of the destination is refused
  (Docker's "invalid symlink"); parents are followed through symlinks inside the container's
  root (the Tree's ``follow``); xattrs are escaped as in ``OVERLAY`` (the tree may be an overlay).

In the layer formats: a whiteout never removes what this same layer wrote (it applies to lower
layers only); a whiteout or opaque marker under a non-directory is moot and ignored; an entry
that would replace a directory this layer already wrote into is refused; an existing
non-directory (or a directory, for a non-dir entry) is removed and recreated, a dir over a dir
gets new attributes. Any path whose walk meets a symlink is refused, including across layers via
``lower_symlinks``.

In all formats, ownership is applied only as root (fchown, then fchmod so setuid survives, then
xattrs, since chown clears ``security.capability``); directory mtimes are set last, after their
children. On any error the exception is raised and ``dest`` may be partly written: a layer's
caller discards it; a ``PLAIN`` extraction keeps what it wrote before the error, as Docker does.
"""

from __future__ import annotations

import enum
import errno
import hashlib
import os
import stat
from collections.abc import Callable, Collection
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

from msgspec import Struct
from msgspec.structs import replace

from lamina.archive.compression import Compression
from lamina.archive.entry import Entry, EntryKind, IndexEntry, RowSink
from lamina.archive.layerpipe import LayerPipe
from lamina.archive.safepath import Tree, proc_path
from lamina.archive.tarstream import Limits, Member, TarStream, limits_from_env
from lamina.archive.whiteout import OPAQUE_XATTR, OPAQUE_XATTR_VALUE, escape_xattr_name
from lamina.digest import Digest
from lamina.errors import (
    ConflictError,
    DigestMismatchError,
    DriverError,
    SizeMismatchError,
    UnsafeArchivePathError,
)

if TYPE_CHECKING:
    from hashlib import _Hash

__all__ = [
    "DEFAULT_LIMITS",
    "INDEX_BATCH",
    "ApplyResult",
    "Limits",
    "RowSink",
    "WhiteoutFormat",
    "apply_layer",
    "extract_plain",
]

DEFAULT_LIMITS: Final = limits_from_env()
_FILE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_COPY_CHUNK: Final = 1 << 20
_EMPTY_SHA256: Final = hashlib.sha256().hexdigest()
# Files of these sizes are hashed on the pipe's producer thread (LayerPipe.hash_later) when it
# is ahead (it waits for queue space while many small members keep this thread busy; it is the
# slow side when it inflates gzip): smaller files cost more to hand over than to hash here, and
# while larger ones stream through, the producer is the busier thread.
_OFFLOAD_HASH_SIZES: Final = range(64 << 10, 1 << 20)
# Index rows handed to a RowSink at a time. A layer's index is never held whole: a layer of
# millions of entries would need ~0.7 KB of heap for each (row objects, then the tuples SQLite
# binds). A few thousand rows amortise the sink's per-call cost (an executemany) and stay ~2 MB.
INDEX_BATCH: Final = 4096


class WhiteoutFormat(enum.Enum):
    OVERLAY = "overlay"
    APPLY = "apply"
    PLAIN = "plain"  # no layer: see the module doc


class ApplyResult(Struct, frozen=True, kw_only=True):
    blob_digest: Digest
    blob_size: int
    compression: Compression
    diff_id: Digest
    diff_size: int
    content_size: int  # Docker's layer Size: file bytes (hardlinks once) + symlink targets
    entry_count: int  # the layer's index rows (handed to the RowSink, if there was one)


def apply_layer(
    source: IO[bytes],
    dest: Path,
    *,
    fmt: WhiteoutFormat,
    declared: Compression | None = None,
    expected_blob_digest: Digest | None = None,
    expected_blob_size: int | None = None,
    expected_diff_id: Digest | None = None,
    tee: IO[bytes] | None = None,
    lower_symlinks: Collection[str] = (),
    limits: Limits = DEFAULT_LIMITS,
    rows: RowSink | None = None,
) -> ApplyResult:
    """Extract the layer blob ``source`` into ``dest`` and return its digests and row count.

    The file-index rows go to ``rows`` as extraction goes, in tar order, ``INDEX_BATCH`` at a
    time (a batch is longer only while a row waits for a content hash the reading thread has
    not finished); none are kept here, so memory does not grow with the entry count. The
    sink sees rows before the digests are checked: a caller keeps them only once this returns.
    ``rows=None``: rows are counted, not kept.

    Raises InvalidContentError subclasses for bad content (digest/size mismatch, unsafe paths,
    limits, unsupported or mismatching compression), DriverError when the filesystem refuses."""
    pipe = LayerPipe(
        source,
        declared=declared,
        tee=tee,
        max_uncompressed_bytes=limits.max_uncompressed_bytes,
        expected_blob_size=expected_blob_size,
    )
    pipe.start()
    try:
        tar = TarStream(pipe, limits=limits)  # type: ignore[arg-type]  # only read() is used
        with Tree(dest) as tree:
            extractor = _Extractor(
                tree, tar, pipe=pipe, fmt=fmt, lower_symlinks=lower_symlinks, rows=rows
            )
            for member in tar:
                extractor.apply(member)
            pipe.drain()  # also finishes the hashes handed to hash_later
            extractor.finish()
    except BaseException:
        pipe.abort()
        raise
    blob, diff = pipe.blob.digest(), pipe.diff.digest()
    if expected_blob_size is not None and pipe.blob.size != expected_blob_size:
        raise SizeMismatchError(
            expected=expected_blob_size, actual=pipe.blob.size, what="layer blob"
        )
    if expected_blob_digest is not None and blob != expected_blob_digest:
        raise DigestMismatchError(expected=expected_blob_digest, actual=blob, what="layer blob")
    if expected_diff_id is not None and diff != expected_diff_id:
        raise DigestMismatchError(expected=expected_diff_id, actual=diff, what="layer diff_id")
    return ApplyResult(
        blob_digest=blob,
        blob_size=pipe.blob.size,
        compression=pipe.compression,
        diff_id=diff,
        diff_size=pipe.diff.size,
        content_size=extractor.content_size,
        entry_count=extractor.entry_count,
    )


def extract_plain(
    source: IO[bytes],
    tree: Tree,
    *,
    dest: str,
    guard: Callable[[os.stat_result], None] = lambda st: None,
    owner: tuple[int, int] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> None:
    """Extract the plain archive ``source`` (tar, gzip or zstd; empty is an empty archive)
    into ``tree`` by the ``PLAIN`` rules. ``dest`` is the destination's path as its own root
    sees it (for the symlink rule); ``guard(st)`` vets each existing entry (lstat) before it is
    replaced and may raise. ``owner`` (uid, gid) owns every entry instead of the archive's
    owners (Docker's ``ChownOpts``, for ``cp -a``).

    Raises InvalidContentError subclasses for bad content, ConflictError where an entry and
    what exists cannot replace each other, DriverError when the filesystem refuses -- but an
    OSError with errno EROFS as it is, for the caller to name the read-only mount."""
    pipe = LayerPipe(
        source,
        declared=None,
        tee=None,
        max_uncompressed_bytes=limits.max_uncompressed_bytes,
        expected_blob_size=None,
    )
    pipe.start()
    try:
        tar = TarStream(pipe, limits=limits, layer=False)  # type: ignore[arg-type]
        extractor = _Extractor(
            tree, tar, pipe=pipe, fmt=WhiteoutFormat.PLAIN, lower_symlinks=(), guard=guard
        )
        extractor.dest = "/" + dest.strip("/") if dest.strip("/") else "/"
        for member in tar:
            if owner is not None:
                uid, gid = owner
                member = replace(member, entry=replace(member.entry, uid=uid, gid=gid))
            extractor.apply(member)
        extractor.finish()
    finally:
        # No digest covers a plain archive: what follows its end is never read (an endless
        # stream after the end-of-archive blocks costs nothing).
        pipe.abort()


class _Extractor:
    def __init__(
        self,
        tree: Tree,
        tar: TarStream,
        *,
        pipe: LayerPipe,
        fmt: WhiteoutFormat,
        lower_symlinks: Collection[str],
        guard: Callable[[os.stat_result], None] | None = None,
        rows: RowSink | None = None,
    ) -> None:
        self.tree = tree
        self.tar = tar
        self.pipe = pipe
        self.overlay = fmt is WhiteoutFormat.OVERLAY
        self.plain = fmt is WhiteoutFormat.PLAIN
        self.guard = guard
        self.dest = "/"  # PLAIN: the destination as its root sees it
        self._current = EntryKind.FILE  # kind of the member being applied
        self.lower_symlinks = frozenset(p.strip("/") for p in lower_symlinks)
        self.chown = os.geteuid() == 0  # rootless: owners live only in the index rows
        # What this layer wrote (name -> is a dir): the reader's map of the names so far, which
        # it keeps for the duplicate rule anyway (see TarStream.names). Its entry for the
        # member being applied is there already; no check here asks about that name.
        self.written = tar.names
        # Content hash of each inode a hardlink of this layer points at. Files' hashes are not
        # kept (the index rows are not either: see apply_layer): a link's target is read back
        # from disk once, so a layer of many files keeps no hash per file. Inodes stay linked
        # by this layer's own entries until it ends, so a number is never reused meanwhile.
        self.link_sha: dict[int, str | None] = {}
        self.ancestors: set[str] = set()  # every parent dir of what this layer wrote
        self.whiteouts: set[str] = set()
        self.dir_times: list[tuple[str, int]] = []
        self.sink = rows
        self.batch: list[IndexEntry] = []  # rows not yet handed to the sink, in tar order
        # Rows of ``batch`` whose hash is not final: (index in batch, ticket, the hash).
        self.waiting: list[tuple[int, int, _Hash]] = []
        self.entry_count = 0
        self.content_size = 0

    def apply(self, member: Member) -> None:
        e = member.entry
        self._current = e.kind
        try:
            self._check_lower_symlinks(e)
            sha = self._HANDLERS[e.kind](self, e)
        except UnsafeArchivePathError as exc:
            if exc.member == member.name:
                raise
            raise UnsafeArchivePathError(member.name, exc.reason) from exc
        except NotADirectoryError as exc:
            raise UnsafeArchivePathError(
                member.name, f"parent {exc.filename!r} is not a directory"
            ) from exc
        except OSError as exc:
            if self.plain and exc.errno == errno.EROFS:
                raise
            err = DriverError(f"cannot extract archive member {member.name!r}: {exc}")
            err.add_note(f"into {e.path!r} as {e.kind.value}")
            raise err from exc
        self._record(e)
        if self.plain:
            return  # no index of a plain archive: memory stays flat however long it is
        self.entry_count += 1
        if self.sink is None:
            return
        batch = self.batch
        if sha is not None and not isinstance(sha, str):
            # Handed over no later than now: final once the producer has done this many jobs.
            self.waiting.append((len(batch), self.pipe.handed, sha))
            sha = None
        batch.append(IndexEntry(entry=e, sha256=sha, position=member.position))
        if len(batch) >= INDEX_BATCH:
            self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        """Hand the sink the rows of ``batch`` up to the first whose hash is not final yet
        (all of them when ``final``: the producer's jobs are done)."""
        assert self.sink is not None
        batch, ready = self.batch, len(self.batch)
        still: list[tuple[int, int, _Hash]] = []
        for i, ticket, h in self.waiting:
            if not still and (final or self.pipe.hashed(ticket)):
                row = batch[i]
                batch[i] = IndexEntry(entry=row.entry, sha256=h.hexdigest(), position=row.position)
            else:
                ready = min(ready, i)
                still.append((i - ready, ticket, h))
        if ready:
            self.sink(batch[:ready])
            del batch[:ready]
        self.waiting = still

    def finish(self) -> None:
        """After the last member and ``hash_later``'s jobs: the last index rows, directory
        mtimes."""
        if self.sink is not None and self.batch:
            self._flush(final=True)
        for path, mtime in self.dir_times:
            try:
                os.utime(self.tree.dir_fd(path, create=False), ns=(mtime, mtime))
            except OSError as exc:
                raise DriverError(f"cannot set the mtime of {path!r}: {exc}") from exc

    # -- per kind -------------------------------------------------------------------------

    def _file(self, e: Entry) -> str | _Hash:
        pfd, name = self.tree.parent_fd(e.path, create=True)
        try:  # inline fast path of _create: most names are new
            fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=pfd)
        except FileExistsError:
            fd = self._create(
                pfd, name, e.path, lambda: os.open(name, _FILE_FLAGS, 0o600, dir_fd=pfd)
            )
        sha: str | _Hash
        try:
            if e.size in _OFFLOAD_HASH_SIZES and not self.plain and self.pipe.ahead():
                sha = hashlib.sha256()
                read = self.tar.read_view
                hash_later = self.pipe.hash_later
                while view := read(_COPY_CHUNK):
                    hash_later(sha, view)
                    while view:
                        view = view[os.write(fd, view) :]
            elif e.size:
                # Views of the parser's buffer: no copy between the inflater and write(2).
                read = self.tar.read_view
                view = read(_COPY_CHUNK)
                h = hashlib.sha256(view)
                left = e.size - len(view)
                while True:
                    while view:
                        view = view[os.write(fd, view) :]
                    if left <= 0:
                        break
                    view = read(_COPY_CHUNK)
                    if not view:
                        break  # not reached: the parser raises on a short member
                    left -= len(view)
                    h.update(view)
                sha = h.hexdigest()
            else:
                sha = _EMPTY_SHA256
            self._attrs_fd(fd, e)
            ns = e.mtime * 1_000_000_000
            os.utime(fd, ns=(ns, ns))
        finally:
            os.close(fd)
        self.content_size += e.size
        return sha

    def _dir(self, e: Entry) -> None:
        pfd, name = self.tree.parent_fd(e.path, create=True)
        fd = self.tree.open_dir_at(pfd, name)
        if fd is None:
            self._create(pfd, name, e.path, lambda: os.mkdir(name, 0o700, dir_fd=pfd))
            fd = self.tree.open_dir_at(pfd, name)
            if fd is None:
                raise OSError(errno.ENOTDIR, "directory vanished while extracting", e.path)
        elif not self.overlay and not self.plain:
            # Dir over dir replaces the attributes (layer.md), so xattrs the entry no longer
            # carries go. (OVERLAY dest dirs are this layer's own, with only its opaque xattr.)
            for xname in os.listxattr(fd):
                if xname not in e.xattrs and xname != "security.selinux":
                    os.removexattr(fd, xname)
        self.tree.adopt(e.path, fd)
        self._attrs_fd(fd, e)
        if self.overlay and e.path in self.whiteouts:
            os.setxattr(fd, OPAQUE_XATTR, OPAQUE_XATTR_VALUE)
        self.dir_times.append((e.path, e.mtime * 10**9))

    def _symlink(self, e: Entry) -> None:
        if self.plain and not e.linkname.startswith("/"):
            self._refuse_climbing_link(e)
        pfd, name = self.tree.parent_fd(e.path, create=True)
        self._create(pfd, name, e.path, lambda: os.symlink(e.linkname, name, dir_fd=pfd))
        self._attrs_at(pfd, name, e, chmod=False)
        # Docker's layer size (directory.Size) is the lstat size of every non-dir, hardlinks
        # once: a symlink counts the length of its target.
        self.content_size += len(os.fsencode(e.linkname))

    def _node(self, e: Entry) -> None:
        pfd, name = self.tree.parent_fd(e.path, create=True)
        if e.kind is EntryKind.FIFO:
            self._create(pfd, name, e.path, lambda: os.mkfifo(name, 0o600, dir_fd=pfd))
        else:
            kind = stat.S_IFCHR if e.kind is EntryKind.CHAR else stat.S_IFBLK
            dev = os.makedev(e.devmajor, e.devminor)
            self._create(pfd, name, e.path, lambda: os.mknod(name, kind | 0o600, dev, dir_fd=pfd))
        self._attrs_at(pfd, name, e, chmod=True)

    def _hardlink(self, e: Entry) -> str | None:
        target = e.linkname
        if self.overlay and self.written.get(target, True):  # not in this layer, or a dir
            raise UnsafeArchivePathError(e.path, f"hardlink target {target!r} is not in this layer")
        try:
            tpfd, tname = self.tree.parent_fd(target, create=False)
        except FileNotFoundError:
            tpfd, tname = -1, ""
        st = self.tree.lstat(tpfd, tname) if tpfd >= 0 else None
        if st is None or stat.S_ISDIR(st.st_mode):
            raise UnsafeArchivePathError(e.path, f"hardlink target {target!r} is not a file")
        tfd = os.dup(tpfd)  # the walk below may evict the borrowed fd from the cache
        try:
            pfd, name = self.tree.parent_fd(e.path, create=True)
            self._create(
                pfd,
                name,
                e.path,
                lambda: os.link(tname, name, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False),
            )
            # A plain archive keeps no index: nothing to hash (a hostile one would have each
            # of its links re-read a huge target, or a FIFO a running container swapped in).
            sha = None
            if not self.plain and stat.S_ISREG(st.st_mode):
                if st.st_ino in self.link_sha:
                    sha = self.link_sha[st.st_ino]
                else:
                    sha = self.link_sha[st.st_ino] = _hash_at(tfd, tname)
        finally:
            os.close(tfd)
        return sha

    def _whiteout(self, e: Entry) -> None:
        if e.path in self.written:
            return  # whiteouts hide lower layers only; this layer's own entry stays
        if e.path in self.ancestors:
            raise UnsafeArchivePathError(e.path, "whiteout of a directory this layer wrote into")
        try:
            pfd, name = self.tree.parent_fd(e.path, create=self.overlay)
        except (FileNotFoundError, NotADirectoryError):
            return  # no parent directory, so nothing of that name exists to hide
        self.whiteouts.add(e.path)
        if not self.overlay:
            self.tree.remove(pfd, name, e.path)
            return
        dev = os.makedev(0, 0)
        self._create(pfd, name, e.path, lambda: os.mknod(name, stat.S_IFCHR, dev, dir_fd=pfd))
        if self.chown:
            os.chown(name, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)

    def _opaque(self, e: Entry) -> None:
        try:
            fd = self.tree.dir_fd(e.path, create=True)
        except NotADirectoryError:
            return  # the dir was replaced by a non-dir: no children to hide
        if self.overlay:
            os.setxattr(fd, OPAQUE_XATTR, OPAQUE_XATTR_VALUE)
        else:
            self._purge(fd, e.path)

    _HANDLERS: Final[dict[EntryKind, Callable[[_Extractor, Entry], str | _Hash | None]]] = {
        EntryKind.FILE: _file,
        EntryKind.DIR: _dir,
        EntryKind.SYMLINK: _symlink,
        EntryKind.HARDLINK: _hardlink,
        EntryKind.CHAR: _node,
        EntryKind.BLOCK: _node,
        EntryKind.FIFO: _node,
        EntryKind.WHITEOUT: _whiteout,
        EntryKind.OPAQUE: _opaque,
    }

    # -- helpers --------------------------------------------------------------------------

    def _purge(self, fd: int, rel: str) -> None:
        """APPLY opaque: delete what this layer did not write below ``rel``."""
        for name in os.listdir(fd):
            child = f"{rel}/{name}" if rel else name
            if child not in self.written and child not in self.ancestors:
                self.tree.remove(fd, name, child)
            elif child in self.ancestors or self.written[child]:
                cfd = self.tree.open_dir_at(fd, name)
                if cfd is not None:
                    try:
                        self._purge(cfd, child)
                    finally:
                        os.close(cfd)

    def _refuse_climbing_link(self, e: Entry) -> None:
        """Docker's "invalid symlink": the target, joined to the link's dir and cleaned by the
        string, must still start with the destination (Go's ``strings.HasPrefix``, as is)."""
        parts: list[str] = []
        for p in f"{self.dest}/{e.path.rpartition('/')[0]}/{e.linkname}".split("/"):
            if p == "..":
                if parts:
                    parts.pop()
            elif p and p != ".":
                parts.append(p)
        if not ("/" + "/".join(parts)).startswith(self.dest):
            raise UnsafeArchivePathError(
                e.path, f"invalid symlink to {e.linkname!r}: it leads out of {self.dest}"
            )

    def _create(self, pfd: int, name: str, rel: str, make: Callable[[], int | None]) -> int:
        """Run ``make``; if the name exists, remove what is there (see module doc) and retry."""
        try:
            return make() or 0
        except FileExistsError:
            if self.plain:
                self._may_replace(pfd, name, rel)
            if rel in self.ancestors:
                raise UnsafeArchivePathError(
                    rel, "replaces a directory this layer already wrote into"
                ) from None
            self.tree.remove(pfd, name, rel)
            return make() or 0

    def _may_replace(self, pfd: int, name: str, rel: str) -> None:
        """PLAIN: what exists at ``rel`` may be replaced (the guard agrees; a dir and a non-dir
        never replace each other, as Docker's cp extracts with ``NoOverwriteDirNonDir``)."""
        st = self.tree.lstat(pfd, name)
        if st is None:
            return
        if self.guard is not None:
            self.guard(st)
        making_dir = self._current is EntryKind.DIR
        if stat.S_ISDIR(st.st_mode) and not making_dir:
            raise ConflictError(f"cannot overwrite directory {rel!r} with a non-directory")
        if making_dir and not stat.S_ISDIR(st.st_mode):
            raise ConflictError(f"cannot overwrite non-directory {rel!r} with a directory")

    def _xattr_name(self, name: str) -> str:
        return escape_xattr_name(name) if self.overlay or self.plain else name

    def _attrs_fd(self, fd: int, e: Entry) -> None:
        if self.chown:
            os.fchown(fd, e.uid, e.gid)
        os.fchmod(fd, e.mode)
        for key, value in e.xattrs.items():
            os.setxattr(fd, self._xattr_name(key), value)

    def _attrs_at(self, pfd: int, name: str, e: Entry, *, chmod: bool) -> None:
        if self.chown:
            os.chown(name, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)
        if chmod:
            os.chmod(name, e.mode, dir_fd=pfd, follow_symlinks=False)
        for key, value in e.xattrs.items():
            os.setxattr(proc_path(pfd, name), self._xattr_name(key), value, follow_symlinks=False)
        ns = e.mtime * 10**9
        os.utime(name, ns=(ns, ns), dir_fd=pfd, follow_symlinks=False)

    def _check_lower_symlinks(self, e: Entry) -> None:
        if not self.lower_symlinks:
            return
        path = e.path if e.kind is EntryKind.OPAQUE else e.path.rpartition("/")[0]
        while path:
            if path in self.lower_symlinks and not self.written.get(path, False):
                raise UnsafeArchivePathError(e.path, f"{path!r} is a symlink in a lower layer")
            path = path.rpartition("/")[0]

    def _record(self, e: Entry) -> None:
        path = e.path
        if e.kind is EntryKind.OPAQUE and path:
            self.ancestors.add(path)
        while True:
            head = path.rpartition("/")[0]
            if not head or head in self.ancestors:
                return
            self.ancestors.add(head)
            path = head


def _hash_at(dir_fd: int, name: str) -> str | None:
    """The sha256 of regular file ``name``; None if it is no longer one (O_NONBLOCK: a FIFO
    swapped in since it was checked must not hang the extraction)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    fd = os.open(name, flags, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return hashlib.file_digest(f, "sha256").hexdigest()
