"""``docker cp``'s rules: what a path means and where a copy lands, in both directions.

Only a path's trailing form carries meaning (:class:`CpPath`): ``dir/.`` is what the dir
holds, ``dir/`` and ``dir`` are the dir itself. Where SRC lands depends on what DEST is
(:func:`_place`, after moby's ``PrepareArchiveCopy`` and the table in Docker's ``cp``
reference); a DEST that is a symlink is written through. The container side of every lookup
goes through :mod:`lamina.engine.container_fs`'s confined opens, so no spelling, symlink or
``..`` reaches past the rootfs.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

from msgspec import Struct
from msgspec.structs import replace

from lamina.engine.container_fs import (
    DIR_FLAGS,
    NOFOLLOW_DIR_FLAGS,
    MountPoints,
    Owner,
    Ownership,
    closing,
    copy_into,
    open_in_root,
)
from lamina.errors import (
    ConflictError,
    FileError,
    InvalidContentError,
    NotFoundError,
    UnsupportedMediaTypeError,
    shorten,
)

if TYPE_CHECKING:
    from lamina.archive.tarwriter import TarWriter


class CpPath(Struct, frozen=True, kw_only=True):
    """One side of ``cp`` as ``docker cp`` reads it (moby's pkg/archive: ``SplitPathDirEntry``,
    ``specifiesCurrentDir``, ``assertsDirectory``). Only the trailing form carries meaning:
    ``dir/.`` is what the dir holds, ``dir/`` and ``dir`` are the dir itself, and either one
    ending in "/" or "/." must be a directory (a symlink there is followed)."""

    given: str
    path: str  # absolute, lexically clean, no trailing "/" ("/" for the root)
    contents: bool  # ends in "/." (the root counts: Docker copies what / holds)
    directory: bool  # ends in "/" or "/."

    @classmethod
    def in_container(cls, given: str) -> CpPath:
        """A container path, cleaned by the string from "/" as the daemon cleans it
        (``filepath.Join("/", path)``): "a/b/.." is "a" and ".." at the root stays there, so
        no spelling leaves the root. Each name is then looked up below its parent's fd."""
        return cls._of(given, _clean(given))

    @classmethod
    def on_host(cls, given: str) -> CpPath:
        """A host path, made absolute and clean as the docker client does (``filepath.Abs``:
        "a/b/.." is "a", by the string, not by the filesystem)."""
        return cls._of(given, os.path.abspath(given))

    @classmethod
    def _of(cls, given: str, path: str) -> CpPath:
        contents = given.rstrip("/").rpartition("/")[2] == "." or path == "/"
        directory = contents or given.endswith("/")
        return cls(given=given, path=path, contents=contents, directory=directory)

    @property
    def parent(self) -> str:
        return os.path.dirname(self.path)

    @property
    def name(self) -> str:
        """The last component ("" for the root)."""
        return os.path.basename(self.path)


@contextlib.contextmanager
def _system_errors(src: str, dest: str) -> Iterator[None]:
    """What the system refused (a name too long, a full disk, a host dir not ours) as a
    FileError with its reason; lamina's own errors pass as they are."""
    try:
        yield
    except OSError as exc:
        raise FileError(f"cannot copy {shorten(src)} to {shorten(dest)}: {exc.strerror}") from exc


def copy_out(root: Path, src: str, dest: str, *, follow_link: bool = False) -> None:
    """``docker cp [-L] CONTAINER:SRC DEST``: ``src`` resolved inside ``root``, DEST on the
    host, by Docker's rules (:func:`_place`). What is written belongs to whoever copies, not
    to the container's owners (Docker's client extracts with ``NoLchown``, ``-a`` or not).
    ``follow_link`` (``-L``): a SRC that is a symlink is copied as what it leads to (resolved
    inside ``root``), under the link's name."""
    with _system_errors(src, dest):
        _copy_out(root, src, dest, follow_link=follow_link)


def _copy_out(root: Path, src: str, dest: str, *, follow_link: bool) -> None:
    source = CpPath.in_container(src)
    follow = _container_link(root) if follow_link else None
    sfd, name, st = _open_source(_container_dirs(root), source, _IN_CONTAINER, follow=follow)
    with closing(sfd):
        _place(
            sfd,
            name,
            st,
            source,
            CpPath.on_host(dest),
            open_dir=_open_host_dir,
            where="",
            links=_HOST_DEST_LINKS,
            owner=Ownership.COPIER,
        )


def copy_in(
    root: Path,
    src: str,
    dest: str,
    *,
    mount_points: MountPoints | None = None,
    follow_link: bool = False,
    owner: tuple[int, int] | None = None,
    read_only_rootfs: bool = False,
) -> None:
    """``docker cp [-L] [-a] SRC CONTAINER:DEST``: SRC on the host, ``dest`` resolved inside
    ``root`` (a symlink there pointing "outside" lands inside the rootfs), by Docker's rules
    (:func:`_place`). A destination on a read-only mount -- or, with ``read_only_rootfs``, one
    on the rootfs itself rather than in a volume (Docker's check for ``--read-only``) --
    raises ConflictError before anything is written; a copied dir that reaches a read-only
    mount, or a file of ``mount_points`` it would replace, stops there with ConflictError.
    ``follow_link``: a SRC that is a symlink is copied as what it leads to, under the link's
    name; ``owner`` (uid, gid): who owns what is written (None: the host files' owners)."""
    source, target = CpPath.on_host(src), CpPath.in_container(dest)
    follow = (lambda path: os.path.realpath(path, strict=True)) if follow_link else None
    with _system_errors(src, dest):
        sfd, name, st = _open_source(_open_host_dir, source, "", follow=follow)
    rootfs = _mount_id_of(root) if read_only_rootfs else None

    def guard(fd: int) -> None:
        if rootfs is not None and _mount_id(fd) == rootfs:
            raise _rootfs_read_only(dest)
        _refuse_read_only(fd, dest)

    with closing(sfd), _system_errors(src, dest):
        try:
            _place(
                sfd,
                name,
                st,
                source,
                target,
                open_dir=_container_dirs(root),
                guard=guard,
                mount_points=mount_points,
                where=_IN_CONTAINER,
                links=1,
                owner=Ownership.SOURCE if owner is None else owner,
            )
        except OSError as exc:
            if exc.errno == errno.EROFS:
                raise _read_only(dest) from exc
            raise


_IN_CONTAINER: Final = " in the container"  # for messages naming a container path
# A DEST that is a symlink is written through: on the host up to this many links, as the
# docker client's CopyInfoDestinationPath; in the container one, as the client's one
# ContainerStatPath of the link's target.
_HOST_DEST_LINKS: Final = 10


def _container_dirs(root: Path) -> Callable[[str], int]:
    """Opens a dir of the container confined to ``root``, its OSErrors left as they are."""
    return lambda path: open_in_root(root, path, flags=DIR_FLAGS)


def _open_host_dir(path: str) -> int:
    return os.open(path, DIR_FLAGS)


def _open_source(
    open_dir: Callable[[str], int],
    src: CpPath,
    where: str,
    *,
    follow: Callable[[str], str] | None = None,
) -> tuple[int, str, os.stat_result]:
    """(dir fd, name, lstat) of what ``src`` names: ``name`` in the dir, or "." with the dir
    itself when ``src`` ends in "/" or "/." (a symlink to a dir followed, as Docker follows
    it). A symlink without the slash is copied as the link -- unless ``follow`` is given
    (``cp -L``): then ``follow(path)`` resolves it to the absolute path of what it leads to,
    and that is opened (the caller still names the copy after ``src``)."""
    try:
        fd = open_dir(src.path if src.directory else src.parent)
    except FileNotFoundError as exc:
        raise NotFoundError(f"no such file or directory{where}: {src.given}") from exc
    except NotADirectoryError as exc:
        raise NotFoundError(f"not a directory{where}: {src.given}") from exc
    name = "." if src.directory else src.name
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError as exc:
        os.close(fd)
        raise NotFoundError(f"no such file or directory{where}: {src.given}") from exc
    if follow is None or not stat.S_ISLNK(st.st_mode):
        return fd, name, st
    os.close(fd)
    try:
        target = follow(src.path)
    except FileNotFoundError as exc:  # a dangling link
        raise NotFoundError(f"no such file or directory{where}: {src.given}") from exc
    return _open_source(open_dir, CpPath._of(target.rstrip("/") or "/", target), where)


def _container_link(root: Path) -> Callable[[str], str]:
    """Resolves a container path, symlinks and all, inside ``root`` (as Docker's daemon
    resolves a link's target for ``cp -L``): its path as the container sees it."""

    def follow(path: str) -> str:
        with closing(open_in_root(root, path, flags=os.O_PATH | os.O_CLOEXEC)) as fd:
            inside = _path_in_root(root, fd)
        if inside is None:
            raise FileNotFoundError(errno.ENOENT, "not inside the container", path)
        return inside

    return follow


def _no_guard(fd: int) -> None:
    del fd


def _place(
    sfd: int,
    name: str,
    st: os.stat_result,
    src: CpPath,
    dest: CpPath,
    *,
    open_dir: Callable[[str], int],
    where: str,
    guard: Callable[[int], None] = _no_guard,
    mount_points: MountPoints | None = None,
    links: int = 0,
    owner: Owner = Ownership.SOURCE,
) -> None:
    """Copy ``name`` of ``sfd`` (lstat ``st``) to ``dest`` as ``docker cp`` places it (moby's
    ``PrepareArchiveCopy``; the table in Docker's ``cp`` reference):

    - DEST is a dir (a symlink to one followed): SRC goes into it as ``DEST/<SRC's name>``, or
      for ``SRC/.`` what SRC holds goes into it;
    - DEST is not a dir: a dir SRC is refused; a file SRC replaces it;
    - DEST is missing: a dir SRC is copied as DEST (``SRC`` and ``SRC/.`` alike), a file SRC
      is saved as DEST -- unless DEST ends in "/" (a file cannot make a dir) or "/." (that
      names the dir to copy into); DEST's parent must exist;
    - DEST is a symlink (even a dangling one): all of the above applies to its target,
      relative to DEST's dir, for up to ``links`` links; in the container the target is still
      looked up inside the rootfs.

    ``open_dir(path)`` opens a dir of DEST's side (confined for a container), ``guard(fd)``
    vets each dir written into and an entry about to be replaced."""
    try:
        dfd = open_dir(dest.path)
    except (FileNotFoundError, NotADirectoryError) as exc:
        missing: OSError = exc
    else:
        with closing(dfd):
            guard(dfd)
            if src.contents:
                for entry in sorted(os.listdir(sfd)):
                    copy_into(sfd, entry, dfd, entry, mount_points=mount_points, owner=owner)
            else:
                copy_into(sfd, name, dfd, src.name, mount_points=mount_points, owner=owner)
        return
    is_dir = stat.S_ISDIR(st.st_mode)
    if dest.contents or (dest.directory and not is_dir):
        raise _no_dir(dest.given, where, missing)
    try:
        pfd = open_dir(dest.parent)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise _no_dir(dest.parent, where, exc) from exc
    with closing(pfd):
        guard(pfd)
        target = _link_target(pfd, dest) if links > 0 and not dest.directory else None
        if target is None:
            with contextlib.suppress(FileNotFoundError):
                flags = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
                with closing(os.open(dest.name, flags, dir_fd=pfd)) as efd:
                    guard(efd)  # a file bind mounted :ro
                    if is_dir:  # Docker: "cannot copy directory"
                        raise ConflictError(f"cannot copy a directory onto the file {dest.given}")
            copy_into(sfd, name, pfd, dest.name, mount_points=mount_points, owner=owner)
            return
    _place(
        sfd,
        name,
        st,
        src,
        target,
        open_dir=open_dir,
        where=where,
        guard=guard,
        mount_points=mount_points,
        links=links - 1,
        owner=owner,
    )


def _link_target(pfd: int, dest: CpPath) -> CpPath | None:
    """DEST's link target when DEST is a symlink (``dest.name`` in ``pfd``), as a path on
    the same side: an absolute target as it is, a relative one from DEST's dir, cleaned by
    the string ("/" is the container's root for a container path)."""
    try:
        link = os.readlink(dest.name, dir_fd=pfd)
    except OSError:
        return None  # missing, or not a link (EINVAL)
    path = _clean(link if link.startswith("/") else f"{dest.parent}/{link}")
    return CpPath._of(path, path)


def _clean(path: str) -> str:
    """``path`` (absolute) cleaned by the string: "." dropped, ".." stepping back (never past
    "/"), no trailing "/"."""
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part and part != ".":
            parts.append(part)
    return "/" + "/".join(parts)


def _no_dir(path: str, where: str, exc: OSError) -> NotFoundError:
    if isinstance(exc, NotADirectoryError):
        return NotFoundError(f"destination {path} is not a directory{where}")
    return NotFoundError(f"destination directory {path} does not exist{where}")


def _refuse_read_only(fd: int, dest: str) -> None:
    if os.fstatvfs(fd).f_flag & os.ST_RDONLY:
        raise _read_only(dest)


def _mount_id(fd: int) -> int:
    """The id of the mount ``fd`` is on (``mnt_id`` of /proc/self/fdinfo)."""
    with open(f"/proc/self/fdinfo/{fd}", encoding="ascii") as f:
        for line in f:
            if line.startswith("mnt_id:"):
                return int(line.split()[1])
    raise OSError(errno.ENOTSUP, "no mnt_id in /proc/self/fdinfo")


def _mount_id_of(root: Path) -> int:
    with closing(os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)) as fd:
        return _mount_id(fd)


def _rootfs_read_only(dest: str) -> ConflictError:
    # Docker's words (ErrRootFSReadOnly): a --read-only container takes copies only into
    # its volumes.
    exc = ConflictError(f"container rootfs is marked read-only: cannot copy to {dest}")
    exc.hint = "the container was made with --read-only: only its volumes can be copied into"
    return exc


def _read_only(dest: str) -> ConflictError:
    # Docker's words (ErrVolumeReadonly).
    exc = ConflictError(f"mounted volume is marked read-only: cannot copy to {dest}")
    exc.hint = "the container mounts it with :ro"
    return exc


def archive_out(root: Path, src: str, out: IO[bytes], *, follow_link: bool = False) -> None:
    """``docker cp CONTAINER:SRC -``: a tar of ``src`` (resolved inside ``root``, read as
    :class:`CpPath` reads it) on ``out``, its entries named from SRC's last component as
    Docker names them (``etc/``, ``etc/hostname``); for "/" or a path ending in "/." the
    entries are what the dir holds. Symlinks are stored, never followed (but a trailing "/"
    follows one to its dir, as Docker does); sockets are left out, as tar cannot hold them.
    ``follow_link`` (``-L``): a SRC that is a symlink is archived as what it leads to, under
    that target's name (Docker's client renames only what it extracts)."""
    from lamina.archive.tarwriter import TarWriter

    source = CpPath.in_container(src)
    if follow_link:
        with _system_errors(src, "-"):
            fd, name, st = _open_source(_container_dirs(root), source, _IN_CONTAINER)
            os.close(fd)
        if stat.S_ISLNK(st.st_mode):
            with _system_errors(src, "-"):
                try:
                    target = _container_link(root)(source.path)
                except FileNotFoundError as exc:
                    raise NotFoundError(f"no such file or directory{_IN_CONTAINER}: {src}") from exc
            source = CpPath.in_container(target)
    with _system_errors(src, "-"):  # the lookup only: a reader gone is main()'s to report
        sfd, name, _ = _open_source(_container_dirs(root), source, _IN_CONTAINER)
    with closing(sfd), TarWriter(out, layer=False) as tw:
        links: dict[tuple[int, int], str] = {}
        if source.contents:
            for entry in sorted(os.listdir(sfd)):
                _archive_entry(tw, sfd, entry, entry, links=links)
            return
        _archive_entry(tw, sfd, name, source.name, links=links)


def _archive_entry(
    tw: TarWriter,
    dir_fd: int,
    name: str,
    path: str,
    *,
    links: dict[tuple[int, int], str],
) -> None:
    from lamina.archive.entry import Entry, EntryKind

    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    fmt = stat.S_IFMT(st.st_mode)
    entry = Entry(
        path=path,
        kind=EntryKind.FILE,
        mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
        mtime=int(st.st_mtime),
    )
    if fmt == stat.S_IFDIR:
        tw.add(replace(entry, kind=EntryKind.DIR))
        with closing(os.open(name, NOFOLLOW_DIR_FLAGS, dir_fd=dir_fd)) as dfd:
            for child in sorted(os.listdir(dfd)):
                _archive_entry(tw, dfd, child, f"{path}/{child}", links=links)
    elif fmt == stat.S_IFREG:
        inode = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and inode in links:
            tw.add(replace(entry, kind=EntryKind.HARDLINK, linkname=links[inode]))
            return
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        with os.fdopen(os.open(name, flags, dir_fd=dir_fd), "rb") as f:
            tw.add(replace(entry, size=st.st_size), f)
        if st.st_nlink > 1:
            links[inode] = path
    elif fmt == stat.S_IFLNK:
        link = os.readlink(name, dir_fd=dir_fd)
        tw.add(replace(entry, kind=EntryKind.SYMLINK, linkname=link))
    elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
        kind = EntryKind.CHAR if fmt == stat.S_IFCHR else EntryKind.BLOCK
        major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
        tw.add(replace(entry, kind=kind, devmajor=major, devminor=minor))
    elif fmt == stat.S_IFIFO:
        tw.add(replace(entry, kind=EntryKind.FIFO))


def archive_in(
    root: Path,
    dest: str,
    source: IO[bytes],
    *,
    mount_points: MountPoints | None = None,
    shown: str | None = None,
    owner: tuple[int, int] | None = None,
    read_only_rootfs: bool = False,
) -> None:
    """``docker cp - CONTAINER:DEST``: extract the tar on ``source`` (plain, gzip, bzip2, xz or
    zstd, inflated in-process) into DEST, which must be an existing dir inside ``root`` (a
    symlink on the way resolved inside the rootfs). Entries keep their modes, owners and
    mtimes; ``.wh.*`` names are plain files; symlinks among the parents of an entry -- the
    container's or the archive's own -- are followed as the container would follow them, never
    out of ``root`` (:func:`lamina.archive.apply.extract_plain`). ``shown`` names DEST in
    messages (``CONTAINER:DEST``). A read-only mount refuses (ConflictError), as does a file
    of ``mount_points`` an entry would replace; with ``read_only_rootfs``, so does a DEST
    outside the container's volumes. ``owner`` (uid, gid) owns every entry (``cp -a``)."""
    from lamina.archive.apply import extract_plain
    from lamina.archive.safepath import Tree

    target = CpPath.in_container(dest)
    try:
        dfd = open_in_root(root, target.path, flags=DIR_FLAGS)
    except (FileNotFoundError, NotADirectoryError) as exc:
        # Docker's client words, for a DEST missing, a file, or a link to neither.
        raise NotFoundError(f'destination "{shown or dest}" must be a directory') from exc
    except OSError as exc:
        raise FileError(f"cannot copy to {shorten(dest)}: {exc.strerror}") from exc
    with contextlib.ExitStack() as stack:
        stack.callback(os.close, dfd)
        if read_only_rootfs and _mount_id(dfd) == _mount_id_of(root):
            raise _rootfs_read_only(dest)
        _refuse_read_only(dfd, dest)
        stream = _inflated(source)
        if stream is None:
            return  # an empty stream is an empty archive, as Docker reads it
        stack.enter_context(stream)
        # The path the kernel resolved DEST to, as the container sees it (Docker's symlink
        # rule is relative to it); links met below it are resolved again from the rootfs.
        where = _path_in_root(root, dfd) or target.path
        tree = Tree(
            os.dup(dfd),
            follow=lambda rel: open_in_root(root, f"{where}/{rel}", flags=DIR_FLAGS),
        )
        guard = mount_points.refuse if mount_points is not None else _no_stat_guard
        with tree:
            try:
                extract_plain(stream, tree, dest=where, guard=guard, owner=owner)
            except UnsupportedMediaTypeError as exc:
                raise InvalidContentError(
                    "the input is not a tar archive (plain, gzip, bzip2, xz or zstd)"
                ) from exc
            except OSError as exc:
                if exc.errno == errno.EROFS:
                    raise _read_only(dest) from exc
                raise FileError(f"cannot copy to {shorten(dest)}: {exc.strerror}") from exc


def _no_stat_guard(st: os.stat_result) -> None:
    del st


def _path_in_root(root: Path, fd: int) -> str | None:
    """``fd``'s path inside ``root`` as the kernel names it; None if it names none."""
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    base = str(root).rstrip("/")
    if real == base:
        return "/"
    if real.startswith(base + "/"):
        return real[len(base) :]
    return None


_XZ_MAGIC: Final = b"\xfd7zXZ\x00"
_BZIP2_MAGIC: Final = b"BZh"


def _inflated(source: IO[bytes]) -> IO[bytes] | None:
    """``source`` with xz or bzip2 inflated by the stdlib (in-process: never an external
    ``xz``, CVE-2026-41567); gzip, zstd and plain tar are the extractor's own. None if empty."""
    head = source.read(512)
    if not head:
        return None
    raw = io.BufferedReader(_Prefixed(head, source), 1 << 20)
    if head.startswith(_XZ_MAGIC):
        import lzma

        from lamina.archive.compression import XzReader

        xz = io.BufferedReader(XzReader(raw), 1 << 20)  # a bounded decoder: see XzReader
        return io.BufferedReader(_Checked(xz, "xz", (lzma.LZMAError, EOFError)), 1 << 20)
    if head.startswith(_BZIP2_MAGIC):
        import bz2

        bz = bz2.BZ2File(raw)  # closed with the reader returned
        return io.BufferedReader(_Checked(bz, "bzip2", (OSError, EOFError, ValueError)), 1 << 20)
    return raw


class _Prefixed(io.RawIOBase):
    """``head`` (bytes already read from ``rest``), then ``rest``."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(b))
        b[: len(data)] = data
        return len(data)


class _Checked(io.RawIOBase):
    """A stdlib decompressing reader whose corrupt or truncated input is InvalidContentError."""

    def __init__(self, inner: IO[bytes], what: str, errors: tuple[type[Exception], ...]) -> None:
        self._inner = inner
        self._what = what
        self._errors = errors

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            data = self._inner.read(len(b))
        except self._errors as exc:
            raise InvalidContentError(f"corrupt or truncated {self._what} archive: {exc}") from exc
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._inner.close()
        super().close()


def archive_owner(user: str) -> tuple[int, int]:
    """Who owns what ``cp -a`` copies into a container whose ``Config.User`` is ``user``
    (not empty): Docker's daemon looks the whole string up in the *host's* passwd database
    (``idtools.LookupUser``: by name, then as getent does, by uid), so ``nobody`` is the
    host's nobody and ``1000:2000`` is refused as Docker refuses it."""
    import pwd

    pw: pwd.struct_passwd | None
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        try:
            pw = pwd.getpwuid(int(user)) if user.isascii() and user.isdigit() else None
        except KeyError:
            pw = None
    if pw is None:
        raise NotFoundError(f'getent unable to find entry "{user}" in passwd database')
    return pw.pw_uid, pw.pw_gid
