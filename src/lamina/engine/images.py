"""Image service: import, list, inspect, layers, tag, remove, mount."""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import msgspec.structs
from msgspec import Struct

from lamina.digest import Digest
from lamina.errors import (
    ImageInUseError,
    ImageNotFoundError,
    UsageError,
)
from lamina.oci import mediatype, reference
from lamina.oci.descriptor import Platform
from lamina.oci.gojson import decode_object
from lamina.store.buildcache import BuildCache
from lamina.store.images import ImageRecord
from lamina.store.layers import LayerRecord
from lamina.store.store import Store

# Listing, history, inspect, import and prune load their helpers when called: every container
# verb resolves an image through this module, and each CLI call is a fresh process.
if TYPE_CHECKING:
    from lamina.engine import transfer
    from lamina.engine.image_rows import HistoryRow, ImageSummary, PruneResult

_HEX_PREFIX = re.compile(r"(sha256:)?[0-9a-f]{1,64}")


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ImageService:
    def __init__(self, store: Store, *, running: Callable[[str], bool]) -> None:
        """``running(container_id)`` tells whether a container's process runs (rmi keeps a
        running container's image even when forced)."""
        self._store = store
        self._running = running

    # -- lookup ---------------------------------------------------------------------------

    def resolve(self, name_or_id: str) -> ImageRecord:
        """An image by name (Docker's normalisation, then podman's ``localhost/NAME`` for a
        short name), by full id, or by a unique id prefix."""
        images = self._store.images
        value = name_or_id.strip()
        if not value:
            raise UsageError("empty image name")
        for candidate in reference.lookup_candidates(value):
            rec = images.find_by_name(candidate)
            if rec is not None:
                return rec
        if _HEX_PREFIX.fullmatch(value):
            rec = images.resolve_prefix(value.removeprefix("sha256:"))
            if rec is not None:
                return rec
        raise ImageNotFoundError(f"no such image: {value}")

    # -- import ---------------------------------------------------------------------------

    def import_rootfs(
        self,
        source: IO[bytes],
        *,
        reference_: str | None = None,
        changes: Sequence[str] = (),
        message: str | None = None,
    ) -> ImageRecord:
        """``docker import``: a rootfs tar (plain, gzip or zstd) becomes a one-layer image.
        As Docker's (and podman's), the config holds only what ``changes`` set (no Env: a
        container gets the default PATH at run time), the history entry no CreatedBy, and
        its comment is ``message`` or "Imported from -" (what docker import writes for a
        file, which its CLI streams: no host path lands in the image)."""
        from lamina.build.changes import apply_changes
        from lamina.oci.config import History, new_config

        name = reference.normalize(reference_) if reference_ else None
        cfg = apply_changes({}, changes) if changes else {}
        layer = self._store.layers.ingest(source, parent=None, media_type=None)
        created = now_rfc3339()
        history = History(created=created, comment=message or "Imported from -")
        config_bytes = new_config(
            diff_ids=[layer.diff_id], history=[history], created=created, config=cfg
        )
        manifest_bytes = stored_manifest(config_bytes, [layer])
        return self._store.images.add(
            config_bytes=config_bytes,
            manifest_bytes=manifest_bytes,
            manifest_media_type=mediatype.OCI_MANIFEST,
            layers=[layer.chain_id],
            names=[name] if name else [],
            created=created,
        )

    # -- queries --------------------------------------------------------------------------

    def config(self, rec: ImageRecord) -> dict[str, Any]:
        data = decode_object(self._store.blobs.read_bytes(rec.id), what="image config")
        return data

    def list(
        self,
        *,
        filters: Sequence[tuple[str, str]] = (),
        repository: str | None = None,
        all_: bool = False,
    ) -> builtins.list[ImageSummary]:
        """``docker images`` rows, newest first: one per (image, name), or one ``<none>`` row
        for an untagged image; intermediate build images only with ``all_``. Filters: dangling,
        reference (glob on the familiar name), before, since, label."""
        from lamina.engine.image_rows import (
            ImageFilter,
            ImageSummary,
            parse_created,
            repo_matches,
            split_familiar,
        )

        records = self._store.images.list()
        if not all_:
            hidden = BuildCache(db=self._store.db).intermediates()
            records = [r for r in records if r.names or r.id not in hidden]
        keep = ImageFilter(filters, resolve=self.resolve, config=self.config)
        rows: builtins.list[ImageSummary] = []
        for rec in records:
            if not keep.image(rec):
                continue
            names = tuple(rec.names)
            pairs = [split_familiar(n) for n in names] or [("<none>", "<none>")]
            for repo, tag in pairs:
                if repository is not None and not repo_matches(repository, repo, tag):
                    continue
                if not keep.name(repo, tag):
                    continue
                rows.append(
                    ImageSummary(
                        id=rec.id,
                        repository=repo,
                        tag=tag,
                        digest=rec.manifest_digest,
                        created=rec.created or "",
                        size=rec.size,
                        names=names,
                    )
                )
        rows.sort(key=lambda r: (parse_created(r.created), r.repository, r.tag), reverse=True)
        return rows

    def _size(self, rec: ImageRecord) -> int:
        return rec.size

    def _layer_records(self, rec: ImageRecord) -> builtins.list[LayerRecord]:
        if not rec.layers:
            return []
        return self._store.layers.chain(rec.layers[-1])

    def inspect(self, name_or_id: str) -> dict[str, Any]:
        """``docker image inspect``; a transport spec (``docker-archive:FILE``, ...) is read in
        place, without loading it (GraphDriver is then empty: nothing is unpacked)."""
        from lamina.engine.inspect import image_inspect

        outside = self._outside(name_or_id)
        if outside is not None:
            return image_inspect(
                image_id=outside.image_id, repo_tags=[reference.familiar(n) for n in outside.names],
                repo_digests=[], config=outside.config, size=sum(outside.sizes),
                graph_driver={"Data": None, "Name": ""}, last_tag_time=None,
            )  # fmt: skip
        rec = self.resolve(name_or_id)
        cfg = self.config(rec)
        if rec.layers:
            graph: dict[str, Any] = {
                "Data": dict(self._store.layers.metadata(rec.layers[-1])),
                "Name": self._store.driver.name,
            }
        else:
            graph = {"Data": None, "Name": self._store.driver.name}
        # Docker lists RepoDigests only for images that came from (or went to) a registry.
        digests: builtins.list[str] = []
        info = image_inspect(
            image_id=rec.id,
            repo_tags=[reference.familiar(n) for n in rec.names],
            repo_digests=digests,
            config=cfg,
            size=self._size(rec),
            graph_driver=graph,
            last_tag_time=_rfc3339(rec.last_tag_time),
        )
        parent = BuildCache(db=self._store.db).parent_of(rec.id)
        if parent is not None:
            info["Parent"] = str(parent)
        return info

    def _outside(self, spec: str) -> _Outside | None:
        """An image named by a transport spec other than ``lamina:``, read in place, with each
        layer's size as Docker counts it (one streaming pass per layer)."""
        from lamina.engine.transport_spec import Format, is_transport, parse_transport

        if not is_transport(spec):
            return None
        ref = parse_transport(spec)
        if ref.format is Format.LAMINA:
            return None
        from lamina.engine import transfer
        from lamina.forensics.stack import from_image

        image, names = transfer.read_image(self._store, ref, platform=None, resolve=self.resolve)
        stack = from_image(image, name=spec, source=ref.format.value)
        return _Outside(
            image_id=image.image_id,
            names=tuple(names),
            config=decode_object(image.raw_config, what="image config"),
            sizes=tuple(layer.content_size for layer in stack.layers),
        )

    def history(self, name_or_id: str) -> builtins.list[HistoryRow]:
        """``docker history``: one row per history entry, newest first; a non-empty entry gets
        the size of the layer it made, matched in order across ``empty_layer`` entries. A
        transport spec is read in place."""
        from lamina.engine.image_rows import history_rows

        outside = self._outside(name_or_id)
        if outside is not None:
            return history_rows(
                outside.config, list(outside.sizes), image_id=str(outside.image_id),
                tags=tuple(reference.familiar(n) for n in outside.names),
            )  # fmt: skip
        rec = self.resolve(name_or_id)
        rows = history_rows(
            self.config(rec), [la.content_size for la in self._layer_records(rec)],
            image_id=str(rec.id), tags=tuple(reference.familiar(n) for n in rec.names),
        )  # fmt: skip
        # Docker walks the image's Parent chain: locally built steps show their image ids.
        cache = BuildCache(db=self._store.db)
        parent = cache.parent_of(rec.id)
        for i in range(1, len(rows)):
            if parent is None:
                break
            found = self._store.images.find(parent)
            names = tuple(reference.familiar(n) for n in found.names) if found else ()
            rows[i] = msgspec.structs.replace(rows[i], id=str(parent), tags=names)
            parent = cache.parent_of(parent)
        return rows

    # -- changes --------------------------------------------------------------------------

    def tag(self, source: str, target: str) -> None:
        rec = self.resolve(source)
        self._store.images.tag(rec.id, reference.normalize(target))

    def remove(
        self, name_or_id: str, *, force: bool = False, prune: bool = True
    ) -> builtins.list[tuple[str, str]]:
        """``docker rmi``, by moby's rules (daemon/images/image_delete.go). By name: untag it,
        then delete the image if no name is left and nothing keeps it -- an image others were
        built on, or a running container's, stays untagged, silently. By id: delete it and its
        names. Never deleted: an image with child images, a running container's image (even
        with ``force``). Only with ``force``: a stopped container's image (the container keeps
        its layers), an image by id with several names. After a delete, its untagged parents
        that nothing else keeps go too, unless not ``prune`` (``--no-prune``). Returns
        ("Untagged", name) / ("Deleted", image id or chain id) lines in Docker's order: each
        image, then the layers it alone held."""
        rec = self.resolve(name_or_id)
        named = self._matching_names(name_or_id, rec)
        out: builtins.list[tuple[str, str]] = []
        if named:
            if len(rec.names) == 1 and (mounted := self._mounted(rec, name_or_id)) is not None:
                raise mounted  # refused before the name goes: it is the way to unmount it
            if not force and len(rec.names) == 1:
                using = self._store.containers.using_image(rec.id)
                if using:
                    # Untagging would leave the container's image dangling: Docker asks for -f.
                    raise ImageInUseError(
                        f'unable to remove repository reference "{name_or_id}" (must force) - '
                        f"container {_container(using[0])} is using its referenced image "
                        f"{rec.id.short}"
                    )
            self._store.images.untag(named[0])
            out.append(("Untagged", reference.familiar(named[0])))
            if len(rec.names) > 1:
                return out
            self._delete(rec.id, out, force=force, quiet=True, prune=prune)
            return out
        if len(rec.names) == 1:
            # By id, an image's only name goes with it: the same checks, that name aside.
            conflict = self._conflict(rec, soft=not force, names=False)
            if conflict is not None:
                raise conflict
            self._store.images.untag(rec.names[0])
            out.append(("Untagged", reference.familiar(rec.names[0])))
        self._delete(rec.id, out, force=force, quiet=False, prune=prune)
        return out

    def _delete(
        self,
        image_id: Digest,
        out: builtins.list[tuple[str, str]],
        *,
        force: bool,
        quiet: bool,
        prune: bool,
    ) -> None:
        """Delete the image with its names, then its layers while nothing else needs them, then
        (``prune``) its untagged parents the same way (never forced, stopping quietly at the
        first that something keeps). ``quiet``: a conflict ends the walk instead of raising."""
        cache = BuildCache(db=self._store.db)
        while True:
            rec = self._store.images.find(image_id)
            if rec is None:
                return
            conflict = self._conflict(rec, soft=not force)
            if conflict is not None:
                if quiet:
                    return
                raise conflict
            parent = cache.parent_of(rec.id)  # before the delete cascades its cache rows away
            self._store.images.remove(rec.id, force=force)
            out += [("Untagged", reference.familiar(n)) for n in rec.names]
            out.append(("Deleted", str(rec.id)))
            if rec.top_layer is not None:
                out += [("Deleted", str(d)) for d in self._store.layers.remove_chain(rec.top_layer)]
            if parent is None or not prune:
                return
            image_id, force, quiet = parent, False, True

    def _conflict(
        self, rec: ImageRecord, *, soft: bool, names: bool = True
    ) -> ImageInUseError | None:
        """What keeps ``rec`` from being deleted, in moby's order: hard conflicts (child
        images, a running container, a mount) always; with ``soft``, also its names (when
        ``names``) and stopped containers."""
        short = rec.id.short
        if BuildCache(db=self._store.db).has_children(rec.id):
            return ImageInUseError(
                f"unable to delete {short} (cannot be forced) - image has dependent child images"
            )
        using = self._store.containers.using_image(rec.id)
        running = [c for c in using if self._running(c[0])]
        if running:
            return ImageInUseError(
                f"unable to delete {short} (cannot be forced) - image is being used by running "
                f"container {_container(running[0])}"
            )
        mounted = self._mounted(rec, rec.id.short)
        if mounted is not None:
            return mounted
        if soft and names and rec.names:
            return ImageInUseError(
                f"unable to delete {short} (must be forced) - image is referenced in multiple "
                "repositories"
            )
        if soft and using:
            return ImageInUseError(
                f"unable to delete {short} (must be forced) - image is being used by stopped "
                f"container {_container(using[0])}"
            )
        return None

    def _mounted(self, rec: ImageRecord, name: str) -> ImageInUseError | None:
        """lamina's own hard conflict (Docker has no image mounts): the image is mounted and
        no other image keeps that layer stack (so could still unmount it by name)."""
        top = rec.top_layer
        if top is None or self._store.layers.mount_count(top) == 0:
            return None
        if any(r.id != rec.id and top in r.layers for r in self._store.images.list()):
            return None
        return ImageInUseError(
            f"unable to delete {rec.id.short} (cannot be forced) - image is mounted "
            f"(lamina image umount {name})"
        )

    def _matching_names(self, value: str, rec: ImageRecord) -> builtins.list[str]:
        cands = reference.lookup_candidates(value)
        return [c for c in cands if c in rec.names][:1]

    # -- transfer -------------------------------------------------------------------------

    def load(
        self,
        source: Path | IO[bytes],
        *,
        platform: str | None = None,
        on_layer: transfer.LayerCallback | None = None,
    ) -> builtins.list[transfer.Loaded]:
        """``docker load`` of a docker-archive, oci-archive or OCI layout dir (or a stream)."""
        from lamina.engine import transfer  # the transports: only when moving images

        plat = Platform.parse(platform) if platform else None
        if isinstance(source, Path):
            return transfer.load(self._store, source, platform=plat, on_layer=on_layer)
        with (
            transfer.spooled(source, store=self._store) as path,
            transfer.shown_as(path, "the archive on stdin"),
        ):
            return transfer.load(self._store, path, platform=plat, on_layer=on_layer)

    def save(
        self,
        names: Sequence[str],
        path: Path,
        *,
        format: str,
        compress: str | None = None,
        on_layer: transfer.LayerCallback | None = None,
    ) -> None:
        """``docker save`` of images (by name keeps that name; by id keeps all its names);
        ``compress`` (gzip/zstd/none) re-encodes layers for the OCI formats."""
        from lamina.engine import transfer  # the transports: only when moving images
        from lamina.engine.transport_spec import Format

        items: builtins.list[tuple[ImageRecord, builtins.list[str]]] = []
        for n in names:
            rec = self.resolve(n)
            matched = self._matching_names(n, rec)
            items.append((rec, matched or builtins.list(rec.names)))
        transfer.save(
            self._store,
            items,
            path,
            Format(format),
            compression=transfer.parse_compression(compress),
            on_layer=on_layer,
        )

    def copy(
        self,
        source: str,
        destination: str,
        *,
        platform: str | None = None,
        all_platforms: bool = False,
        compress: str | None = None,
        on_layer: transfer.LayerCallback | None = None,
    ) -> ImageRecord | None:
        """skopeo-style copy between any two transports (``lamina:REF`` is the store);
        ``all_platforms`` keeps a whole index, ``compress`` re-encodes layers (OCI targets)."""
        from lamina.engine import transfer  # the transports: only when moving images
        from lamina.engine.transport_spec import parse_transport

        return transfer.copy(
            self._store,
            parse_transport(source),
            parse_transport(destination),
            platform=Platform.parse(platform) if platform else None,
            all_platforms=all_platforms,
            compression=transfer.parse_compression(compress),
            resolve=self.resolve,
            on_layer=on_layer,
        )

    def prune(self, *, all_: bool = False, filters: Sequence[str] = ()) -> PruneResult:
        """``docker image prune``: dangling images -- untagged, and no image built on them
        (``all_``, or the filter ``dangling=false``: every image no container uses; one with
        child images only loses its names and goes with its last child) -- with the layers
        nothing needs any more. ``filters`` ``until``, ``label`` and ``label!`` spare images
        as Docker's do (by the config's created time and labels)."""
        from lamina.engine.filters import IMAGE_KEYS, PruneFilters, rfc3339_seconds
        from lamina.engine.image_rows import PruneResult

        spare = PruneFilters(filters, accepted=IMAGE_KEYS)
        if spare.dangling is False:
            all_ = True
        lines: builtins.list[tuple[str, str]] = []
        reclaimed = 0
        cache = BuildCache(db=self._store.db)
        for listed in self._store.images.list():  # oldest first: parents before children
            rec = self._store.images.find(listed.id)
            if rec is None:
                continue  # deleted meanwhile, with the child it was the parent of
            if (rec.names or cache.has_children(rec.id)) and not all_:
                continue  # not dangling (Docker keeps a build's parents too)
            if (spare.labels or spare.not_labels or spare.has_until) and spare.keeps(
                labels=(self.config(rec).get("config") or {}).get("Labels") or {},
                created=rfc3339_seconds(rec.created),
            ):
                continue
            if self._store.images.users(rec.id):
                continue
            if rec.top_layer is not None and self._store.layers.mount_count(rec.top_layer) > 0:
                continue
            if cache.has_children(rec.id):
                # -a: its names go, the image stays for its children (and goes with the last).
                for n in rec.names:
                    self._store.images.untag(n)
                    lines.append(("Untagged", reference.familiar(n)))
                continue
            before = self._store.blobs.total_size()
            lines += self.remove(str(rec.id), force=True)
            reclaimed += max(0, before - self._store.blobs.total_size())
        return PruneResult(lines=lines, reclaimed=reclaimed)

    def export(self, name_or_id: str, out: IO[bytes]) -> None:
        """The flattened root filesystem (whiteouts applied) as a deterministic tar."""
        from lamina.archive.changes import write_tree_diff

        merged = self.mount(name_or_id)
        try:
            write_tree_diff(None, merged, out)
        finally:
            self.unmount(name_or_id)

    # -- mounts ---------------------------------------------------------------------------

    def mount(self, name_or_id: str) -> Path:
        rec = self.resolve(name_or_id)
        if not rec.layers:
            raise UsageError(f"image {name_or_id} has no layers to mount")
        return self._store.layers.mount(rec.layers[-1])

    def unmount(self, name_or_id: str) -> None:
        rec = self.resolve(name_or_id)
        if rec.layers:
            self._store.layers.unmount(rec.layers[-1])


class _Outside(Struct, frozen=True, kw_only=True):
    """An image read from an archive or layout for inspect/history."""

    image_id: Digest
    names: tuple[str, ...]
    config: dict[str, Any]
    sizes: tuple[int, ...]  # per layer, as Docker counts them


def _container(id_and_name: tuple[str, str]) -> str:
    """A container as rmi's refusals name it: Docker's short id, then lamina adds the name."""
    return f"{id_and_name[0][:12]} ({id_and_name[1]})"


def _rfc3339(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stored_manifest(config_bytes: bytes, layers: Sequence[LayerRecord]) -> bytes:
    """The OCI manifest lamina writes for an image it makes from stored layers (import,
    commit): canonical compact JSON over the config and the layers' stored blobs."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": mediatype.OCI_MANIFEST,
        "config": {
            "mediaType": mediatype.OCI_CONFIG,
            "digest": str(Digest.of(config_bytes)),
            "size": len(config_bytes),
        },
        "layers": [
            {"mediaType": r.media_type, "digest": str(r.blob_digest), "size": r.blob_size}
            for r in layers
        ],
    }
    return json.dumps(manifest, separators=(",", ":")).encode()
