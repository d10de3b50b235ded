"""The input every analysis works on: a layer stack with its file-index rows and a way to read
each layer's tar.

Two sources make one: a stored image (rows from the store's file index, reads from its verified
blobs) and an image in a transport (rows built here by streaming each layer once through
lamina's tar reader). The analyses never know which they got.

Each layer is paired with its Dockerfile step: the ``history`` entries that are not
``empty_layer``, in order (``ENV``/``ARG``/``LABEL`` steps leave no layer, so a plain index
into ``history`` would name the wrong instruction after the first of them).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Final, Protocol

from msgspec import Struct

from lamina.archive.entry import Entry, EntryKind, IndexEntry
from lamina.archive.tarstream import Limits, TarStream, limits_from_env, normalise_name
from lamina.digest import Digest, chain_ids
from lamina.errors import UnsafeArchivePathError
from lamina.image.model import Image, Layer
from lamina.oci.config import History, ImageConfig

try:  # optional: a faster tar reader for content scans (DESIGN §9)
    import libarchive as _libarchive
except ImportError:  # pragma: no cover - the fallback is stdlib tarfile
    _libarchive = None

_CHUNK: Final = 1 << 20
_EMPTY_SHA256: Final = hashlib.sha256().hexdigest()


class StackLayer(Struct, frozen=True, kw_only=True):
    """One layer of the stack: identity, its step, its own index rows, a readable view."""

    index: int
    diff_id: Digest
    chain_id: Digest
    digest: Digest  # the blob as stored or sent
    media_type: str
    blob_size: int
    content_size: int  # Docker's layer Size: file bytes + symlink targets (as apply counts)
    created_by: str
    history: History | None  # the non-empty history entry of this layer, when there is one
    rows: tuple[IndexEntry, ...]
    view: Layer

    @property
    def short(self) -> str:
        return self.diff_id.removeprefix("sha256:")[:12]


class Stack(Struct, frozen=True, kw_only=True):
    """An image's layers, base first, with their index rows."""

    name: str  # what the user named (an image reference, an id or a transport spec)
    source: str  # "store" or the transport's name
    image_id: Digest
    config: ImageConfig
    layers: tuple[StackLayer, ...]

    def step(self, layer: int | None) -> str:
        """The instruction of ``layer`` (empty for a config-only finding)."""
        if layer is None or not 0 <= layer < len(self.layers):
            return ""
        return self.layers[layer].created_by


class ContentVisitor(Protocol):
    """Something that wants to see file contents while a layer is streamed (secret scanning)."""

    def wants(self, layer: int, entry: Entry) -> bool:
        """True to be handed this FILE member's content (the first ``max_bytes`` of it)."""
        ...

    def visit(self, layer: int, entry: Entry, data: bytes) -> None: ...

    @property
    def max_bytes(self) -> int: ...


def layer_steps(config: ImageConfig, count: int) -> list[History | None]:
    """The history entry of each of ``count`` layers (None where the history runs short)."""
    steps: list[History | None] = [h for h in config.history if not h.empty_layer]
    return (steps + [None] * count)[:count]


def _limits() -> Limits:
    return limits_from_env()


def stream_layer(
    tar: IO[bytes], *, layer: int, visitor: ContentVisitor | None = None
) -> tuple[list[IndexEntry], int]:
    """Index rows of one uncompressed layer tar (content hashed as the store's ingest does),
    and its content size, in one pass; ``visitor`` sees the contents it asks for. The stream is
    read to EOF so a verifying reader checks its digest."""
    ts = TarStream(tar, limits=_limits())
    rows: list[IndexEntry] = []
    shas: dict[str, str] = {}
    content = 0
    for member in ts:
        e = member.entry
        sha: str | None = None
        if e.kind is EntryKind.FILE:
            h = hashlib.sha256()
            want = visitor is not None and visitor.wants(layer, e)
            head = bytearray()
            limit = visitor.max_bytes if visitor is not None else 0
            while chunk := ts.read(_CHUNK):
                h.update(chunk)
                if want and len(head) < limit:
                    head += chunk[: limit - len(head)]
            sha = h.hexdigest() if e.size else _EMPTY_SHA256
            shas[e.path] = sha
            content += e.size
            if want and visitor is not None:
                visitor.visit(layer, e, bytes(head))
        elif e.kind is EntryKind.HARDLINK:
            sha = shas.get(e.linkname)
            if sha is not None:
                shas[e.path] = sha
        elif e.kind is EntryKind.SYMLINK:
            # As apply counts it for stored layers (Docker's directory.Size): the target length.
            content += len(os.fsencode(e.linkname))
        rows.append(IndexEntry(entry=e, sha256=sha, position=member.position))
    while tar.read(_CHUNK):
        pass
    return rows, content


def scan_contents(stack: Stack, visitor: ContentVisitor) -> None:
    """Stream every layer of ``stack`` once, handing ``visitor`` the contents it wants.

    The layer is read through its verifying reader to EOF, so a tampered blob raises instead of
    feeding the visitor made-up content. libarchive parses the tar when it is installed (about
    3x stdlib tarfile here, which is most of the cost of reading); the rows say what each member
    is, so only names are taken from it."""
    for layer in stack.layers:
        wanted = {
            ie.entry.path: ie.entry
            for ie in layer.rows
            if ie.entry.kind is EntryKind.FILE and visitor.wants(layer.index, ie.entry)
        }
        if not wanted:
            continue
        if _libarchive is not None:
            _scan_libarchive(layer, wanted, visitor)
            continue
        with layer.view.open_uncompressed() as tar:
            for member, data in iter_members(tar, set(wanted), limit=visitor.max_bytes):
                visitor.visit(layer.index, member, data)


def _scan_libarchive(layer: StackLayer, wanted: dict[str, Entry], visitor: ContentVisitor) -> None:
    assert _libarchive is not None
    limit = visitor.max_bytes
    # lamina inflates (isal, verified diff_id); libarchive only parses tar: it never picks a
    # decompressor (nor execs one), and isal inflates ~2x faster than its zlib here.
    with layer.view.open_uncompressed() as tar:
        with _libarchive.stream_reader(
            tar, format_name="tar", filter_name="none", block_size=_CHUNK
        ) as archive:
            for member in archive:
                if not member.isreg:
                    continue
                try:
                    path = normalise_name(member.pathname, member=member.pathname)
                except UnsafeArchivePathError:
                    continue
                entry = wanted.get(path)
                if entry is None:
                    continue
                head = bytearray()
                for block in member.get_blocks(_CHUNK):
                    if len(head) < limit:
                        head += memoryview(block).cast("B")[: limit - len(head)]
                visitor.visit(layer.index, entry, bytes(head))
        while tar.read(_CHUNK):  # to EOF: the digests are checked there
            pass


def iter_members(tar: IO[bytes], wanted: set[str], *, limit: int) -> Iterator[tuple[Entry, bytes]]:
    """(entry, first ``limit`` bytes of content) of the FILE members named in ``wanted``, in
    tar order; stops reading once every wanted member was seen."""
    left = set(wanted)
    ts = TarStream(tar, limits=_limits())
    for member in ts:
        e = member.entry
        if e.path not in left or e.kind is not EntryKind.FILE:
            continue
        left.discard(e.path)
        buf = bytearray()
        while len(buf) < limit and (chunk := ts.read(min(_CHUNK, limit - len(buf)))):
            buf += chunk
        yield e, bytes(buf)
        if not left:
            return


def from_image(
    image: Image,
    *,
    name: str,
    source: str,
    rows: Callable[[int, Layer], tuple[Sequence[IndexEntry], int]] | None = None,
    visitor: ContentVisitor | None = None,
) -> Stack:
    """A stack from an image view. ``rows(i, layer)`` supplies stored index rows and the content
    size; without it each layer is streamed once here (``visitor`` rides along)."""
    config = image.config
    views = list(image.layers())
    steps = layer_steps(config, len(views))
    chains = chain_ids([v.diff_id for v in views]) if views else []
    layers: list[StackLayer] = []
    for i, view in enumerate(views):
        if rows is not None:
            got, content = rows(i, view)
            layer_rows = tuple(got)
        else:
            with view.open_uncompressed() as tar:
                built, content = stream_layer(tar, layer=i, visitor=visitor)
            layer_rows = tuple(built)
        step = steps[i]
        layers.append(
            StackLayer(
                index=i,
                diff_id=view.diff_id,
                chain_id=chains[i],
                digest=view.digest,
                media_type=view.media_type,
                blob_size=view.size,
                content_size=content,
                created_by=(step.created_by or "") if step is not None else "",
                history=step,
                rows=layer_rows,
                view=view,
            )
        )
    return Stack(
        name=name, source=source, image_id=image.image_id, config=config, layers=tuple(layers)
    )
