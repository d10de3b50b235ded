"""``docker commit``: a container's rw layer becomes a new image layer.

The layer is the driver's diff of the rw layer against the init layer (so the init
placeholders never land in an image), with OCI whiteouts and an opaque marker only where the
dir exists below; it is ingested like any other layer, on top of the image's chain, so it gets
its own record, blob and file index. The new config is the container's (as Docker keeps the
container's Cmd, Env, ...), with ``-c`` changes applied and one history entry appended.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from typing import Final

from lamina.build.changes import apply_changes
from lamina.digest import Digest
from lamina.engine.container_inspect import command_text
from lamina.engine.images import now_rfc3339, stored_manifest
from lamina.oci import mediatype
from lamina.oci import reference as oci_reference
from lamina.oci.config import History, history_for_layers, new_config
from lamina.oci.gojson import decode_object
from lamina.store.buildcache import BuildCache
from lamina.store.containers import ContainerRecord
from lamina.store.images import ImageRecord
from lamina.store.store import Store

# The container Config keys an image config keeps (the rest describe one container).
_IMAGE_KEYS: Final = (
    "User",
    "ExposedPorts",
    "Env",
    "Entrypoint",
    "Cmd",
    "Volumes",
    "WorkingDir",
    "Labels",
    "StopSignal",
)


def commit(
    store: Store,
    rec: ContainerRecord,
    *,
    image: ImageRecord,
    reference: str | None,
    message: str | None,
    author: str | None,
    changes: Sequence[str],
) -> ImageRecord:
    name = oci_reference.normalize(reference) if reference else None
    base_cfg = decode_object(store.blobs.read_bytes(image.id), what="image config")
    with tempfile.TemporaryFile(dir=store.paths.tmp) as spool:
        store.containers.diff_tar(rec, spool)
        spool.seek(0)
        layer = store.layers.ingest(spool, parent=image.top_layer, media_type=mediatype.OCI_LAYER)
    try:
        container_cfg = rec.config["Config"]
        cfg = {k: container_cfg[k] for k in _IMAGE_KEYS if container_cfg.get(k)}
        if changes:
            cfg = apply_changes(cfg, changes)
        created = now_rfc3339()
        diff_ids = [Digest(d) for d in (base_cfg.get("rootfs") or {}).get("diff_ids") or []]
        history = history_for_layers(
            [History.from_json(h) for h in base_cfg.get("history") or []], len(diff_ids)
        )
        history.append(
            History(created=created, created_by=command_text(rec), author=author, comment=message)
        )
        config_bytes = new_config(
            diff_ids=[*diff_ids, layer.diff_id],
            history=history,
            created=created,
            architecture=base_cfg.get("architecture") or "amd64",
            os=base_cfg.get("os") or "linux",
            config=cfg,
            author=author,
            variant=base_cfg.get("variant"),
        )
        layers = [*image.layers, layer.chain_id]
        records = store.layers.chain(layer.chain_id)
        committed = store.images.add(
            config_bytes=config_bytes,
            manifest_bytes=stored_manifest(config_bytes, records),
            manifest_media_type=mediatype.OCI_MANIFEST,
            layers=layers,
            names=[name] if name else [],
            created=created,
        )
        # Docker's Parent: the container's image, which rmi then keeps while the committed
        # image exists, and ps --filter ancestor= follows (a key no build step can have).
        BuildCache(db=store.db).record(
            key=f"commit {committed.id}", parent=image.id, image=committed.id
        )
        return committed
    finally:
        store.layers.release([layer.chain_id])
