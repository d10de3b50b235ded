"""Replay a layer stack bottom up and say what each layer did to each path.

The merged view follows OCI image-spec ``layer.md`` exactly as the store's ``index.merge``
does: a layer's whiteouts, opaque markers and non-dir entries act on the layers below it first,
then its own entries are laid on top. Replaying it step by step yields one :class:`Event` per
path a layer touched, which every forensic command reads: ``layers`` counts them, ``trace``
filters them by path, ``secrets`` finds hidden files in them, ``waste`` prices them.

A directory listed again with the same attributes (every ``COPY`` into ``/etc`` lists
``etc/``) is not an event; a file written again with identical content and attributes is
(:attr:`Action.READDED`, the ``chown -R`` waste dive#684 is about).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence

from msgspec import Struct, field

from lamina.archive.entry import Entry, EntryKind, IndexEntry
from lamina.forensics.stack import Stack


class Action(enum.Enum):
    ADDED = "added"
    MODIFIED = "modified"  # content, size, link target or type changed
    METADATA = "metadata"  # same content; mode, owner or xattrs changed (chmod/chown)
    READDED = "re-added"  # written again, identical in content and attributes
    DELETED = "deleted"  # removed by a whiteout (of the path or of a parent dir)
    HIDDEN = "hidden"  # removed by an opaque dir, or by a non-dir replacing a parent dir


# One letter per action, as ``tree`` and the report print them (docker diff's A/C/D, widened).
MARKERS = {
    Action.ADDED: "A",
    Action.MODIFIED: "M",
    Action.METADATA: "C",
    Action.READDED: "R",
    Action.DELETED: "D",
    Action.HIDDEN: "H",
}


class Located(Struct, frozen=True, kw_only=True):
    """An index row together with the layer it came from."""

    layer: int
    row: IndexEntry

    @property
    def entry(self) -> Entry:
        return self.row.entry


class Event(Struct, frozen=True, kw_only=True):
    layer: int
    path: str
    action: Action
    before: Located | None = None  # what was visible below (None for ADDED)
    after: IndexEntry | None = None  # this layer's row (None for DELETED/HIDDEN)
    cause: str = ""  # DELETED/HIDDEN: which marker did it ("whiteout of a/b", ...)
    changed: tuple[str, ...] = ()  # MODIFIED/METADATA: which fields differ

    @property
    def is_dir(self) -> bool:
        row = self.after if self.after is not None else (self.before and self.before.row)
        return row is not None and row.entry.kind is EntryKind.DIR


_CONTENT_FIELDS = frozenset({"kind", "content", "size", "link", "device"})


def changed_fields(old: IndexEntry, new: IndexEntry) -> tuple[str, ...]:
    """Which of kind, content, size, link, device, mode, uid, gid, xattrs differ (mtimes are
    not compared: a rebuilt layer changes them all and says nothing about content)."""
    a, b = old.entry, new.entry
    out: list[str] = []
    if a.kind is not b.kind:
        out.append("kind")
    if a.kind is not EntryKind.DIR and b.kind is not EntryKind.DIR and old.sha256 != new.sha256:
        out.append("content")
    if a.size != b.size:
        out.append("size")
    if a.linkname != b.linkname:
        out.append("link")
    if (a.devmajor, a.devminor) != (b.devmajor, b.devminor):
        out.append("device")
    if a.mode != b.mode:
        out.append("mode")
    if a.uid != b.uid:
        out.append("uid")
    if a.gid != b.gid:
        out.append("gid")
    if dict(a.xattrs) != dict(b.xattrs):
        out.append("xattrs")
    return tuple(out)


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


class View(Struct):
    """The merged view while replaying: path → where its visible row came from.

    ``kids`` links every path to its parent, including parent dirs no layer has an entry for
    (a tar needs none: extraction makes them). Without them a whiteout or opaque marker of
    such a dir hid nothing here, and tree, trace and secrets called its files present while
    the rootfs had none of them."""

    items: dict[str, Located] = field(default_factory=dict)
    kids: dict[str, set[str]] = field(default_factory=dict)

    def put(self, path: str, loc: Located) -> None:
        child = path
        while child:
            siblings = self.kids.setdefault(_parent(child), set())
            if child in siblings:
                break  # its ancestors are linked already
            siblings.add(child)
            child = _parent(child)
        self.items[path] = loc

    def drop(self, path: str) -> Located | None:
        loc = self.items.pop(path, None)
        siblings = self.kids.get(_parent(path))
        if siblings is not None:
            siblings.discard(path)
        return loc

    def is_dir(self, path: str) -> bool:
        """A dir in the view: an entry of kind DIR, or a parent of visible paths."""
        loc = self.items.get(path)
        return loc.entry.kind is EntryKind.DIR if loc is not None else bool(self.kids.get(path))

    def below(self, path: str) -> list[str]:
        """Every path under ``path`` (not itself), parents before children."""
        out: list[str] = []
        stack = [path]
        while stack:
            for child in sorted(self.kids.get(stack.pop(), ()), reverse=True):
                out.append(child)
                stack.append(child)
        return out

    def get(self, path: str) -> Located | None:
        return self.items.get(path)


def _removals(view: View, layer: int, rows: Sequence[IndexEntry]) -> list[Event]:
    events: list[Event] = []

    def remove(path: str, action: Action, cause: str) -> None:
        loc = view.drop(path)
        if loc is not None:
            events.append(Event(layer=layer, path=path, action=action, before=loc, cause=cause))

    for ie in rows:
        e = ie.entry
        if e.kind is EntryKind.WHITEOUT:
            if view.get(e.path) is None and not view.is_dir(e.path):
                continue
            cause = f"whiteout of /{e.path}"
            for p in [e.path, *view.below(e.path)]:
                remove(p, Action.DELETED, cause)
        elif e.kind is EntryKind.OPAQUE:
            for p in view.below(e.path):
                remove(p, Action.HIDDEN, f"opaque dir /{e.path}")
        elif e.kind is not EntryKind.DIR and view.is_dir(e.path):
            cause = f"/{e.path} replaced by a {e.kind.value}"
            for p in view.below(e.path):
                remove(p, Action.HIDDEN, cause)
    return events


def apply_layer(view: View, layer: int, rows: Sequence[IndexEntry]) -> list[Event]:
    """Lay one layer's rows on ``view`` and return what it did, in tar order after removals."""
    events = _removals(view, layer, rows)
    for ie in rows:
        e = ie.entry
        if e.kind in (EntryKind.WHITEOUT, EntryKind.OPAQUE):
            continue
        before = view.get(e.path)
        view.put(e.path, Located(layer=layer, row=ie))
        if before is None:
            events.append(Event(layer=layer, path=e.path, action=Action.ADDED, after=ie))
            continue
        changed = changed_fields(before.row, ie)
        if not changed:
            if e.kind is EntryKind.DIR:
                continue
            action = Action.READDED
        elif _CONTENT_FIELDS.intersection(changed):
            action = Action.MODIFIED
        else:
            action = Action.METADATA
        events.append(
            Event(layer=layer, path=e.path, action=action, before=before, after=ie, changed=changed)
        )
    return events


def replay(stack: Stack, *, upto: int | None = None) -> Iterator[tuple[int, list[Event], View]]:
    """(layer index, its events, the view after it) for each layer up to ``upto`` inclusive.
    The view is shared and changes as the iteration goes on."""
    view = View()
    last = len(stack.layers) - 1 if upto is None else upto
    for layer in stack.layers[: last + 1]:
        events = apply_layer(view, layer.index, layer.rows)
        yield layer.index, events, view


def view_at(stack: Stack, layer: int | None = None) -> View:
    """The merged view after ``layer`` (the whole image when None)."""
    view = View()
    for _, _, v in replay(stack, upto=layer):
        view = v
    return view


def all_events(stack: Stack) -> tuple[list[list[Event]], View]:
    """Every layer's events and the final view."""
    per_layer: list[list[Event]] = []
    view = View()
    for _, events, v in replay(stack):
        per_layer.append(events)
        view = v
    return per_layer, view
