"""``lamina waste``: bytes an image ships that nobody can see, with the right formula.

Every regular file a layer tar carries costs its size. A copy is *kept* when the final image
shows it (at its own path, or through a hardlink of the same layer that is still visible); every
other copy is reclaimable — it was deleted (whiteout / opaque dir / dir replaced) or overwritten
by a later layer, and an overwrite with identical content is flagged as such (``chown -R`` and
"COPY it again" layers). So per path::

    reclaimable = Σ sizes of every copy − size of the copy kept (0 when deleted)

which is dive's ``cumulative − min`` done right: dive counts every copy as wasted, the one it
keeps included (dive#684), and guesses which copy survives from the smallest size. Hardlinks
carry no content in a tar and so count once. ``efficiency = kept bytes / all bytes``.

Separately, ``duplicate_bytes`` counts identical content at several paths of the final image
(not hardlinked): not reclaimable by reordering layers, but by deduplicating.
"""

from __future__ import annotations

from collections import defaultdict

from msgspec import Struct

from lamina.archive.entry import EntryKind
from lamina.forensics.replay import Action, all_events
from lamina.forensics.stack import Stack


class Copy(Struct, frozen=True, kw_only=True):
    layer: int
    size: int
    fate: str  # "kept", "deleted", "overwritten", "identical" (overwritten by the same bytes)
    by_layer: int | None  # the layer that deleted or overwrote it
    by: str  # that layer's instruction


class PathWaste(Struct, frozen=True, kw_only=True):
    path: str
    copies: tuple[Copy, ...]
    total: int
    kept: int
    reclaimable: int

    def json(self) -> dict[str, object]:
        return {
            "Path": "/" + self.path,
            "Total": self.total,
            "Kept": self.kept,
            "Reclaimable": self.reclaimable,
            "Copies": [
                {
                    "Layer": c.layer,
                    "Size": c.size,
                    "Fate": c.fate,
                    "ByLayer": c.by_layer,
                    "By": c.by,
                }
                for c in self.copies
            ],
        }


class WasteResult(Struct, frozen=True, kw_only=True):
    total_bytes: int  # every regular file of every layer
    kept_bytes: int
    reclaimable_bytes: int
    deleted_bytes: int
    overwritten_bytes: int  # identical_bytes included
    identical_bytes: int
    duplicate_bytes: int
    efficiency: float
    paths: tuple[PathWaste, ...]  # reclaimable > 0, largest first
    per_layer: tuple[int, ...]  # reclaimable bytes each layer caused (by deleting/overwriting)

    def json(self) -> dict[str, object]:
        return {
            "TotalBytes": self.total_bytes,
            "KeptBytes": self.kept_bytes,
            "ReclaimableBytes": self.reclaimable_bytes,
            "DeletedBytes": self.deleted_bytes,
            "OverwrittenBytes": self.overwritten_bytes,
            "IdenticalBytes": self.identical_bytes,
            "DuplicateBytes": self.duplicate_bytes,
            "Efficiency": round(self.efficiency, 6),
            "PerLayer": list(self.per_layer),
            "Paths": [p.json() for p in self.paths],
        }


def waste(stack: Stack) -> WasteResult:
    per_layer_events, view = all_events(stack)
    # (layer, path) -> how that copy ended, from the event that replaced or removed it.
    ended: dict[tuple[int, str], tuple[str, int]] = {}
    for events in per_layer_events:
        for ev in events:
            b = ev.before
            if b is None or b.entry.kind is not EntryKind.FILE:
                continue
            if ev.action in (Action.DELETED, Action.HIDDEN):
                fate = "deleted"
            elif ev.after is not None and ev.after.sha256 == b.row.sha256:
                fate = "identical"
            else:
                fate = "overwritten"
            ended[(b.layer, ev.path)] = (fate, ev.layer)
    # A copy whose own path went but whose hardlink (same layer) is still visible is kept.
    aliased = {
        (loc.layer, loc.entry.linkname)
        for loc in view.items.values()
        if loc.entry.kind is EntryKind.HARDLINK
    }
    copies: dict[str, list[Copy]] = defaultdict(list)
    caused = [0] * len(stack.layers)
    totals = {"deleted": 0, "overwritten": 0, "identical": 0}
    total = kept_total = 0
    for layer in stack.layers:
        for ie in layer.rows:
            e = ie.entry
            if e.kind is not EntryKind.FILE:
                continue
            total += e.size
            end = ended.get((layer.index, e.path))
            if end is None or (layer.index, e.path) in aliased:
                kept_total += e.size
                copies[e.path].append(
                    Copy(layer=layer.index, size=e.size, fate="kept", by_layer=None, by="")
                )
                continue
            fate, by = end
            totals[fate] += e.size
            caused[by] += e.size
            copies[e.path].append(
                Copy(layer=layer.index, size=e.size, fate=fate, by_layer=by, by=stack.step(by))
            )
    paths: list[PathWaste] = []
    for path, cs in copies.items():
        kept = sum(c.size for c in cs if c.fate == "kept")
        all_ = sum(c.size for c in cs)
        if all_ > kept:
            paths.append(
                PathWaste(
                    path=path, copies=tuple(cs), total=all_, kept=kept, reclaimable=all_ - kept
                )
            )
    paths.sort(key=lambda p: (-p.reclaimable, p.path))
    by_sha: dict[str, list[int]] = defaultdict(list)
    for loc in view.items.values():
        if loc.entry.kind is EntryKind.FILE and loc.row.sha256 and loc.entry.size:
            by_sha[loc.row.sha256].append(loc.entry.size)
    duplicate = sum(sum(sizes) - sizes[0] for sizes in by_sha.values() if len(sizes) > 1)
    reclaimable = total - kept_total
    return WasteResult(
        total_bytes=total,
        kept_bytes=kept_total,
        reclaimable_bytes=reclaimable,
        deleted_bytes=totals["deleted"],
        overwritten_bytes=totals["overwritten"] + totals["identical"],
        identical_bytes=totals["identical"],
        duplicate_bytes=duplicate,
        efficiency=kept_total / total if total else 1.0,
        paths=tuple(paths),
        per_layer=tuple(caused),
    )
