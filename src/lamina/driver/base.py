"""The storage-driver protocol: puts layers on disk and mounts a chain of them as one rootfs.

A driver knows layers only by their ``layer_id`` (the random cache-id the store assigns) and the
``parent`` layer_id given at create time; it never sees digests, images or the database.
Drivers: ``overlay`` (user-facing name ``overlay2``) and ``vfs``; chosen in ``driver.select``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol


class ChangeKind(enum.Enum):
    MODIFIED = "C"
    ADDED = "A"
    DELETED = "D"


@dataclass(frozen=True, slots=True)
class Change:
    path: str  # absolute, as docker diff prints it: "/etc/passwd"
    kind: ChangeKind


class Driver(Protocol):
    """Contract every driver meets (checked by tests/conformance/test_drivers.py)."""

    name: str  # user-facing: "overlay2" or "vfs"
    home: Path  # <root>/overlay or <root>/vfs

    def create(self, layer_id: str, *, parent: str | None, writable: bool = False) -> Path:
        """Make an empty layer on top of ``parent``; return the dir a layer tar is applied into.

        Raises ConflictError if ``layer_id`` exists. ``writable`` layers (containers) get a work
        dir and mount read-write."""
        ...

    def apply_dir(self, layer_id: str) -> Path:
        """The dir layer content is written into (overlay: ``diff/``; vfs: the full tree)."""
        ...

    def remove(self, layer_id: str) -> None:
        """Delete the layer's dirs. Idempotent. Raises LayerInUseError while mounted."""
        ...

    def exists(self, layer_id: str) -> bool: ...

    def mount(self, layer_id: str) -> Path:
        """Mount the chain ending at ``layer_id`` and return the merged dir. Ref-counted across
        processes: each mount() needs one unmount(). Read-only unless created writable."""
        ...

    def unmount(self, layer_id: str) -> None:
        """Drop one reference; unmount on the last. Idempotent when not mounted."""
        ...

    def mount_count(self, layer_id: str) -> int: ...

    def changes(self, layer_id: str) -> list[Change]:
        """What ``layer_id`` changed relative to its parent chain, as ``docker diff`` reports it:
        parents before children, a dir with a changed descendant reported as C, root never."""
        ...

    def diff_tar(self, layer_id: str, out: IO[bytes]) -> None:
        """Write the layer's own changes as a deterministic OCI layer tar (OCI whiteouts; an
        opaque marker only where the dir existed in a lower layer)."""
        ...

    def metadata(self, layer_id: str) -> Mapping[str, str]:
        """Docker's GraphDriver.Data for this layer: LowerDir/UpperDir/WorkDir/MergedDir
        (existing paths only; LowerDir omitted for a base layer)."""
        ...

    def recover(self, live_layer_ids: set[str]) -> list[str]:
        """Remove dirs not in ``live_layer_ids`` and reset stale mount counts; return removed ids."""
        ...
