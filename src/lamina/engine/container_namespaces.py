"""A container's PID, IPC and UTS namespaces at start, as Docker 20.10's daemon sets them up
(``setupIpcDirs``, ``WithNamespaces``, ``getPidContainer``, ``getIpcContainer``).

- ``--pid host`` / ``--uts host`` / ``--ipc host``: no namespace of its own (the host's
  hostname with ``--uts host``, the host's /dev/shm bound with ``--ipc host``);
- ``--pid container:ID``: the PID namespace of that container's init, which must run
  (joined through ``/proc/PID/ns/pid``);
- ``--ipc none``: a namespace of its own and no /dev/shm; ``private``: a namespace and a
  /dev/shm tmpfs of its own (lamina's, and Docker's, default);
- ``--ipc shareable``: its /dev/shm is a tmpfs mounted on the host, in the container dir
  (``mounts/shm``, sized by ``--shm-size``), while the container runs, so that
- ``--ipc container:ID`` can join that IPC namespace and bind the same /dev/shm: the donor
  must run and have one to share (shareable, the host's, or one it joined itself; "non-shareable
  IPC" otherwise).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from msgspec import Struct

from lamina.errors import ConflictError, ContainerNotFoundError, LaminaError, UsageError

SHM_DIR: Final = Path("mounts") / "shm"  # in the container dir, as Docker's ShmResourcePath
HOST_SHM: Final = Path("/dev/shm")
_IPC_MODES: Final = ("", "none", "private", "host", "shareable")
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x2, 0x4, 0x8


class Donor(Struct, frozen=True):
    """What a container that others join offers: its id, its init's host pid (None when it
    does not run), its HostConfig and its container dir."""

    id: str
    pid: int | None
    host_config: Mapping[str, Any]
    bundle: Path


Lookup = Callable[[str], Donor]  # raises ContainerNotFoundError


def run_fields(stored: Mapping[str, Any], *, bundle: Path, lookup: Lookup) -> dict[str, Any]:
    """The RunSpec fields (``namespaces``, ``shm``, ``no_shm``) for the modes of the stored
    container config, the others' looked up by ``lookup``; a shareable container's /dev/shm
    is mounted here (:func:`release` unmounts it). Raises UsageError, ConflictError in
    Docker's words."""
    from lamina.runtime.spec import HOST_NAMESPACE

    host_config = stored["HostConfig"]
    namespaces: dict[str, str] = {}
    fields: dict[str, Any] = {}
    ipc = str(host_config.get("IpcMode") or "")
    kind, colon, ref = ipc.partition(":")
    if not (ipc in _IPC_MODES or (kind == "container" and colon)):
        raise UsageError(f"Invalid IPC mode: {ipc}")
    if kind == "container":
        donor = _ipc_donor(ref, lookup)
        assert donor.pid is not None  # _ipc_donor checked it runs
        namespaces["ipc"] = f"/proc/{donor.pid}/ns/ipc"
        fields["shm"] = shm_path(donor, lookup)
    elif ipc == "host":
        if not HOST_SHM.exists():
            raise UsageError("/dev/shm is not mounted, but must be for --ipc=host")
        namespaces["ipc"] = HOST_NAMESPACE
        fields["shm"] = HOST_SHM
    elif ipc == "none":
        fields["no_shm"] = True
    elif ipc == "shareable" and not _has_shm_mount(stored):
        fields["shm"] = _mount_shm(bundle / SHM_DIR, size=int(host_config["ShmSize"]))
    pid = str(host_config.get("PidMode") or "")
    if pid == "host":
        namespaces["pid"] = HOST_NAMESPACE
    elif pid.startswith("container:"):
        cid = pid.partition(":")[2]
        try:
            donor = lookup(cid)
        except ContainerNotFoundError as exc:
            raise ConflictError(
                f"cannot join PID of a non running container: {cid}: {exc}"
            ) from exc
        if donor.pid is None:
            raise ConflictError(f"container {donor.id} is not running")
        namespaces["pid"] = f"/proc/{donor.pid}/ns/pid"
    if host_config.get("UTSMode") == "host":
        namespaces["uts"] = HOST_NAMESPACE
    if namespaces:
        fields["namespaces"] = namespaces
    return fields


def _ipc_donor(ref: str, lookup: Lookup) -> Donor:
    what = f"can't join IPC of container {ref}"
    if not ref:
        raise UsageError(f'{what}: invalid name or ID supplied: ""')
    try:
        donor = lookup(ref)
    except ContainerNotFoundError as exc:
        raise ConflictError(f"{what}: {exc}") from exc
    if donor.pid is None:
        raise ConflictError(f"{what}: container {donor.id} is not running")
    if shm_path(donor, lookup) is None:
        raise ConflictError(
            f"{what}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
        )
    return donor


def shm_path(donor: Donor, lookup: Lookup, *, depth: int = 0) -> Path | None:
    """The /dev/shm a running ``donor`` shares (Docker's ShmPath): its own mounted one if
    shareable, the host's with ``--ipc host``, its donor's if it joined one; else None."""
    ipc = str(donor.host_config.get("IpcMode") or "")
    if ipc == "host":
        return HOST_SHM
    if ipc == "shareable":
        path = donor.bundle / SHM_DIR
        return path if os.path.ismount(path) else None
    kind, _, ref = ipc.partition(":")
    if kind == "container" and ref and depth < 16:  # joined chains are short; cycles are not
        with contextlib.suppress(LaminaError):
            return shm_path(lookup(ref), lookup, depth=depth + 1)
    return None


def _has_shm_mount(stored: Mapping[str, Any]) -> bool:
    """Whether a mount of the container's own is at /dev/shm (Docker's ``HasMountFor``: then
    it mounts no shm to share)."""
    at = [m["Destination"] for m in stored.get("Mounts") or ()]
    return "/dev/shm" in [*at, *(stored["HostConfig"].get("Tmpfs") or {})]


def _mount_shm(path: Path, *, size: int) -> Path:
    """Docker's shareable /dev/shm: a tmpfs ("shm", mode 1777, nosuid, nodev, noexec)."""
    from lamina.driver.mountapi import mount_flags
    from lamina.errors import MountError

    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not os.path.ismount(path):
        try:
            mount_flags("shm", str(path), "tmpfs", flags=_MS_NOSUID | _MS_NODEV | _MS_NOEXEC,
                        data=f"mode=1777,size={size}")  # fmt: skip
        except OSError as exc:
            raise MountError(f"mounting shm tmpfs: {exc.strerror or exc}") from exc
    return path


def release(bundle: Path) -> None:
    """Unmount a shareable container's /dev/shm (its run is over). Idempotent."""
    path = bundle / SHM_DIR
    if os.path.ismount(path):
        from lamina.driver.mountapi import umount

        with contextlib.suppress(OSError):
            umount(str(path), detach=True)
