"""The storage-driver protocol: puts layers on disk and mounts a chain of them as one rootfs.

A driver knows layers only by their ``layer_id`` (the random cache-id the store assigns) and the
``parent`` layer_id given at create time; it never sees digests, images or the database.
Drivers: ``overlay`` (user-facing name ``overlay2``) and ``vfs``; chosen in ``driver.select``.

Also here, shared by both drivers: :class:`MountRefs`, the cross-process mount reference count,
and :class:`LayerApplier`, ``Driver.apply`` on top of ``archive.apply.apply_layer``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from msgspec import Struct

from lamina.errors import DriverError

if TYPE_CHECKING:
    # Change/ChangeKind live with the diff code that produces them; re-exported here for
    # drivers, loaded on first use (see __getattr__): only `diff` and `commit` need them.
    from lamina.archive.apply import ApplyResult, Limits, RowSink, WhiteoutFormat
    from lamina.archive.changes import Change, ChangeKind
    from lamina.archive.compression import Compression
    from lamina.digest import Digest

__all__ = [
    "BOOT_ID",
    "Change",
    "ChangeKind",
    "Driver",
    "LayerApplier",
    "MountRefs",
    "RefCount",
    "check_layer_id",
]


def __getattr__(name: str) -> Any:
    if name in ("Change", "ChangeKind"):
        from lamina.archive import changes

        return getattr(changes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Driver(Protocol):
    """Contract every driver meets (checked by lamina.testing.conformance, run over every driver
    by tests/conformance/test_drivers.py)."""

    name: str  # user-facing: "overlay2" or "vfs"
    home: Path  # <root>/overlay or <root>/vfs

    def create(self, layer_id: str, *, parent: str | None, writable: bool = False) -> Path:
        """Make an empty layer on top of ``parent``; return the dir a layer tar is applied into.

        Raises ConflictError if ``layer_id`` exists, LayerNotFoundError if ``parent`` does not.
        ``writable`` layers (containers) mount read-write."""
        ...

    def apply_dir(self, layer_id: str) -> Path:
        """The dir layer content is written into (overlay: ``diff/``; vfs: the full tree)."""
        ...

    def apply(
        self,
        layer_id: str,
        source: IO[bytes],
        *,
        declared: Compression | None = None,
        expected_blob_digest: Digest | None = None,
        expected_blob_size: int | None = None,
        expected_diff_id: Digest | None = None,
        tee: IO[bytes] | None = None,
        lower_symlinks: Collection[str] = (),
        limits: Limits | None = None,
        rows: RowSink | None = None,
    ) -> ApplyResult:
        """Extract a layer tar into ``apply_dir(layer_id)`` in this driver's whiteout format
        (``archive.apply.apply_layer``; ``limits=None`` means its defaults; its file-index rows
        go to ``rows`` in batches). On error the layer is partly written: remove it."""
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

    def mount_count(self, layer_id: str) -> int:
        """References held on the layer's mount (0 when not mounted)."""
        ...

    def changes(self, layer_id: str) -> list[Change]:
        """What ``layer_id`` changed relative to its parent chain, as ``docker diff`` reports it:
        parents before children, a dir with a changed descendant reported as C, root never."""
        ...

    def diff_tar(self, layer_id: str, out: IO[bytes]) -> None:
        """Write the layer's own changes as a deterministic OCI layer tar (OCI whiteouts; an
        opaque marker only where the dir existed in a lower layer)."""
        ...

    def diff_size(self, layer_id: str) -> int:
        """Bytes the layer's own changes hold, as Docker's ``DiffSize``: the sizes of the
        non-dirs it adds or changes (a symlink's is its target's length), each inode once;
        deletions and dirs count nothing (``docker ps -s``'s rw size)."""
        ...

    def metadata(self, layer_id: str) -> Mapping[str, str]:
        """Docker's GraphDriver.Data for this layer (every path listed exists)."""
        ...

    def recover(self, live_layer_ids: set[str]) -> list[str]:
        """Remove dirs not in ``live_layer_ids`` and reset stale mount counts; return removed ids.

        Call it only while no other process creates layers (under the store lock)."""
        ...


# Layer ids are the store's random cache-ids (64 hex, maybe with "-init"); anything that could
# escape ``home`` or collide with the driver's own entries is refused.
_LAYER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def check_layer_id(layer_id: str, *, reserved: Collection[str] = ()) -> str:
    if not _LAYER_ID.fullmatch(layer_id) or layer_id in reserved:
        raise DriverError(f"invalid layer id {layer_id[:140]!r}")
    return layer_id


class LayerApplier:
    """``Driver.apply`` for drivers that have ``apply_dir`` and a ``whiteout_format``."""

    @property
    def whiteout_format(self) -> WhiteoutFormat:
        raise NotImplementedError

    def apply_dir(self, layer_id: str) -> Path:
        raise NotImplementedError

    def apply(
        self,
        layer_id: str,
        source: IO[bytes],
        *,
        declared: Compression | None = None,
        expected_blob_digest: Digest | None = None,
        expected_blob_size: int | None = None,
        expected_diff_id: Digest | None = None,
        tee: IO[bytes] | None = None,
        lower_symlinks: Collection[str] = (),
        limits: Limits | None = None,
        rows: RowSink | None = None,
    ) -> ApplyResult:
        from lamina.archive.apply import DEFAULT_LIMITS, apply_layer

        return apply_layer(
            source,
            self.apply_dir(layer_id),
            fmt=self.whiteout_format,
            declared=declared,
            expected_blob_digest=expected_blob_digest,
            expected_blob_size=expected_blob_size,
            expected_diff_id=expected_diff_id,
            tee=tee,
            lower_symlinks=lower_symlinks,
            limits=DEFAULT_LIMITS if limits is None else limits,
            rows=rows,
        )


BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def _boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return "unknown"


class RefCount(Struct):
    count: int


class MountRefs:
    """A layer's mount reference count, shared by every lamina process.

    Kept in a small file as ``"<count> <boot-id>\\n"`` and only read or changed under an exclusive
    ``fcntl.flock`` on that file, so the check-mount-increment sequence is atomic across
    processes. A count written before the last reboot reads as 0 (nothing survives a reboot
    mounted); drivers that can see the kernel's state also reconcile with ``mountinfo``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def locked(self) -> Iterator[RefCount]:
        """Yield the current count under the lock; a changed ``count`` is written back on exit.

        Raises FileNotFoundError when the layer dir is gone."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            ref = RefCount(self._parse(os.pread(fd, 256, 0)))
            before = ref.count
            yield ref
            if ref.count != before:
                data = f"{max(ref.count, 0)} {_boot_id()}\n".encode()
                os.ftruncate(fd, 0)
                os.pwrite(fd, data, 0)
        finally:
            os.close(fd)

    def peek(self) -> int:
        """The count as last written (0 when no file), without reconciling."""
        try:
            with self.path.open("rb") as f:
                fcntl.flock(f.fileno(), fcntl.LOCK_SH)
                return self._parse(f.read(256))
        except FileNotFoundError:
            return 0

    @staticmethod
    def _parse(data: bytes) -> int:
        fields = data.split()
        if len(fields) != 2 or not fields[0].isdigit() or fields[1].decode() != _boot_id():
            return 0
        return int(fields[0])
