"""Every layer's story (``lamina layers``) and one path's story (``lamina trace``)."""

from __future__ import annotations

from msgspec import Struct

from lamina.archive.entry import EntryKind
from lamina.digest import Digest
from lamina.errors import NotFoundError, UsageError
from lamina.forensics.finding import cat_command
from lamina.forensics.replay import MARKERS, Action, Event, all_events
from lamina.forensics.stack import Stack


def clean_path(path: str) -> str:
    """A user's path (``/etc/passwd``, ``./etc/passwd``, ``etc/passwd/``) as the index spells
    it; ``""`` is the root."""
    parts = [p for p in path.split("/") if p and p != "."]
    if ".." in parts:
        raise UsageError(f"{path!r}: '..' is not allowed in an image path")
    return "/".join(parts)


class LayerStory(Struct, frozen=True, kw_only=True):
    index: int
    diff_id: Digest
    chain_id: Digest
    digest: Digest
    media_type: str
    size: int  # regular-file bytes in the layer (Docker's Size)
    blob_size: int
    entries: int
    created_by: str
    added: int  # non-directory paths new in this layer
    modified: int  # content, type or link changed
    metadata: int  # chmod/chown/xattr only
    readded: int  # identical copies of what was already there
    deleted: int  # non-directory paths removed by whiteouts
    hidden: int  # non-directory paths hidden by opaque dirs (or a dir replaced by a file)
    removed_bytes: int  # regular-file bytes of lower layers this layer deleted or hid


def _count(events: list[Event], action: Action) -> int:
    return sum(1 for e in events if e.action is action and not e.is_dir)


def layer_stories(stack: Stack) -> list[LayerStory]:
    per_layer, _ = all_events(stack)
    out: list[LayerStory] = []
    for layer, events in zip(stack.layers, per_layer, strict=True):
        removed = sum(
            e.before.entry.size
            for e in events
            if e.action in (Action.DELETED, Action.HIDDEN)
            and e.before is not None
            and e.before.entry.kind is EntryKind.FILE
        )
        out.append(
            LayerStory(
                index=layer.index,
                diff_id=layer.diff_id,
                chain_id=layer.chain_id,
                digest=layer.digest,
                media_type=layer.media_type,
                size=layer.content_size,
                blob_size=layer.blob_size,
                entries=len(layer.rows),
                created_by=layer.created_by,
                added=_count(events, Action.ADDED),
                modified=_count(events, Action.MODIFIED),
                metadata=_count(events, Action.METADATA),
                readded=_count(events, Action.READDED),
                deleted=_count(events, Action.DELETED),
                hidden=_count(events, Action.HIDDEN),
                removed_bytes=removed,
            )
        )
    return out


def layer_paths(stack: Stack) -> list[list[tuple[str, str]]]:
    """Per layer, (marker, path) of every non-directory path it changed, in path order."""
    per_layer, _ = all_events(stack)
    return [
        sorted(((MARKERS[e.action], e.path) for e in events if not e.is_dir), key=lambda x: x[1])
        for events in per_layer
    ]


class TraceStep(Struct, frozen=True, kw_only=True):
    """One thing a layer did to the traced path."""

    layer: int
    action: Action
    created_by: str
    kind: str  # the entry's kind after (or, for deletions, before) the step
    mode: int
    uid: int
    gid: int
    size: int
    sha256: str | None
    linkname: str
    cause: str  # for deletions: the whiteout/opaque marker that did it
    changed: tuple[str, ...]
    recover: str  # how to read this version, or the one it removed


class Trace(Struct, frozen=True, kw_only=True):
    path: str
    steps: tuple[TraceStep, ...]
    present: bool  # visible in the final image


def trace(stack: Stack, path: str) -> Trace:
    """Every layer that created, changed, chmod/chown-ed, hid or deleted ``path``."""
    want = clean_path(path)
    if not want:
        raise UsageError("trace needs a path below /")
    per_layer, view = all_events(stack)
    steps: list[TraceStep] = []
    for events in per_layer:
        for ev in events:
            if ev.path != want:
                continue
            shown = ev.after if ev.after is not None else ev.before.row if ev.before else None
            assert shown is not None
            e = shown.entry
            seen_in = ev.layer if ev.after is not None else (ev.layer - 1)
            steps.append(
                TraceStep(
                    layer=ev.layer,
                    action=ev.action,
                    created_by=stack.step(ev.layer),
                    kind=e.kind.value,
                    mode=e.mode,
                    uid=e.uid,
                    gid=e.gid,
                    size=e.size,
                    sha256=shown.sha256,
                    linkname=e.linkname,
                    cause=ev.cause,
                    changed=ev.changed,
                    recover=(
                        cat_command(stack.name, want, seen_in)
                        if e.kind in (EntryKind.FILE, EntryKind.HARDLINK)
                        else ""
                    ),
                )
            )
    if not steps:
        err = NotFoundError(f"/{want} is in no layer of {stack.name}")
        err.hint = f"lamina tree {stack.name} lists what is there"
        raise err
    return Trace(path=want, steps=tuple(steps), present=view.get(want) is not None)
