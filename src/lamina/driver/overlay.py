"""The ``overlay2`` driver: kernel overlayfs, laid out on disk exactly like Docker's overlay2.

::

    <home>/                      0710  (Docker's overlay2 home mode: only root's group may traverse)
      l/                         0700  <26-char base32 short> -> ../<layer_id>/diff (relative links)
      empty/                     0500  the always-empty bottom lower of one-dir stacks (see below)
      <layer_id>/                0710
        diff/                    0755  this layer's files (Docker's mode: the root of the rootfs)
        link                     0644  the short name, no newline
        lower                    0644  "l/<short>:l/<short>:..." parents uppermost first; absent
                                       for a base layer
        work/                    0700  overlay workdir; layers with a parent, and writable layers
        merged/                  0700  mount point (created when created, so metadata paths exist)
        writable                 0600  empty marker: mount read-write with upperdir=diff
        mountcount               0600  "<refs> <boot-id>", changed under flock (base.MountRefs)

Other host users cannot reach anything under ``home`` (0710 root:root): container files stay
private however permissive the modes inside a layer are.

Mounting uses the new mount API with one ``fsconfig("lowerdir+", <abs diff path>)`` per lower, so
stacks up to the kernel's 500-layer ``OVL_MAX_STACK`` mount; a legacy ``mount(2)`` is used only
when the kernel lacks ``lowerdir+`` (< 6.8), with relative ``l/`` paths when absolute ones would not
fit in a page, and refused when even those would not (the kernel would silently truncate). Every
mount is checked in ``/proc/self/mountinfo`` before it is handed out.

The kernel refuses a read-only overlay with a single lower and no upper ("at least 2 lowerdir
are needed while upperdir nonexistent"). A one-layer image therefore mounts ``diff`` over the
shared, read-only ``<home>/empty`` dir; a writable layer with no parent uses it as its lower.

Mounts pass ``index=off,redirect_dir=off,metacopy=off`` explicitly whatever the module defaults,
so an upper dir never holds redirects or metacopy-only files and the native diff (tarring
``diff/``) is always correct for layers lamina mounted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING

from lamina.atomic import remove_tree
from lamina.driver import mountinfo
from lamina.driver.base import LayerApplier, MountRefs, check_layer_id
from lamina.errors import (
    ConflictError,
    DriverError,
    LayerInUseError,
    LayerNotFoundError,
    MountError,
)

if TYPE_CHECKING:
    from lamina.archive.apply import WhiteoutFormat
    from lamina.archive.changes import Change

# The kernel's OVL_MAX_STACK: at most 500 lower layers in one overlay mount.
MAX_LOWERS = 500
# Docker's short-link length: 16 random bytes in base32 without padding = 26 chars. Docker's
# page-size budget: (26 + len("l/") + len(":")) * 128 layers <= PAGE_SIZE - 512 bytes for upper
# and work — what lets a legacy mount(2) carry 128+ relative lowers.
SHORT_ID_LEN = 26
LINK_DIR = "l"
EMPTY_DIR = "empty"
WRITABLE_MARKER = "writable"  # lamina's own: this layer mounts read-write (a container layer)
_RESERVED = frozenset({LINK_DIR, EMPTY_DIR})
_SAFE_DIFF_OPTIONS = (("index", "off"), ("redirect_dir", "off"), ("metacopy", "off"))
_OPAQUE_XATTR = "trusted.overlay.opaque"

HOME_MODE = 0o710
LAYER_MODE = 0o710
DIFF_MODE = 0o755
PRIVATE_MODE = 0o700


_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _short_id() -> str:
    """26 random base32 characters, as overlay2's link names (32 divides 256: unbiased)."""
    return "".join(_BASE32[b & 31] for b in os.urandom(SHORT_ID_LEN))


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, _OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def lookup_in_layers(layers: list[Path], rel: str) -> os.stat_result | None:
    """``lstat`` of ``rel`` in the overlay union of ``layers`` (dirs, uppermost first), honouring
    0:0 char whiteouts and opaque dirs the way overlayfs does; None when absent."""
    parts = [p for p in rel.split("/") if p]
    candidates = layers
    found: os.stat_result | None = None
    for depth in range(len(parts) or 1):
        prefix = parts[: depth + 1]
        found = None
        merged: list[Path] = []
        for layer in candidates:
            path = layer.joinpath(*prefix)
            try:
                st = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if _is_whiteout(st):
                break
            if found is None:
                found = st
            if not stat.S_ISDIR(st.st_mode):
                break  # a non-dir ends the lookup; below a dir it is hidden
            merged.append(layer)
            if _is_opaque(path):
                break
        if found is None or not merged:
            return found if depth == len(parts) - 1 else None
        candidates = merged
    return found


class OverlayDriver(LayerApplier):
    name = "overlay2"

    @property
    def whiteout_format(self) -> WhiteoutFormat:
        from lamina.archive.apply import WhiteoutFormat

        return WhiteoutFormat.OVERLAY

    def __init__(self, *, home: Path, legacy_mount: bool | None = None) -> None:
        """``legacy_mount=None`` picks the new mount API when the kernel has ``lowerdir+``
        (asked at the first mount: the store opens for commands that never mount)."""
        self.home = home
        self._legacy_mount = legacy_mount
        for d, mode in (
            (home, HOME_MODE),
            (home / LINK_DIR, PRIVATE_MODE),
            (home / EMPTY_DIR, 0o500),
        ):
            d.mkdir(mode=mode, parents=d == home, exist_ok=True)

    @property
    def legacy_mount(self) -> bool:
        if self._legacy_mount is None:
            from lamina.driver import mountapi  # see _mount

            self._legacy_mount = not mountapi.lowerdir_plus_supported()
        return self._legacy_mount

    # -- layout -----------------------------------------------------------------------------

    def _dir(self, layer_id: str) -> Path:
        return self.home / check_layer_id(layer_id, reserved=_RESERVED)

    def _existing(self, layer_id: str) -> Path:
        d = self._dir(layer_id)
        if not d.is_dir():
            raise LayerNotFoundError(f"overlay layer {layer_id} does not exist")
        return d

    def _lower_shorts(self, d: Path) -> list[str]:
        try:
            text = (d / "lower").read_text().strip()
        except FileNotFoundError:
            return []
        return [s.removeprefix(f"{LINK_DIR}/") for s in text.split(":") if s]

    def _resolve_short(self, short: str) -> Path:
        link = self.home / LINK_DIR / short
        try:
            target = os.readlink(link)
        except OSError as exc:
            raise DriverError(f"overlay short link {link} is missing: the chain is broken") from exc
        return Path(os.path.normpath(link.parent / target))

    def _lower_dirs(self, d: Path) -> list[Path]:
        """Absolute diff dirs of the parent chain, uppermost first."""
        return [self._resolve_short(s) for s in self._lower_shorts(d)]

    def apply_dir(self, layer_id: str) -> Path:
        return self._existing(layer_id) / "diff"

    def exists(self, layer_id: str) -> bool:
        return self._dir(layer_id).is_dir()

    def create(self, layer_id: str, *, parent: str | None, writable: bool = False) -> Path:
        final = self._dir(layer_id)
        if final.exists():
            raise ConflictError(f"overlay layer {layer_id} already exists")
        lower = ""
        if parent is not None:
            pdir = self._existing(parent)
            parent_lower = (pdir / "lower").read_text().strip() if (pdir / "lower").exists() else ""
            lower = ":".join(
                x for x in (f"{LINK_DIR}/{(pdir / 'link').read_text().strip()}", parent_lower) if x
            )
            depth = lower.count(":") + 1 + (0 if writable else 1)
            if depth > MAX_LOWERS:
                raise DriverError(
                    f"cannot create overlay layer {layer_id}: its stack would have "
                    f"{depth} lower layers; the kernel mounts at most {MAX_LOWERS}"
                )
        short = _short_id()
        stage = self.home / f".create-{layer_id}-{os.urandom(4).hex()}"
        stage.mkdir(mode=LAYER_MODE)
        try:
            (stage / "diff").mkdir(mode=DIFF_MODE)
            os.chmod(stage / "diff", DIFF_MODE)  # not narrowed by the umask
            if parent is not None or writable:
                (stage / "work").mkdir(mode=PRIVATE_MODE)
            (stage / "merged").mkdir(mode=PRIVATE_MODE)
            (stage / "link").write_text(short)
            if lower:
                (stage / "lower").write_text(lower)
            if writable:
                (stage / WRITABLE_MARKER).touch(mode=0o600)
            try:
                os.rename(stage, final)  # fails with ENOTEMPTY/EEXIST if another process won
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    raise ConflictError(f"overlay layer {layer_id} already exists") from exc
                raise
        except BaseException:
            remove_tree(stage, ignore_errors=True)
            raise
        os.symlink(f"../{layer_id}/diff", self.home / LINK_DIR / short)
        return final / "diff"

    def remove(self, layer_id: str) -> None:

        d = self._dir(layer_id)
        if not d.is_dir():
            return
        trash = self.home / f".remove-{layer_id}-{os.urandom(4).hex()}"
        try:
            with MountRefs(d / "mountcount").locked():
                if mountinfo.is_mounted(d / "merged"):
                    raise LayerInUseError(f"overlay layer {layer_id} is mounted")
                os.rename(d, trash)  # from here on no other process finds the layer
        except FileNotFoundError:
            return  # removed concurrently
        with contextlib.suppress(FileNotFoundError, OSError):
            os.unlink(self.home / LINK_DIR / (trash / "link").read_text().strip())
        remove_tree(trash)

    # -- mounting ---------------------------------------------------------------------------

    def mount(self, layer_id: str) -> Path:
        d = self._existing(layer_id)
        merged = d / "merged"
        try:
            with MountRefs(d / "mountcount").locked() as refs:
                if mountinfo.is_mounted(merged):
                    refs.count = refs.count + 1 if refs.count > 0 else 1  # adopt an uncounted one
                else:
                    self._mount(d)
                    refs.count = 1
        except FileNotFoundError as exc:  # removed by another process meanwhile
            raise LayerNotFoundError(f"overlay layer {layer_id} does not exist") from exc
        return merged

    def _mount(self, d: Path) -> None:
        # mountapi loads ctypes (~2 ms): imported by the calls that mount or unmount, not by
        # the store's opening, so create, ps or rm of a container never mounted skip it.
        from lamina.driver import mountapi

        merged = d / "merged"
        merged.mkdir(mode=PRIVATE_MODE, exist_ok=True)
        writable = (d / WRITABLE_MARKER).exists()
        shorts = self._lower_shorts(d)
        lowers = [str(p) for p in self._lower_dirs(d)]
        rel_lowers = [f"{LINK_DIR}/{s}" for s in shorts]
        if not writable:
            lowers.insert(0, str(d / "diff"))
            rel_lowers.insert(0, f"{d.name}/diff")
        if len(lowers) > MAX_LOWERS:
            raise MountError(
                f"cannot mount {len(lowers)} overlay layers; the kernel's limit is {MAX_LOWERS}"
            )
        if len(lowers) < (1 if writable else 2):  # see the module docstring
            empty = self.home / EMPTY_DIR
            if any(os.scandir(empty)):
                raise MountError(f"{empty} must stay empty; it is the bottom layer of small stacks")
            lowers.append(str(empty))
            rel_lowers.append(EMPTY_DIR)
        upper = str(d / "diff") if writable else None
        try:
            if self.legacy_mount:
                shown, shown_upper = self._mount_legacy(d, lowers, rel_lowers, upper)
            else:
                mountapi.mount_new_api(
                    "overlay",
                    str(merged),
                    read_only=not writable,
                    strings=[
                        ("source", "overlay"),
                        *(("lowerdir+", p) for p in lowers),
                        *((("upperdir", upper), ("workdir", str(d / "work"))) if upper else ()),
                        *_SAFE_DIFF_OPTIONS,
                    ],
                )
                shown, shown_upper = lowers, upper
        except OSError as exc:
            err = MountError(
                f"cannot mount overlay layer {d.name} ({len(lowers)} lowers): {exc.strerror}"
            )
            if self.legacy_mount:
                err.add_note("legacy mount(2) carries one page of options (about 130 layers);")
                err.add_note("Linux >= 6.8 mounts up to 500 with fsconfig lowerdir+")
            raise err from exc
        try:
            mountinfo.verify_overlay(merged, lowers=shown, upper=shown_upper)
        except MountError:
            with contextlib.suppress(OSError):
                mountapi.umount(str(merged), detach=True)
            raise

    def _mount_legacy(
        self, d: Path, lowers: list[str], rel_lowers: list[str], upper: str | None
    ) -> tuple[list[str], str | None]:
        """mount(2); returns the lower and upper strings the kernel will show."""

        def options(lw: list[str], up: str | None, work: str) -> str:
            parts = ["lowerdir=" + ":".join(lw)]
            if up:
                parts += [f"upperdir={up}", f"workdir={work}"]
            return ",".join(parts + [f"{k}={v}" for k, v in _SAFE_DIFF_OPTIONS])

        from lamina.driver import mountapi  # see _mount

        absolute = options(lowers, upper, str(d / "work"))
        merged = str(d / "merged")
        if len(absolute) < mountapi.PAGE_SIZE:
            mountapi.legacy_mount(
                "overlay", merged, "overlay", options=absolute, read_only=upper is None
            )
            return lowers, upper
        rel_upper = f"{d.name}/diff" if upper else None
        relative = options(rel_lowers, rel_upper, f"{d.name}/work")
        mountapi.legacy_mount(
            "overlay", merged, "overlay", options=relative, read_only=upper is None, cwd=self.home
        )
        return rel_lowers, rel_upper

    def unmount(self, layer_id: str) -> None:
        d = self._dir(layer_id)
        try:
            with MountRefs(d / "mountcount").locked() as refs:
                if not mountinfo.is_mounted(d / "merged"):
                    refs.count = 0
                    return
                if refs.count > 1:
                    refs.count -= 1
                    return
                _umount(d / "merged")
                refs.count = 0
        except FileNotFoundError:
            return

    def mount_count(self, layer_id: str) -> int:
        d = self._existing(layer_id)
        if not mountinfo.is_mounted(d / "merged"):
            return 0
        return max(MountRefs(d / "mountcount").peek(), 1)

    # -- diffs --------------------------------------------------------------------------------

    def _below(self, layer_id: str) -> Callable[[str], os.stat_result | None]:
        lowers = self._lower_dirs(self._existing(layer_id))
        return lambda rel: lookup_in_layers(lowers, rel)

    def changes(self, layer_id: str) -> list[Change]:
        from lamina.archive.changes import upper_changes

        return upper_changes(self.apply_dir(layer_id), lookup_below=self._below(layer_id))

    def diff_tar(self, layer_id: str, out: IO[bytes]) -> None:
        from lamina.archive.changes import write_upper_dir

        below = self._below(layer_id)
        write_upper_dir(
            self.apply_dir(layer_id), out, exists_below=lambda rel: below(rel) is not None
        )

    def diff_size(self, layer_id: str) -> int:
        """moby's native overlay2 ``DiffSize`` (``directory.Size`` of ``diff/``): every
        non-dir in the upper dir, an inode once; a whiteout device's size is 0."""
        size = 0
        seen: set[int] = set()
        stack = [os.fsencode(self.apply_dir(layer_id))]
        while stack:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    st = entry.stat(follow_symlinks=False)
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(entry.path)
                    elif st.st_size and st.st_ino not in seen:
                        seen.add(st.st_ino)
                        size += st.st_size
        return size

    def metadata(self, layer_id: str) -> Mapping[str, str]:
        """Docker's overlay2 GetMetadata: LowerDir (resolved diffs, uppermost first, only with a
        parent), MergedDir, UpperDir, and WorkDir where the layer has one."""
        d = self._existing(layer_id)
        (d / "merged").mkdir(mode=PRIVATE_MODE, exist_ok=True)
        data: dict[str, str] = {}
        lowers = self._lower_dirs(d)
        if lowers:
            data["LowerDir"] = ":".join(str(p) for p in lowers)
        data["MergedDir"] = str(d / "merged")
        data["UpperDir"] = str(d / "diff")
        if (d / "work").is_dir():
            data["WorkDir"] = str(d / "work")
        return data

    def recover(self, live_layer_ids: set[str]) -> list[str]:
        removed: list[str] = []
        for entry in sorted(os.scandir(self.home), key=lambda e: e.name):
            if entry.name in _RESERVED or not entry.is_dir(follow_symlinks=False):
                continue
            d = Path(entry.path)
            if entry.name in live_layer_ids or _staged_for(entry.name, live_layer_ids):
                with (
                    contextlib.suppress(FileNotFoundError),
                    MountRefs(d / "mountcount").locked() as refs,
                ):
                    if refs.count and not mountinfo.is_mounted(d / "merged"):
                        refs.count = 0
                continue
            for m in reversed(mountinfo.mounts_under(d)):
                _umount(Path(m.target))

            remove_tree(d, ignore_errors=True)
            if not entry.name.startswith("."):  # not a create/remove left half-done
                removed.append(entry.name)
        links = self.home / LINK_DIR
        for link in os.scandir(links):
            # "../<layer id>/diff": a live writer's layer may not be renamed into place yet.
            parts = os.readlink(link.path).split("/")
            owner = parts[1] if len(parts) > 2 else ""
            if not os.path.exists(link.path) and owner not in live_layer_ids:
                os.unlink(link.path)
        return removed


def _umount(target: Path) -> None:
    from lamina.driver import mountapi  # see OverlayDriver._mount

    try:
        mountapi.umount(str(target))
    except OSError as exc:
        if exc.errno == errno.EINVAL:  # not a mount point (any more)
            return
        if exc.errno != errno.EBUSY:
            raise MountError(f"cannot unmount {target}: {exc.strerror}") from exc
        mountapi.umount(str(target), detach=True)  # as Docker: detach a busy mount


def _staged_for(name: str, live_layer_ids: set[str]) -> bool:
    """``.create-<id>-<rand>`` is a layer a live writer is still building: not an orphan."""
    if not name.startswith(".create-"):
        return False
    layer_id = name[len(".create-") :].rpartition("-")[0]
    return layer_id in live_layer_ids
