"""What a RUN step does to the image's VOLUME paths: nothing that lasts.

Docker's classic builder runs each RUN in a container made from the image so far, so every
path the image declares with VOLUME is an anonymous volume during the step: what the command
writes, changes or deletes there lands in the volume, which is dropped, and the committed
layer shows none of it ("Changing the volume from within the Dockerfile: if any build steps
change the data within the volume after it has been declared, those changes will be
discarded", Dockerfile reference). Only the mount point itself persists when it did not exist
yet: the runtime creates it (0755) in the container's writable layer.

lamina runs the step in the work layer itself and discards afterwards: :func:`mount_points`
resolves each volume path in-root (the runtime follows symlinks inside the rootfs to place a
mount) and makes the missing ones; :class:`Discard` then drops from the step's diff every entry
at or below those paths. Hard links between a file inside a volume and one outside cannot be
kept half; Docker's ``ln`` would have failed across the mount (EXDEV), so the build fails too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from msgspec import Struct

from lamina.archive.entry import Entry, EntryKind
from lamina.build.destination import open_dest_dir
from lamina.errors import BuildError
from lamina.runtime.rootfs import open_in_root

__all__ = ["Discard", "mount_points"]


class Discard(Struct, frozen=True):
    """The rootfs-relative paths (no leading ``/``) whose changes a step discards; ``made``
    are those of them the step created as mount points, whose own entry is kept."""

    paths: tuple[str, ...] = ()
    made: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.paths)

    def covers(self, path: str) -> bool:
        """True when ``path`` is at or below a discarded path (below only, for ``made``)."""
        return any(
            path.startswith(p + "/") or (path == p and p not in self.made) for p in self.paths
        )

    def keeps(self, entry: Entry) -> bool:
        """Whether ``entry`` of the step's diff stays in the layer. Raises BuildError for
        hard links across a volume's edge (see the module docstring)."""
        covered = self.covers(entry.path)
        if entry.kind is EntryKind.HARDLINK and covered != self.covers(entry.linkname):
            inside, outside = (
                (entry.path, entry.linkname) if covered else (entry.linkname, entry.path)
            )
            raise BuildError(
                f"/{outside} is a hard link to /{inside}, inside a VOLUME, whose changes a "
                "RUN step discards"
            )
        return not covered


def mount_points(rootfs: Path, volumes: Iterable[str]) -> Discard:
    """Resolve each VOLUME path in ``rootfs`` (symlinks in-root), creating missing ones as
    the runtime would; the result says what the step's diff must leave out."""
    real_root = os.path.realpath(rootfs)
    paths: list[str] = []
    made: set[str] = set()
    for volume in volumes:
        existed = True
        try:
            fd = open_in_root(rootfs, volume, flags=os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            existed = False
            fd = open_dest_dir(rootfs, volume, owner=None)
        except NotADirectoryError:
            raise BuildError(
                f"VOLUME {volume}: a RUN step cannot mount a volume there, it is not a directory"
            ) from None
        try:
            where = os.readlink(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        rel = os.path.relpath(where, real_root)
        if rel == "." or rel.startswith("../"):
            continue  # the rootfs itself (VOLUME /): nothing Docker would discard either
        paths.append(rel)
        if not existed:
            made.add(rel)
    return Discard(paths=tuple(paths), made=frozenset(made))
