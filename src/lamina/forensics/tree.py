"""``lamina tree`` (the merged tree, or one layer's changes, with markers) and ``lamina image
diff`` (two merged trees compared, or a layer against its parent).

Markers: ``A`` added, ``M`` modified (content, type or link), ``C`` chmod/chown/xattrs only,
``R`` re-added identical, ``D`` deleted by a whiteout, ``O`` a dir made opaque. A diff compares
kind, content sha256, size, link target, device, mode, owner and xattrs; mtimes are not compared
(every rebuild changes them) and a directory is changed only when its own attributes are.
"""

from __future__ import annotations

import difflib

from msgspec import Struct

from lamina.archive.entry import EntryKind, IndexEntry
from lamina.errors import NotFoundError, UsageError
from lamina.forensics import recover
from lamina.forensics.replay import MARKERS, View, changed_fields, replay, view_at
from lamina.forensics.stack import Stack
from lamina.forensics.story import clean_path

_TEXT_LIMIT = 1 << 20  # files larger than this get no --unified text diff


class Node(Struct, frozen=True, kw_only=True):
    path: str
    kind: str
    mode: int
    uid: int
    gid: int
    size: int
    linkname: str
    layer: int | None  # the layer the row came from (None for an implicit parent dir)
    marker: str  # see the module doc; "" for a parent shown only for structure
    detail: str = ""  # what a D/O node hid, what an M/C node changed

    def json(self) -> dict[str, object]:
        return {
            "Path": "/" + self.path,
            "Kind": self.kind,
            "Mode": f"{self.mode:04o}",
            "Uid": self.uid,
            "Gid": self.gid,
            "Size": self.size,
            "LinkName": self.linkname,
            "Layer": self.layer,
            "Marker": self.marker,
            "Detail": self.detail,
        }


class TreeResult(Struct, frozen=True, kw_only=True):
    root: str
    layer: int | None
    nodes: tuple[Node, ...]  # sorted by path, parents first


def _under(path: str, root: str) -> bool:
    return not root or path == root or path.startswith(root + "/")


def _node(path: str, row: IndexEntry, *, layer: int | None, marker: str, detail: str = "") -> Node:
    e = row.entry
    return Node(
        path=path,
        kind=e.kind.value,
        mode=e.mode,
        uid=e.uid,
        gid=e.gid,
        size=e.size,
        linkname=e.linkname,
        layer=layer,
        marker=marker,
        detail=detail,
    )


def _with_parents(nodes: dict[str, Node], root: str) -> tuple[Node, ...]:
    for path in list(nodes):
        head = path.rpartition("/")[0]
        while head and head != root and head not in nodes and _under(head, root):
            nodes[head] = Node(
                path=head,
                kind="dir",
                mode=0,
                uid=0,
                gid=0,
                size=0,
                linkname="",
                layer=None,
                marker="",
            )
            head = head.rpartition("/")[0]
    return tuple(nodes[p] for p in sorted(nodes, key=lambda p: p.split("/")))


def tree(stack: Stack, *, path: str = "", layer: int | None = None) -> TreeResult:
    root = clean_path(path)
    if layer is not None and not 0 <= layer < len(stack.layers):
        raise UsageError(f"--layer {layer}: {stack.name} has layers 0..{len(stack.layers) - 1}")
    nodes: dict[str, Node] = {}
    if layer is None:
        # Each path's last change: its marker and the layer that made it. A dir a later layer
        # only re-emits (a parent of what it changed) keeps both: that layer did not change it.
        marks: dict[str, tuple[str, int]] = {}
        view = View()
        for idx, events, v in replay(stack):
            view = v
            for ev in events:
                if ev.after is not None:
                    marks[ev.path] = (MARKERS[ev.action], idx)
        for p, loc in view.items.items():
            if _under(p, root):
                marker, at = marks.get(p, ("A", loc.layer))
                nodes[p] = _node(p, loc.row, layer=at, marker=marker)
    else:
        for idx, events, _ in replay(stack, upto=layer):
            if idx != layer:
                continue
            own = {
                ie.entry.path: ie
                for ie in stack.layers[idx].rows
                if ie.entry.kind not in (EntryKind.OPAQUE, EntryKind.WHITEOUT)
            }
            gone = {
                ie.entry.path
                for ie in stack.layers[idx].rows
                if ie.entry.kind is EntryKind.WHITEOUT
            }
            for ev in events:
                if not _under(ev.path, root):
                    continue
                if ev.after is not None:
                    nodes[ev.path] = _node(
                        ev.path,
                        ev.after,
                        layer=idx,
                        marker=MARKERS[ev.action],
                        detail=",".join(ev.changed),
                    )
                elif ev.path in gone and ev.before is not None:  # the whiteout's own target
                    nodes[ev.path] = _node(
                        ev.path, ev.before.row, layer=ev.before.layer, marker="D", detail=ev.cause
                    )
            for ie in stack.layers[idx].rows:
                if ie.entry.kind is EntryKind.OPAQUE and _under(ie.entry.path, root):
                    hidden = sum(1 for ev in events if ev.cause == f"opaque dir /{ie.entry.path}")
                    nodes[ie.entry.path] = _node(
                        ie.entry.path,
                        own.get(ie.entry.path, ie),
                        layer=idx,
                        marker="O",
                        detail=f"hides {hidden} lower entries",
                    )
    if root and not nodes:
        raise NotFoundError(f"/{root} is not in {stack.name}")
    return TreeResult(root=root, layer=layer, nodes=_with_parents(nodes, root))


# -- diff ---------------------------------------------------------------------------------


class DiffEntry(Struct, frozen=True, kw_only=True):
    path: str
    change: str  # "A", "C" or "D" (docker diff's letters)
    kind: str
    changed: tuple[str, ...]  # for C: the fields that differ
    before: str  # a one-line summary of each side ("" where absent)
    after: str
    unified: str = ""  # text diff when asked for and both sides are text

    def json(self) -> dict[str, object]:
        return {
            "Path": "/" + self.path,
            "Kind": self.change,
            "Type": self.kind,
            "Changed": list(self.changed),
            "Before": self.before,
            "After": self.after,
            "Unified": self.unified,
        }


class DiffResult(Struct, frozen=True, kw_only=True):
    a: str
    b: str
    entries: tuple[DiffEntry, ...]


def summary(row: IndexEntry | None) -> str:
    if row is None:
        return ""
    e = row.entry
    head = f"{e.kind.value} {e.mode:04o} {e.uid}:{e.gid}"
    if e.kind in (EntryKind.FILE, EntryKind.HARDLINK):
        return f"{head} {e.size}B sha256:{(row.sha256 or '?')[:12]}"
    if e.kind is EntryKind.SYMLINK:
        return f"{head} -> {e.linkname}"
    return head


def _compare(
    a: tuple[Stack, View], b: tuple[Stack, View], *, unified: bool, label_a: str, label_b: str
) -> tuple[DiffEntry, ...]:
    (sa, va), (sb, vb) = a, b
    out: list[DiffEntry] = []
    texts: list[tuple[int, str, str]] = []  # (index in out, path in a, path in b)
    for path in sorted(va.items.keys() | vb.items.keys(), key=lambda p: p.split("/")):
        la, lb = va.get(path), vb.get(path)
        if la is None and lb is not None:
            out.append(
                DiffEntry(
                    path=path,
                    change="A",
                    kind=lb.entry.kind.value,
                    changed=(),
                    before="",
                    after=summary(lb.row),
                )
            )
        elif lb is None and la is not None:
            out.append(
                DiffEntry(
                    path=path,
                    change="D",
                    kind=la.entry.kind.value,
                    changed=(),
                    before=summary(la.row),
                    after="",
                )
            )
        elif la is not None and lb is not None:
            changed = changed_fields(la.row, lb.row)
            if not changed:
                continue
            out.append(
                DiffEntry(
                    path=path,
                    change="C",
                    kind=lb.entry.kind.value,
                    changed=changed,
                    before=summary(la.row),
                    after=summary(lb.row),
                )
            )
            if unified and "content" in changed and _both_small_files(la.row, lb.row):
                texts.append((len(out) - 1, path, path))
    if texts:
        old = recover.read_paths(sa, va, [p for _, p, _ in texts], limit=_TEXT_LIMIT)
        new = recover.read_paths(sb, vb, [p for _, _, p in texts], limit=_TEXT_LIMIT)
        for i, pa, pb in texts:
            text = _unified(old.get(pa), new.get(pb), f"{label_a}/{pa}", f"{label_b}/{pb}")
            if text:
                e = out[i]
                out[i] = DiffEntry(
                    path=e.path,
                    change=e.change,
                    kind=e.kind,
                    changed=e.changed,
                    before=e.before,
                    after=e.after,
                    unified=text,
                )
    return tuple(out)


def _both_small_files(a: IndexEntry, b: IndexEntry) -> bool:
    kinds = (EntryKind.FILE, EntryKind.HARDLINK)
    return (
        a.entry.kind in kinds
        and b.entry.kind in kinds
        and a.entry.size <= _TEXT_LIMIT
        and b.entry.size <= _TEXT_LIMIT
    )


def _unified(old: bytes | None, new: bytes | None, name_a: str, name_b: str) -> str:
    if old is None or new is None or b"\0" in old or b"\0" in new:
        return ""
    try:
        ta, tb = old.decode(), new.decode()
    except UnicodeDecodeError:
        return ""
    lines = difflib.unified_diff(
        ta.splitlines(keepends=True), tb.splitlines(keepends=True), name_a, name_b
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def diff_images(a: Stack, b: Stack, *, unified: bool) -> DiffResult:
    entries = _compare((a, view_at(a)), (b, view_at(b)), unified=unified, label_a="a", label_b="b")
    return DiffResult(a=a.name, b=b.name, entries=entries)


def diff_layer(stack: Stack, *, layer: int, unified: bool) -> DiffResult:
    if not 0 <= layer < len(stack.layers):
        raise UsageError(f"--layer {layer}: {stack.name} has layers 0..{len(stack.layers) - 1}")
    below = view_at(stack, layer - 1) if layer > 0 else View()
    entries = _compare(
        (stack, below), (stack, view_at(stack, layer)), unified=unified, label_a="a", label_b="b"
    )
    return DiffResult(
        a=f"{stack.name} layer {layer - 1}", b=f"{stack.name} layer {layer}", entries=entries
    )
