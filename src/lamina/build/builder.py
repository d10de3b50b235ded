"""``lamina build``: a parsed Dockerfile becomes images, one step at a time, classic-builder style.

Every instruction after FROM commits an image (kept untagged as the build cache, recorded
``built_locally``): RUN, COPY, ADD and WORKDIR through a temporary work layer on the current
chain whose diff becomes exactly one layer when it is not empty; every other step, and an
empty diff, adds an ``empty_layer`` history entry. ``created_by`` is what Docker 20.10's
classic builder writes. The base image comes from the injected ``resolve_base(ref) -> Image``
(the builder never imports transports or the engine); its layers must be in this store.

A step's cache key (:mod:`lamina.build.cache`) is looked up before the step runs; after the
first miss the rest of the stage misses too, as in Docker. ``SOURCE_DATE_EPOCH`` clamps every
mtime in the layers this build writes and fixes ``created``, so the same context gives the same
image id anywhere.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

from lamina.build.builder_steps import Steps
from lamina.build.parser import parse
from lamina.build.request import BuildRequest, BuildResult, CachePolicy, RunOutput
from lamina.build.stage import PROXY_ARGS, StageState
from lamina.digest import Digest
from lamina.errors import BuildError
from lamina.image.model import Image
from lamina.oci import mediatype
from lamina.oci.config import History, format_time, history_for_layers, new_config
from lamina.oci.descriptor import Descriptor
from lamina.oci.gojson import decode_object
from lamina.oci.manifest import Manifest
from lamina.store.buildcache import BuildCache
from lamina.store.layers import LayerRecord
from lamina.store.lock import held_temp_dir
from lamina.store.store import Store
from lamina.store.worklayers import WorkLayers

if TYPE_CHECKING:
    from lamina.build.volumes import Discard
    from lamina.runtime import Runtime

__all__ = ["BuildRequest", "BuildResult", "Builder", "CachePolicy", "ResolveBase", "RunOutput"]

ResolveBase = Callable[[str], Image]
Report = Callable[[str], None]
_TAR_SUFFIX: Final = ".tar"


# An empty layer tar: two zero blocks (archive.tarwriter.EMPTY_LAYER_TAR, not imported here so
# an all-cached build never loads the tar code).
_EMPTY_TAR: Final = bytes(1024)


class Builder:
    def __init__(
        self,
        *,
        store: Store,
        resolve_base: ResolveBase,
        runtime: Callable[[], Runtime],
        cache_root: Path,
        report: Report,
    ) -> None:
        self.store = store
        self.resolve_base = resolve_base
        self._runtime_factory = runtime
        self._runtime: Runtime | None = None
        self.cache_root = cache_root
        self.report = report
        self.cache = BuildCache(db=store.db)
        self.work = WorkLayers(db=store.db, driver=store.driver, hold=store.lock)

    @property
    def runtime(self) -> Runtime:
        """Made on the first RUN that misses the cache (an all-cached build never loads it)."""
        if self._runtime is None:
            self._runtime = self._runtime_factory()
        return self._runtime

    def build(self, req: BuildRequest) -> BuildResult:
        from lamina.runtime.users import UnknownUserError

        df = parse(req.dockerfile)
        with self._temp_dir() as temp:
            steps = Steps(builder=self, req=req, df=df, temp=temp)
            try:
                return steps.run()
            except UnknownUserError as exc:
                # A build error, not a container that failed to start (``run``'s exit 125):
                # ``docker build`` exits 1 for a USER or --chown the image does not have.
                raise BuildError(str(exc)) from exc

    # -- committing ----------------------------------------------------------------------

    def created(self, req: BuildRequest) -> str:
        if req.source_date_epoch is not None:
            return format_time(dt.datetime.fromtimestamp(req.source_date_epoch, dt.UTC))
        return format_time(dt.datetime.now(dt.UTC))

    def commit(
        self,
        state: StageState,
        *,
        req: BuildRequest,
        created_by: str,
        layer: LayerRecord | None,
        key: str,
    ) -> Digest:
        """Record the step as a locally built image and in the cache; advance ``state``."""
        created = self.created(req)
        if layer is not None:
            state.layers.append(layer)
        state.history.append(
            History(created=created, created_by=created_by, empty_layer=layer is None)
        )
        raw = new_config(
            diff_ids=[r.diff_id for r in state.layers],
            history=state.history,
            created=created,
            architecture=str(state.doc.get("architecture") or "amd64"),
            os=str(state.doc.get("os") or "linux"),
            variant=state.doc.get("variant") or None,
            author=state.doc.get("author") or None,
            config=state.config,
        )
        docker = any(mediatype.is_docker(r.media_type) for r in state.layers)
        manifest = Manifest(
            media_type=mediatype.DOCKER_MANIFEST if docker else mediatype.OCI_MANIFEST,
            config=Descriptor.of(mediatype.DOCKER_CONFIG if docker else mediatype.OCI_CONFIG, raw),
            layers=tuple(
                Descriptor(media_type=r.media_type, digest=r.blob_digest, size=r.blob_size)
                for r in state.layers
            ),
        )
        rec = self.store.images.add(
            config_bytes=raw,
            manifest_bytes=manifest.encode(),
            manifest_media_type=manifest.media_type or mediatype.OCI_MANIFEST,
            layers=[r.chain_id for r in state.layers],
            names=[],
            created=created,
            built_locally=True,
        )
        self.cache.record(key=key, parent=state.image_id, image=rec.id)
        state.image_id = rec.id
        return rec.id

    def adopt(self, state: StageState, image_id: Digest) -> None:
        """Continue from a cached step's image."""
        rec = self.store.images.get(image_id)
        doc = decode_object(self.store.blobs.read_bytes(image_id), what="image config")
        state.layers = [self.store.layers.get(c) for c in rec.layers]
        state.history = history_for_layers(
            [History.from_json(h) for h in doc.get("history") or []], len(state.layers)
        )
        state.doc = {k: v for k, v in doc.items() if k not in ("history", "rootfs", "created")}
        state.image_id = image_id

    def layer_from(self, tar: IO[bytes], *, parent: Digest | None) -> LayerRecord | None:
        """Ingest a work layer's diff tar; None when it is empty (the step adds no layer)."""
        tar.seek(0)
        head = tar.read(len(_EMPTY_TAR) + 1)
        if head == _EMPTY_TAR:
            return None
        tar.seek(0)
        return self.store.layers.ingest(tar, parent=parent, media_type=None)

    def rewritten(
        self, tar: IO[bytes], *, epoch: int | None, discard: Discard, temp: Path
    ) -> IO[bytes]:
        """The diff tar with every mtime clamped to ``epoch`` (None: unchanged) and the
        entries ``discard`` does not keep left out; ``tar`` itself when neither applies."""
        if epoch is None and not discard:
            return tar
        from lamina.archive.tarstream import TarStream, limits_from_env
        from lamina.archive.tarwriter import TarWriter

        tar.seek(0)
        out = tempfile.TemporaryFile(dir=temp)  # noqa: SIM115  # returned; the caller closes it
        stream = TarStream(tar, limits=limits_from_env())
        with TarWriter(out, mtime_clamp=epoch) as writer:
            for member in stream:
                if discard.keeps(member.entry):
                    writer.add(member.entry, stream)  # type: ignore[arg-type]  # read() only
        tar.close()
        return out

    # -- temp space ----------------------------------------------------------------------

    def _temp_dir(self) -> contextlib.AbstractContextManager[Path]:
        """A private dir under ``<root>/tmp``, flocked so another process's sweep keeps it."""
        return held_temp_dir(self.store.paths.tmp, prefix="build-")


def unused_build_args(given: Mapping[str, str], consumed: set[str]) -> list[str]:
    """--build-arg names no ARG declared (predefined proxy args never count as unused)."""
    return sorted(k for k in given if k not in consumed and k not in PROXY_ARGS)
