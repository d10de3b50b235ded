"""COPY and ADD as a planned step: sources picked and hashed first (the cache key needs the
hash), copied into the work layer only on a cache miss.
"""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path

from msgspec import Struct

from lamina.build.addsource import extract_archive, is_archive, refuse_url
from lamina.build.context import Owner, Selected, Source, SourceRoot, select, sources_hash
from lamina.build.destination import copy_selected, open_dest_dir
from lamina.build.expand import expand_heredoc, expand_word
from lamina.build.instructions import Add, Copy
from lamina.digest import Digest
from lamina.errors import BuildError
from lamina.runtime.rootfs import open_in_root
from lamina.runtime.users import resolve_user

__all__ = ["CopyPlan", "plan_copy"]


class CopyPlan(Struct, frozen=True, kw_only=True):
    keyword: str
    selections: tuple[Selected, ...]
    dest: str  # absolute, trailing "/" kept
    chown: str | None
    chmod: int | None
    keep_owner: bool  # COPY --from without --chown keeps the source's owners
    unpack: bool  # ADD: extract local archives
    source_hash: str

    def created_by_text(self, written_dest: str) -> str:
        # No space after the chown value: docker 20.10 writes "--chown=1:1file:<hash>".
        chown = f"--chown={self.chown}" if self.chown else ""
        return f"{self.keyword} {chown}{self.source_hash} in {written_dest} "

    def perform(self, rootfs: Path) -> None:
        owner = None if self.keep_owner else _owner(self.chown, rootfs)
        for sel in self.selections:
            plain = [s for s in sel.sources if not (self.unpack and _archive(sel.root, s))]
            archives = [s for s in sel.sources if s not in plain]
            if plain:
                part = Selected(root=sel.root, sources=tuple(plain), wildcard=sel.wildcard)
                copy_selected(part, rootfs=rootfs, dest=self.dest, owner=owner, chmod=self.chmod)
            for src in archives:
                # docker 20.10 untars with no --chown at all: the archive's owners, and the
                # directories it creates for the destination are root's.
                dest_fd = open_dest_dir(rootfs, self.dest, owner=None)
                fd = _open_source(sel.root, src.real)
                try:
                    extract_archive(fd, dest_fd, name=src.rel)
                finally:
                    os.close(fd)
                    os.close(dest_fd)


def _open_source(root: SourceRoot, rel: str) -> int:
    return open_in_root(root.path, rel, flags=os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)


def _archive(root: SourceRoot, src: Source) -> bool:
    if not stat.S_ISREG(src.st.st_mode):
        return False
    fd = _open_source(root, src.real)
    try:
        return is_archive(fd)
    finally:
        os.close(fd)


def _owner(chown: str | None, rootfs: Path) -> Owner:
    """``--chown=user[:group]`` resolved in the image; as the classic builder, a lone user is
    also looked up as the group (``--chown=1`` is 1:1, ``--chown=bin`` is bin:bin)."""
    if not chown:
        return Owner(uid=0, gid=0)
    user, sep, group = chown.partition(":")
    if ":" in group:
        raise BuildError(f"invalid --chown={chown}: expected user[:group]")
    resolved = resolve_user(f"{user}:{group if sep else user}", rootfs=rootfs)
    return Owner(uid=resolved.uid, gid=resolved.gid)


def _chmod(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = int(text, 8)
    except ValueError:
        raise BuildError(f"invalid --chmod={text}: lamina accepts octal modes only") from None
    if not 0 <= value <= 0o7777:
        raise BuildError(f"invalid --chmod={text}: out of range")
    return value


def plan_copy(
    ins: Copy | Add,
    *,
    env: dict[str, str],
    escape: str,
    workdir: str,
    root: SourceRoot,
    inline_dir: Path,
    from_given: bool,
) -> tuple[CopyPlan, str]:
    """Select and hash the sources; returns the plan and the destination as written (for
    ``created_by``). ``root`` is the context or the ``--from`` rootfs; heredoc sources are
    written into ``inline_dir`` first."""
    line = ins.line

    def word(text: str) -> str:
        return expand_word(text, env=env, escape=escape, line=line)

    sources = [word(s) for s in ins.sources]
    for s in sources:
        if isinstance(ins, Add):
            refuse_url(s, keyword="ADD")
        elif "://" in s:
            raise BuildError(f"COPY {s}: source can't be a URL for COPY")
    dest_written = word(ins.dest)
    joined = dest_written if dest_written.startswith("/") else _join(workdir, dest_written)
    dest = posixpath.normpath(joined)
    if dest_written.endswith("/") or dest_written.rsplit("/", 1)[-1] in (".", ".."):
        dest = dest.rstrip("/") + "/"
    chown = word(ins.chown) if ins.chown else None
    chmod = _chmod(ins.chmod)
    selections: list[Selected] = []
    if sources:
        selections.append(select(root, sources))
    if ins.inline:
        inline_dir.mkdir(mode=0o700, exist_ok=True)
        for doc in ins.inline:
            body = expand_heredoc(doc.content, env=env, escape=escape, line=line)
            (inline_dir / doc.name).write_text(body if doc.expand else doc.content)
            os.chmod(inline_dir / doc.name, 0o644)
        inline = SourceRoot(path=inline_dir, label="heredoc sources")
        selections.append(select(inline, [doc.name for doc in ins.inline]))
    count = sum(len(s.sources) for s in selections)
    if count > 1 and not dest.endswith("/"):
        raise BuildError(
            f"line {line}: when using {ins.keyword} with more than one source file, the "
            "destination must be a directory and end with a /"
        )
    keep_owner = from_given and chown is None
    hash_owner = None if keep_owner else Owner(uid=0, gid=0)
    hashes = [sources_hash(s, owner=hash_owner, chmod=chmod) for s in selections]
    joined = Digest.of(",".join(hashes).encode()).hex
    source_hash = hashes[0] if len(hashes) == 1 else "multi:" + joined
    unpack = isinstance(ins, Add) and ins.unpack is not False
    plan = CopyPlan(
        keyword=ins.keyword,
        selections=tuple(selections),
        dest=dest,
        chown=chown,
        chmod=chmod,
        keep_owner=keep_owner,
        unpack=unpack,
        source_hash=source_hash,
    )
    return plan, dest_written


def _join(workdir: str, rel: str) -> str:
    base = workdir or "/"
    return base.rstrip("/") + "/" + rel
