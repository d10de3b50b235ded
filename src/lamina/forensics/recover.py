"""Read files as any layer saw them: ``lamina cat`` and ``lamina extract``.

Content comes from the layer's tar (the stored blob, or the archive's layer), streamed until the
member and no further; since a stream stopped early is not digest-checked, the member's bytes are
checked against the sha256 in its index row instead (written when the whole layer was verified),
and nothing is handed out before that check passes.

Symlinks in the merged view are followed inside the image (absolute targets re-rooted, at most
40 hops), so ``/etc/os-release`` reads ``/usr/lib/os-release``. Extraction writes through
:class:`lamina.archive.safepath.Tree` (fd-confined, no symlink is followed while writing),
drops setuid/setgid/sticky bits and never chowns: what comes out is evidence, not a rootfs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Final

from msgspec import Struct

from lamina.archive.entry import EntryKind, IndexEntry
from lamina.archive.safepath import Tree
from lamina.archive.tarstream import TarStream, limits_from_env
from lamina.errors import ConflictError, DigestMismatchError, NotFoundError, UsageError
from lamina.forensics.replay import Action, Located, View, all_events, view_at
from lamina.forensics.stack import Stack
from lamina.forensics.story import clean_path

_MAX_HOPS: Final = 40
_CHUNK: Final = 1 << 20
_SPOOL: Final = 8 << 20
_FILE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _join(base: str, target: str) -> str:
    parts = [] if target.startswith("/") else [p for p in base.split("/") if p]
    for p in target.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if parts:
                parts.pop()  # ".." at the root stays at the root, as in a chroot
        else:
            parts.append(p)
    return "/".join(parts)


def resolve(view: View, path: str, *, follow_last: bool = True) -> tuple[str, Located | None]:
    """(the path after following symlinks, its visible row or None)."""
    rest = [p for p in path.split("/") if p]
    cur = ""
    hops = 0
    while rest:
        comp = rest.pop(0)
        cand = f"{cur}/{comp}" if cur else comp
        loc = view.get(cand)
        if loc is None:
            if rest:
                # A parent dir no layer has an entry for: tar needs none (extraction makes
                # it), so the files below it are in the image all the same. cat and extract
                # said they were not, hiding them from the verbs that show evidence.
                cur = cand
                continue
            return "/".join([cand, *rest]), None
        if loc.entry.kind is EntryKind.SYMLINK and (rest or follow_last):
            hops += 1
            if hops > _MAX_HOPS:
                raise UsageError(f"/{path}: too many levels of symbolic links")
            rest = [p for p in _join(cur, loc.entry.linkname).split("/") if p] + rest
            cur = ""
            continue
        cur = cand
    return cur, view.get(cur) if cur else None


class _Want(Struct, frozen=True, kw_only=True):
    member: str  # the tar member holding the bytes (a hardlink's target)
    row: IndexEntry  # whose sha256 the bytes must have


def _source(stack: Stack, view: View, loc: Located) -> tuple[int, _Want]:
    row = loc.row
    if row.entry.kind is EntryKind.HARDLINK:
        own = {ie.entry.path for ie in stack.layers[loc.layer].rows}
        if row.entry.linkname in own:
            return loc.layer, _Want(member=row.entry.linkname, row=row)
        target = view.get(row.entry.linkname)
        if target is None or target.entry.kind is not EntryKind.FILE:
            raise NotFoundError(f"hardlink target /{row.entry.linkname} is not in the image")
        return target.layer, _Want(member=target.entry.path, row=row)
    if row.entry.kind is not EntryKind.FILE:
        raise UsageError(f"/{row.entry.path} is a {row.entry.kind.value}, not a file")
    return loc.layer, _Want(member=row.entry.path, row=row)


def _members(stack: Stack, layer: int, wanted: set[str]) -> Iterator[tuple[str, TarStream]]:
    """(member path, the stream positioned at its content) for each wanted member."""
    left = set(wanted)
    with stack.layers[layer].view.open_uncompressed() as tar:
        ts = TarStream(tar, limits=limits_from_env())
        for m in ts:
            if m.entry.path in left and m.entry.kind is EntryKind.FILE:
                left.discard(m.entry.path)
                yield m.entry.path, ts
                if not left:
                    return
    if left:
        raise NotFoundError(f"layer {layer} has no member {sorted(left)[0]!r}")


def _copy_checked(ts: TarStream, out: IO[bytes], want: _Want, *, what: str) -> int:
    h = hashlib.sha256()
    n = 0
    while chunk := ts.read(_CHUNK):
        h.update(chunk)
        out.write(chunk)
        n += len(chunk)
    if want.row.sha256 is not None and h.hexdigest() != want.row.sha256:
        raise DigestMismatchError(
            expected=f"sha256:{want.row.sha256}", actual=f"sha256:{h.hexdigest()}", what=what
        )
    return n


def _missing(stack: Stack, path: str, layer: int | None) -> NotFoundError:
    err = NotFoundError(
        f"/{path} is not in {stack.name}" + (f" at layer {layer}" if layer is not None else "")
    )
    per_layer, _ = all_events(stack)
    seen = [
        ev
        for events in per_layer
        for ev in events
        if ev.path == path and (layer is None or ev.layer <= layer)
    ]
    gone = [ev for ev in seen if ev.action in (Action.DELETED, Action.HIDDEN)]
    if gone:
        last = gone[-1]
        err.add_note(f"layer {last.layer} removed it ({last.cause})")
        err.hint = f"lamina cat {stack.name} /{path} --layer {last.layer - 1}"
    return err


def _view(stack: Stack, layer: int | None) -> View:
    if layer is not None and not 0 <= layer < len(stack.layers):
        raise UsageError(f"--layer {layer}: {stack.name} has layers 0..{len(stack.layers) - 1}")
    return view_at(stack, layer)


def cat(stack: Stack, path: str, *, layer: int | None, out: IO[bytes]) -> None:
    """Write ``path`` as layer ``layer`` (the final image when None) saw it to ``out``."""
    want_path = clean_path(path)
    view = _view(stack, layer)
    real, loc = resolve(view, want_path)
    if loc is None:
        raise _missing(stack, want_path, layer)
    src_layer, want = _source(stack, view, loc)
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL) as spool:
        for _, ts in _members(stack, src_layer, {want.member}):
            _copy_checked(ts, spool, want, what=f"/{real} in layer {src_layer}")
        spool.seek(0)
        shutil.copyfileobj(spool, out, _CHUNK)


def read_paths(stack: Stack, view: View, paths: Sequence[str], *, limit: int) -> dict[str, bytes]:
    """Contents (verified) of the files ``paths`` of ``view`` no larger than ``limit``, each
    layer streamed at most once."""
    by_layer: dict[int, dict[str, list[tuple[str, _Want]]]] = {}
    for p in paths:
        loc = view.get(p)
        if loc is None or loc.entry.kind not in (EntryKind.FILE, EntryKind.HARDLINK):
            continue
        layer, want = _source(stack, view, loc)
        if want.row.entry.size <= limit:
            by_layer.setdefault(layer, {}).setdefault(want.member, []).append((p, want))
    out: dict[str, bytes] = {}
    for layer, members in by_layer.items():
        for member, ts in _members(stack, layer, set(members)):
            buf = _Buffer()
            _copy_checked(ts, buf, members[member][0][1], what=f"/{member} in layer {layer}")  # type: ignore[arg-type]
            for p, _ in members[member]:
                out[p] = bytes(buf.data)
    return out


class _Buffer:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, b: bytes) -> int:
        self.data += b
        return len(b)


class Extracted(Struct, frozen=True, kw_only=True):
    path: str  # in the image
    dest: Path
    kind: str
    size: int
    layer: int  # the layer the row came from


def extract(
    stack: Stack, paths: Sequence[str], *, dest: Path, layer: int | None
) -> list[Extracted]:
    """Copy files (dirs recursively) as layer ``layer`` saw them to ``dest/<image path>``.
    Nothing already in ``dest`` is overwritten (ConflictError)."""
    try:
        return _extract(stack, paths, dest=dest, layer=layer)
    except FileExistsError as exc:
        raise ConflictError(
            f"{dest}: {exc.filename or 'a file'} already exists (extract into a new directory)"
        ) from exc
    except OSError as exc:
        raise UsageError(f"cannot write into {dest}: {exc.strerror}") from exc


def _extract(
    stack: Stack, paths: Sequence[str], *, dest: Path, layer: int | None
) -> list[Extracted]:
    view = _view(stack, layer)
    picked: dict[str, Located] = {}
    for raw in paths:
        asked = clean_path(raw)
        if not asked:
            raise UsageError("extract needs a path below / (the whole rootfs: lamina image export)")
        real, loc = resolve(view, asked, follow_last=False)
        if loc is not None:
            picked[real] = loc
            below = view.below(real) if loc.entry.kind is EntryKind.DIR else []
        else:
            below = view.below(real)  # a dir with no entry of its own: its files are there
            if not below:
                raise _missing(stack, asked, layer)
        for p in below:
            found = view.get(p)
            if found is not None:
                picked[p] = found
    dest.mkdir(parents=True, exist_ok=True)
    done: list[Extracted] = []
    contents: dict[int, dict[str, list[tuple[str, _Want]]]] = {}
    with Tree(dest) as tree:
        for p in sorted(picked, key=lambda x: x.split("/")):
            loc = picked[p]
            e = loc.entry
            if e.kind is EntryKind.DIR:
                tree.dir_fd(p, create=True)
                os.chmod(tree.dir_fd(p, create=False), e.mode & 0o777 | 0o700)
            elif e.kind is EntryKind.SYMLINK:
                pfd, name = tree.parent_fd(p, create=True)
                os.symlink(e.linkname, name, dir_fd=pfd)
            elif e.kind in (EntryKind.FILE, EntryKind.HARDLINK):
                src_layer, wanted = _source(stack, view, loc)
                contents.setdefault(src_layer, {}).setdefault(wanted.member, []).append((p, wanted))
                continue
            else:
                continue  # devices and fifos carry no content worth recovering
            done.append(
                Extracted(path=p, dest=dest / p, kind=e.kind.value, size=0, layer=loc.layer)
            )
        for src_layer, members in contents.items():
            for member, ts in _members(stack, src_layer, set(members)):
                targets = members[member]
                first, first_want = targets[0]
                size = _write_file(
                    tree, first, ts, first_want, what=f"/{member} in layer {src_layer}"
                )
                for other, _ in targets[1:]:
                    _copy_within(tree, first, other, first_want.row.entry.mode)
                for p, _ in targets:
                    done.append(
                        Extracted(
                            path=p, dest=dest / p, kind="file", size=size, layer=picked[p].layer
                        )
                    )
    return done


def _write_file(tree: Tree, rel: str, ts: TarStream, want: _Want, *, what: str) -> int:
    pfd, name = tree.parent_fd(rel, create=True)
    fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=pfd)
    try:
        with os.fdopen(fd, "wb", closefd=False) as f:
            n = _copy_checked(ts, f, want, what=what)
        os.fchmod(fd, want.row.entry.mode & 0o777)
    except BaseException:
        os.close(fd)
        os.unlink(name, dir_fd=pfd)
        raise
    os.close(fd)
    return n


def _copy_within(tree: Tree, src: str, dst: str, mode: int) -> None:
    spfd, sname = tree.parent_fd(src, create=False)
    sfd = os.open(sname, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=spfd)
    try:
        dpfd, dname = tree.parent_fd(dst, create=True)
        dfd = os.open(dname, _FILE_FLAGS, 0o600, dir_fd=dpfd)
        try:
            with (
                os.fdopen(sfd, "rb", closefd=False) as fi,
                os.fdopen(dfd, "wb", closefd=False) as fo,
            ):
                shutil.copyfileobj(fi, fo, _CHUNK)
            os.fchmod(dfd, mode & 0o777)
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)
