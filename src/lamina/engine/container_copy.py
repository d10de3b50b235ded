"""``docker cp``'s three entry points on a container service: which side names the container
(``CONTAINER:PATH``), who owns what is copied in, and the container seen as its process sees
it (:meth:`~lamina.engine.containers.ContainerService.in_view`). Where a path leads and where
a copy lands are :mod:`lamina.engine.container_cp`'s rules.
"""

from __future__ import annotations

from typing import IO, TYPE_CHECKING

from lamina.engine import container_cp
from lamina.errors import UsageError

if TYPE_CHECKING:
    from lamina.engine.containers import ContainerService
    from lamina.store.containers import ContainerRecord


def copy(
    svc: ContainerService,
    source: str,
    destination: str,
    *,
    archive: bool = False,
    follow_link: bool = False,
) -> None:
    """``docker cp``: exactly one side is ``CONTAINER:PATH``, seen as the container's
    process sees it: paths in its volumes and binds are read from and written to them (a
    ``:ro`` one refuses: ConflictError, as does the rootfs of a ``--read-only`` container),
    and once it has started its /etc/hostname, /etc/hosts and /etc/resolv.conf read as the
    generated files a run mounts there (before: the init layer's empty placeholders) and
    refuse copies. Copied in, files keep their host owners -- with ``archive`` (``-a``) and a
    ``Config.User``, they belong to that user (:func:`container_cp.archive_owner`); copied
    out, they belong to whoever copies, as Docker's. ``follow_link`` (``-L``): a SRC that is
    a symlink is copied as its target."""
    src_c, src_p = _split(source)
    dst_c, dst_p = _split(destination)
    if (src_c is None) == (dst_c is None):
        raise UsageError("copying between containers or between host paths is not supported")
    if src_c is not None:
        svc.in_view(
            svc.resolve(src_c),
            lambda root, _: container_cp.copy_out(root, src_p, dst_p, follow_link=follow_link),
        )
        return
    assert dst_c is not None
    if src_p == "-":
        raise UsageError("SRC '-' is a tar on stdin: use extract_archive")
    rec = svc.resolve(dst_c)
    owner = _owner(rec, archive=archive)
    svc.in_view(
        rec,
        lambda root, points: container_cp.copy_in(
            root,
            src_p,
            dst_p,
            mount_points=points,
            follow_link=follow_link,
            owner=owner,
            read_only_rootfs=bool(rec.config["HostConfig"].get("ReadonlyRootfs")),
        ),
    )


def extract(
    svc: ContainerService, destination: str, source: IO[bytes], *, archive: bool = False
) -> None:
    """``docker cp [-a] - CONTAINER:DEST``: the tar on ``source`` extracted into the
    existing dir DEST, seen as :func:`copy` sees the container (volumes, binds, run files,
    ``--read-only``); its entries keep the archive's owners, or with ``archive`` belong to
    the container's ``Config.User`` as :func:`copy` says."""
    container, path = _split(destination)
    if container is None:
        raise UsageError(f"{destination!r} is not CONTAINER:PATH")
    rec = svc.resolve(container)
    owner = _owner(rec, archive=archive)
    svc.in_view(
        rec,
        lambda root, points: container_cp.archive_in(
            root,
            path,
            source,
            mount_points=points,
            shown=destination,
            owner=owner,
            read_only_rootfs=bool(rec.config["HostConfig"].get("ReadonlyRootfs")),
        ),
    )


def archive(
    svc: ContainerService, source: str, out: IO[bytes], *, follow_link: bool = False
) -> None:
    """``docker cp [-L] CONTAINER:PATH -``: PATH as a tar on ``out`` (what :func:`copy`
    would copy, volumes and run-time files included; with ``follow_link``, a symlink's
    target)."""
    container, path = _split(source)
    if container is None:
        raise UsageError(f"{source!r} is not CONTAINER:PATH")
    svc.in_view(
        svc.resolve(container),
        lambda root, _: container_cp.archive_out(root, path, out, follow_link=follow_link),
    )


def _owner(rec: ContainerRecord, *, archive: bool) -> tuple[int, int] | None:
    """Who owns what ``cp`` writes into ``rec``: with ``-a`` and a ``Config.User``, that user
    as Docker's daemon looks it up (``tarCopyOptions``); else None (the source's owners)."""
    user = rec.config["Config"].get("User") or ""
    if not archive or not user:
        return None
    return container_cp.archive_owner(user)


def _split(arg: str) -> tuple[str | None, str]:
    """(container, path) for ``NAME:PATH``; (None, path) for a host path (one starting with
    "/" or ".", or without a colon), as docker cp splits them."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    name, _, path = arg.partition(":")
    return name, path or "/"
