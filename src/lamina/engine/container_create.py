"""The parts of ``create`` (and ``start``) that touch files: volumes made and linked, the
bind-mounted host files written, mount points made in the rw layer and new volumes pre-filled."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence, Set
from pathlib import Path
from typing import Any, Final

from lamina.engine import container_config as cc
from lamina.engine import container_fs
from lamina.errors import FileError, LaminaError
from lamina.store.containers import ContainerRecord
from lamina.store.store import Store

# Files of the container dir bind-mounted over the init layer's placeholders in /etc.
HOST_FILES: Final = ("hostname", "hosts", "resolv.conf")

Mounts = list[dict[str, Any]]


def volume_mounts(
    store: Store, vol_args: Sequence[cc.VolumeArg]
) -> tuple[Mounts, list[tuple[str, str]], list[str]]:
    """Docker's ``Mounts`` entries for the ``-v`` args, the (volume, destination) links, and the
    names of volumes made here (so a failed create can take them back). Named volumes are
    made on first use; an arg without a source gets an anonymous volume."""
    from lamina.engine.volumes import check_volume_name

    for v in vol_args:  # every name checked before any volume is made
        if not v.is_bind and v.source is not None:
            check_volume_name(v.source)
    mounts: Mounts = []
    links: list[tuple[str, str]] = []
    new: list[str] = []
    try:
        _add_mounts(store, vol_args, mounts, links, new)
    except BaseException:
        for name in new:
            with contextlib.suppress(LaminaError):
                store.volumes.remove(name)
        raise
    return mounts, links, new


def _add_mounts(
    store: Store,
    vol_args: Sequence[cc.VolumeArg],
    mounts: Mounts,
    links: list[tuple[str, str]],
    new: list[str],
) -> None:
    for v in vol_args:
        if v.is_bind:
            mounts.append(
                {
                    "Type": "bind",
                    "Source": os.path.abspath(v.source or ""),
                    "Destination": v.destination,
                    "Mode": v.mode,
                    "RW": not v.read_only,
                    "Propagation": v.propagation,
                }
            )
            continue
        anonymous = v.source is None
        name = v.source if v.source is not None else os.urandom(32).hex()
        rec, fresh = store.volumes.create(
            name, anonymous=anonymous, labels=v.labels, options=v.driver_options or None
        )
        if fresh:
            new.append(name)
        links.append((name, v.destination))
        mounts.append(
            {
                "Type": "volume",
                "Name": name,
                "Source": str(rec.mountpoint),
                "Destination": v.destination,
                "Driver": "local",
                # Docker shows "z" for -v name:/path and "" for an image's VOLUME.
                "Mode": v.mode or ("" if anonymous else "z"),
                "RW": not v.read_only,
                "Propagation": "",
            }
        )


def hostname(rec: ContainerRecord) -> str:
    """``--hostname``, else Docker's default: the short id."""
    return str(rec.config["Config"].get("Hostname") or rec.id[:12])


def make_log(store: Store, rec: ContainerRecord) -> None:
    """An empty log, so LogPath exists before the first start (none with the ``none``
    logging driver: Docker's LogPath is "" then)."""
    if (rec.config["HostConfig"].get("LogConfig") or {}).get("Type") == "none":
        return
    log = store.containers.bundle(rec) / f"{rec.id}-json.log"
    if not log.exists():
        log.touch(mode=0o640)


def write_host_files(store: Store, rec: ContainerRecord) -> None:
    """hostname, hosts and resolv.conf in the container dir, written by every start (as Docker
    does: a container that never started has none, and ``cp`` shows the init layer's empty
    placeholders for it), and the log if missing."""
    bundle = store.containers.bundle(rec)
    hc = rec.config["HostConfig"]
    network = hc["NetworkMode"]
    contents = {
        "hostname": hostname(rec) + "\n",
        "hosts": cc.hosts_file(
            network=network,
            host_hosts=_read_host("/etc/hosts"),
            extra_hosts=hc.get("ExtraHosts") or (),
        ),
        "resolv.conf": cc.resolv_conf(
            network=network,
            host_resolv=_read_host("/etc/resolv.conf"),
            dns=hc.get("Dns") or (),
            search=hc.get("DnsSearch") or (),
            options=hc.get("DnsOptions") or (),
        ),
    }
    for name, text in contents.items():
        (bundle / name).write_text(text)
        os.chmod(bundle / name, 0o644)
    make_log(store, rec)


def run_files(store: Store, rec: ContainerRecord) -> dict[str, Path]:
    """Container path -> the file a run bind-mounts over it, for the files a start has
    written (none before the first start)."""
    bundle = store.containers.bundle(rec)
    return {f"/etc/{n}": bundle / n for n in HOST_FILES if (bundle / n).is_file()}


def prepare_rootfs(
    store: Store,
    rec: ContainerRecord,
    *,
    in_use: Callable[[str], bool] = lambda _: False,
    no_fill: Set[str] = frozenset(),
) -> None:
    """What Docker's create makes in the rw layer (it shows in ``diff``): the working dir and
    the mount points, and Docker's copy of the image's content into a volume that is still
    empty (a ``volume create -o`` one mounted for it, then unmounted unless ``in_use(name)``:
    a tmpfs keeps nothing, as Docker's) -- except at ``no_fill`` destinations (another
    container's volumes, ``--volumes-from``). Raises UsageError for a working dir that cannot
    be a dir (``cannot mkdir``)."""
    workdir = rec.config["Config"].get("WorkingDir") or "/"
    if workdir == "/" and not rec.config["Mounts"]:
        return  # nothing to make: no mount for it
    merged = store.containers.mount(rec)
    try:
        container_fs.make_working_dir(merged, workdir)
        no_copy = _no_copy_destinations(rec.config["HostConfig"])
        for m in rec.config["Mounts"]:
            if m["Type"] == "tmpfs":
                continue  # its mount point is made at start, by the runtime (as Docker's)
            directory = m["Type"] == "volume" or Path(m["Source"]).is_dir()
            fill = m["Type"] == "volume" and m["Destination"] not in no_copy | no_fill
            # As Docker's populateVolumes: a path the image lacks has nothing to copy (and an
            # -o volume is then not mounted for it).
            fill = fill and _in_rootfs(merged, m["Destination"])
            container_fs.make_mount_point(merged, m["Destination"], directory=directory)
            if fill:
                _fill_volume(store, merged, m, in_use=in_use)
    finally:
        store.containers.unmount(rec)


def _in_rootfs(root: Path, path: str) -> bool:
    try:
        os.close(container_fs.open_in_root(root, path, flags=os.O_PATH | os.O_CLOEXEC))
    except OSError:
        return False
    return True


def _fill_volume(
    store: Store, merged: Path, m: dict[str, Any], *, in_use: Callable[[str], bool]
) -> None:
    volume = store.volumes.get(m["Name"])
    store.volumes.activate(volume)
    try:
        if container_fs.is_empty_dir(Path(m["Source"])):
            container_fs.fill_from_image(merged, m["Destination"], Path(m["Source"]))
    except OSError as exc:  # a full or read-only device: the volume's to report, not a bug
        raise FileError(
            f"cannot copy the image's {m['Destination']} into volume {volume.name}: "
            f"{exc.strerror or exc}"
        ) from exc
    finally:
        store.volumes.deactivate(volume, in_use=lambda: in_use(volume.name))


def _no_copy_destinations(host_config: dict[str, Any]) -> set[str]:
    """Where a ``--mount ...,volume-nocopy`` volume is: Docker leaves it as it is."""
    if not host_config.get("Mounts"):
        return set()
    from lamina.engine.mount_args import destination

    return {
        destination(m)
        for m in host_config.get("Mounts") or ()
        if (m.get("VolumeOptions") or {}).get("NoCopy")
    }


def _read_host(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""
