"""``docker ps``: which containers show, in which order, and what each row says (the image
as the user named it while that name still leads to it, the sizes with ``-s``).

Imported by ``ps`` and ``inspect -s`` alone (a CLI process per command: ``create`` and
``mount`` load none of it).
"""

from __future__ import annotations

import builtins
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from msgspec import Struct

from lamina.digest import Digest
from lamina.errors import ContainerNotFoundError, LaminaError, UsageError
from lamina.runtime.state import ContainerState, ContainerStatus

if TYPE_CHECKING:
    from lamina.store.containers import ContainerRecord
    from lamina.store.store import Store


class ContainerSummary(Struct, frozen=True, kw_only=True):
    """One ``ps`` row."""

    id: str
    name: str
    image: str  # as the user gave it
    command: str
    created: float  # unix time
    created_at: str
    state: ContainerState
    status: str
    mounts: tuple[str, ...]
    labels: dict[str, str]
    network: str  # HostConfig.NetworkMode
    size: ContainerSize | None = None  # only when asked for (``ps -s``): it walks the rw layer


class ContainerSize(Struct, frozen=True, kw_only=True):
    """Docker's ``SizeRw`` and ``SizeRootFs``: the rw layer's ``DiffSize`` (the init layer
    below it is not counted), and the image's layers' sizes plus it."""

    rw: int
    root_fs: int


def list_containers(
    store: Store,
    *,
    state: Callable[[ContainerRecord], ContainerState],
    auto_remove: Callable[[ContainerRecord], object],
    all_: bool = False,
    filters: Sequence[tuple[str, str]] = (),
    last: int = -1,
    size: bool = False,
) -> builtins.list[ContainerSummary]:
    """``docker ps``: newest first; running ones only unless ``all_``, a ``status``
    filter, or ``last`` > 0 (the ``last`` newest that match). ``filters`` are Docker's
    (:mod:`lamina.engine.container_filters`); a bad one raises InvalidFilterError,
    a ``before``/``since`` naming no container ContainerNotFoundError. With ``size``
    each row has its :class:`ContainerSize` (a walk of each rw layer: ``ps -s``).
    ``state`` is each container's state as the service observes it; ``auto_remove``
    removes a ``run -d --rm`` container found exited (no daemon saw it exit, so the first
    look after does Docker's rm)."""
    from lamina.engine.container_inspect import created_ts, ps_command, status_text

    records = store.containers.list()
    check = None
    if filters:
        from lamina.engine.container_filters import PsFilters

        check = PsFilters(
            filters,
            container_id=lambda ref: _id_or_name(records, ref),
            image_ids=lambda ref: _image_and_descendants(store, ref),
        )
        all_ = all_ or check.shows_stopped
        # Several before/since values: Docker keeps one (Go's map order); the narrowest.
        position = {rec.id: i for i, rec in enumerate(records)}
        if check.before:
            records = records[max(position[c] for c in check.before) + 1 :]
        if check.since:
            records = records[: min(position[c] for c in check.since)]
    now = time.time()
    out: builtins.list[ContainerSummary] = []
    shown: dict[tuple[str, Digest], str] = {}
    image_sizes: dict[Digest | None, int] = {}
    for rec in records:
        st = state(rec)
        if st.status is ContainerStatus.EXITED and rec.config["HostConfig"].get("AutoRemove"):
            with contextlib.suppress(LaminaError):
                auto_remove(rec)
                continue
        if not all_ and last <= 0 and st.status is not ContainerStatus.RUNNING:
            continue
        if check is not None and not check.match(rec, st):
            continue
        out.append(
            ContainerSummary(
                id=rec.id,
                name=rec.name,
                image=_image_shown(store, rec, shown),
                command=ps_command(rec),
                created=created_ts(rec),
                created_at=rec.created,
                state=st,
                status=status_text(st, now=now),
                mounts=tuple(m.get("Name") or m["Source"] for m in rec.config.get("Mounts") or []),
                labels=dict(rec.config["Config"].get("Labels") or {}),
                network=str(rec.config["HostConfig"].get("NetworkMode") or "none"),
                size=container_size(store, rec, image_sizes) if size else None,
            )
        )
        if 0 < last <= len(out):
            break
    return out


def container_size(
    store: Store, rec: ContainerRecord, image_sizes: dict[Digest | None, int]
) -> ContainerSize:
    """Docker's ``GetContainerLayerSize``; ``image_sizes`` caches the chains' sizes."""
    top = rec.top_layer
    if top not in image_sizes:
        chain = store.layers.chain(top) if top is not None else []
        image_sizes[top] = sum(layer.content_size for layer in chain)
    rw = store.containers.diff_size(rec)
    return ContainerSize(rw=rw, root_fs=image_sizes[top] + rw)


def _image_shown(store: Store, rec: ContainerRecord, seen: dict[tuple[str, Digest], str]) -> str:
    """ps's IMAGE, as Docker's: the name the container was made from while it still leads
    to the container's image, else the image id (the image was untagged or deleted)."""
    name = rec.config["Config"].get("Image") or ""
    key = (name, rec.image)
    if key not in seen:
        seen[key] = name if name and _names_image(store, name, rec.image) else str(rec.image)
    return seen[key]


def _names_image(store: Store, name: str, image_id: Digest) -> bool:
    """Whether ``name`` (a name or an id prefix) resolves to ``image_id``, by the image
    service's rules, without loading it (ps is a hot path)."""
    image = store.images.find(image_id)
    if image is None:
        return False
    if image_id.removeprefix("sha256:").startswith(name.removeprefix("sha256:")):
        return True
    if not image.names:
        return False
    from lamina.oci import reference

    for candidate in reference.lookup_candidates(name):
        found = store.images.find_by_name(candidate)
        if found is not None:
            return found.id == image_id
    return False


def _image_and_descendants(store: Store, ref: str) -> set[Digest]:
    """The image ``ref`` names (a name, or an id or id prefix, as ``resolve`` finds it)
    and every image built on it here; none when it names none (Docker skips it)."""
    from lamina.oci import reference
    from lamina.store.buildcache import BuildCache

    images = store.images
    found = None
    for candidate in reference.lookup_candidates(ref):
        found = images.find_by_name(candidate)
        if found is not None:
            break
    if found is None and ref and len(ref.removeprefix("sha256:")) <= 64:
        with contextlib.suppress(UsageError):  # an ambiguous prefix names none
            found = images.resolve_prefix(ref.removeprefix("sha256:"))
    if found is None:
        return set()
    return {found.id} | BuildCache(db=store.db).descendants(found.id)


def _id_or_name(records: Sequence[ContainerRecord], ref: str) -> str:
    """The id of the container ``ref`` is the full id or the name of (a leading "/" allowed):
    ``ps --filter before=/since=`` take no id prefix (Docker's ``idOrNameFilter``)."""
    for rec in records:
        if ref in (rec.id, rec.name, "/" + rec.name):
            return rec.id
    raise ContainerNotFoundError(f"no such container: {ref}")
