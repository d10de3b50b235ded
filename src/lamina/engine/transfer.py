"""Moving images between media: ``load``, ``save``, ``copy``, and transport specs.

A transport spec is ``oci:DIR[:REF]``, ``oci-archive:FILE[:REF]``, ``docker-archive:FILE[:REF]``
or ``lamina:REF`` (skopeo's names). The path ends at the first ``:`` after the prefix (as skopeo
parses them), so a REF may itself hold colons (``docker-archive:x.tar:busybox:latest``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

from msgspec import Struct

from lamina.archive.compression import GZIP_MAGIC, ZSTD_MAGIC, Compression, new_inflater
from lamina.archive.tarstream import limits_from_env
from lamina.engine.transport_spec import Format, TransportRef
from lamina.errors import (
    InvalidManifestError,
    LaminaError,
    LimitExceededError,
    StoreError,
    UsageError,
)
from lamina.image.model import Image, Layer
from lamina.image.observe import observe
from lamina.oci import reference
from lamina.oci.descriptor import Platform
from lamina.store.images import ImageRecord
from lamina.store.lock import held_temp, held_temp_dir
from lamina.store.store import Store
from lamina.transports import docker_archive, local, oci_archive, oci_layout
from lamina.transports.oci_layout import Platforms
from lamina.transports.recompress import recompressed, recompressed_all
from lamina.transports.source import scan_archive

LayerCallback = Callable[[int, int, Layer], None]


class Loaded(Struct, frozen=True, kw_only=True):
    record: ImageRecord
    names: tuple[str, ...]


def detect_archive(path: Path) -> Format:
    """docker-archive when ``manifest.json`` is there (Docker 25+ writes both it and an OCI
    layout: ``docker load`` reads manifest.json), else oci-archive when ``index.json`` is."""
    if path.is_dir():
        return Format.OCI
    try:
        names = {m.name.removeprefix("./") for m in scan_archive(path)}
    except (tarfile.TarError, OSError) as exc:
        raise InvalidManifestError(f"{path}: not a tar archive ({exc})") from exc
    if "manifest.json" in names:
        return Format.DOCKER_ARCHIVE
    if "index.json" in names and "oci-layout" in names:
        return Format.OCI_ARCHIVE
    raise InvalidManifestError(
        f"{path}: neither a docker-archive (no manifest.json) nor an oci-archive "
        "(no index.json and oci-layout)"
    )


def _outer_compression(head: bytes) -> Compression:
    """gzip or zstd for a compressed archive (``docker save | gzip``, as docker load accepts),
    NONE for anything else (the format detection reports what it is not)."""
    if head.startswith(GZIP_MAGIC):
        return Compression.GZIP
    if head.startswith(ZSTD_MAGIC):
        return Compression.ZSTD
    return Compression.NONE


@contextlib.contextmanager
def shown_as(spool: Path, shown: str) -> Iterator[None]:
    """Errors raised in the block name ``shown`` (stdin, the user's compressed file) where
    they named ``spool``, lamina's private copy of it."""
    try:
        yield
    except LaminaError as exc:
        exc.args = tuple(
            a.replace(str(spool), shown) if isinstance(a, str) else a for a in exc.args
        )
        raise


@contextlib.contextmanager
def spooled(stream: IO[bytes], *, store: Store) -> Iterator[Path]:
    """Copy a stream (stdin) to a temp file in the store's tmp dir: the readers need to seek.
    A gzip- or zstd-compressed archive is inflated on the way, in the same pass, to at most
    ``max_uncompressed_bytes`` (``LAMINA_MAX_LAYER_BYTES``, the bound of every stream lamina
    inflates): a decompression bomb stops there with LimitExceededError. (Docker 20.10 has no
    bound: it extracts a gzipped archive's members into its tmp dir, however large.) A disk
    that fills up first is a StoreError naming the dir."""
    # Held (flocked) while it lives: another lamina process opening the store meanwhile
    # sweeps <root>/tmp of what no live process holds, and took a bare temp file for a dead
    # one's (`lamina save X | lamina load` failed as its load's spool vanished).
    with held_temp(store.paths.tmp, prefix="load-") as temp:
        try:
            # closing flushes: it may fail as a write does
            with os.fdopen(os.dup(temp.fd), "wb") as f:
                _spool(stream, f, limit=limits_from_env().max_uncompressed_bytes)
        except OSError as exc:
            raise StoreError(
                f"cannot copy the archive into {store.paths.tmp}: {exc.strerror or exc}"
            ) from exc
        yield temp.path


def _spool(stream: IO[bytes], f: IO[bytes], *, limit: int) -> None:
    head = stream.read(1 << 20)
    compression = _outer_compression(head)
    if compression is Compression.NONE:
        f.write(head)
        shutil.copyfileobj(stream, f, 1 << 20)
        return
    inflater = new_inflater(compression)
    size = 0
    data = head
    while data:
        for piece in inflater.feed(data):
            size += len(piece)
            if size > limit:
                err = LimitExceededError(
                    limit_name="max_uncompressed_bytes",
                    limit=limit,
                    what=f"the {compression.value}-compressed archive, inflated,",
                )
                err.hint = "LAMINA_MAX_LAYER_BYTES sets the limit"
                raise err
            f.write(piece)
        data = stream.read(1 << 20)
    inflater.finish()


@contextlib.contextmanager
def plain_archive(path: Path, *, store: Store) -> Iterator[Path]:
    """``path`` itself, or an inflated temp copy when it is a gzip/zstd-compressed archive."""
    if path.is_dir():
        yield path
        return
    with open(path, "rb") as f:
        if _outer_compression(f.read(4)) is Compression.NONE:
            yield path
            return
        f.seek(0)
        with spooled(f, store=store) as inflated, shown_as(inflated, str(path)):
            yield inflated


def _layout_names(ref_name: str | None, full_name: str | None) -> list[str]:
    if full_name:
        return [reference.normalize(full_name)]
    if ref_name and ("/" in ref_name or ":" in ref_name):
        with contextlib.suppress(UsageError):
            return [reference.normalize(ref_name)]
    return []


def images_in(
    path: Path, fmt: Format, *, platform: Platform | None
) -> list[tuple[Image, list[str]]]:
    """Every image of an archive or layout with the names it carries."""
    if fmt is Format.DOCKER_ARCHIVE:
        return [(a.image, list(a.names)) for a in docker_archive.read_all(path)]
    entries = (
        oci_archive.entries(path, platform=platform)
        if fmt is Format.OCI_ARCHIVE
        else oci_layout.entries(path, platform=platform)
    )
    return [(e.image, _layout_names(e.ref_name, e.full_name)) for e in entries]


def load(
    store: Store,
    path: Path,
    *,
    platform: Platform | None = None,
    on_layer: LayerCallback | None = None,
) -> list[Loaded]:
    """``docker load``: every image of the archive (maybe gzip/zstd-compressed as a whole),
    with its names."""
    with plain_archive(path, store=store) as plain:
        fmt = detect_archive(plain)
        out = []
        for image, names in images_in(plain, fmt, platform=platform):
            rec = local.write(store, image, names=names, on_layer=on_layer)
            out.append(Loaded(record=rec, names=tuple(names)))
        return out


def read_image(
    store: Store,
    spec: TransportRef,
    *,
    platform: Platform | None,
    resolve: Callable[[str], ImageRecord],
) -> tuple[Image, list[str]]:
    """The image a transport spec names, with the names it should carry."""
    assert spec.path is not None or spec.format is Format.LAMINA
    if spec.format is Format.LAMINA:
        rec = resolve(spec.ref or "")
        return local.read(store, rec), list(rec.names)
    path = spec.path
    assert path is not None
    if spec.format is Format.DOCKER_ARCHIVE:
        img = docker_archive.read(path, spec.ref)
        names = [reference.normalize(spec.ref)] if spec.ref and not spec.ref.startswith("@") else []
        return img, names
    reader = oci_archive.read if spec.format is Format.OCI_ARCHIVE else oci_layout.read
    return reader(path, spec.ref, platform=platform), []


def write_image(
    store: Store,
    spec: TransportRef,
    image: Image | Platforms,
    names: Sequence[str],
    *,
    on_layer: LayerCallback | None = None,
) -> ImageRecord | None:
    if isinstance(image, Platforms):
        assert spec.path is not None, "check_options refuses --all to lamina:"
        writer = (
            oci_archive.write_all if spec.format is Format.OCI_ARCHIVE else oci_layout.write_all
        )
        writer(spec.path, [(image, spec.ref or _oci_ref(names))])
        return None
    if spec.format is Format.LAMINA:
        target = [reference.normalize(spec.ref)] if spec.ref else list(names)
        return local.write(store, image, names=target, on_layer=on_layer)
    path = spec.path
    assert path is not None
    if spec.format is Format.DOCKER_ARCHIVE:
        tag = spec.ref or (names[0] if names else None)
        docker_archive.write(path, image, tag)
    elif spec.format is Format.OCI_ARCHIVE:
        oci_archive.write(path, image, spec.ref or _oci_ref(names))
    else:
        oci_layout.write(path, image, spec.ref or _oci_ref(names))
    return None


def _oci_ref(names: Sequence[str]) -> str | None:
    # skopeo/podman write the tag alone as ref.name; keep the whole familiar name so a
    # round trip through lamina load restores it.
    return reference.familiar(names[0]) if names else None


def parse_compression(value: str | None) -> Compression | None:
    """``--compress gzip|zstd|none``; None keeps every layer blob as it is."""
    if value is None:
        return None
    try:
        return Compression(value)
    except ValueError:
        raise UsageError(f"--compress {value!r}: choose gzip, zstd or none") from None


def check_options(
    fmt: Format, *, compression: Compression | None, all_platforms: bool = False
) -> None:
    """``--compress`` and ``--all`` only make sense for OCI destinations: docker-archive layers
    are always uncompressed tars, and neither it nor the store holds an index."""
    oci = fmt in (Format.OCI, Format.OCI_ARCHIVE)
    if compression is not None and not oci:
        raise UsageError(
            f"--compress applies to oci: and oci-archive: only ({fmt.value} layers are "
            + ("always uncompressed)" if fmt is Format.DOCKER_ARCHIVE else "stored as given)")
        )
    if all_platforms and not oci:
        raise UsageError(f"--all needs an oci: or oci-archive: destination, not {fmt.value}:")


def _recompressed_platforms(
    stack: contextlib.ExitStack, item: Platforms, compression: Compression, workdir: Path
) -> Platforms:
    children = tuple(
        (desc, stack.enter_context(recompressed(img, compression=compression, workdir=workdir)))
        for desc, img in item.children
    )
    return Platforms(media_type=item.media_type, raw_index=item.raw_index, children=children)


def copy(
    store: Store,
    src: TransportRef,
    dst: TransportRef,
    *,
    platform: Platform | None,
    all_platforms: bool,
    compression: Compression | None,
    resolve: Callable[[str], ImageRecord],
    on_layer: LayerCallback | None = None,
) -> ImageRecord | None:
    """skopeo copy: one image (the host's platform, or ``platform``) or, with
    ``all_platforms``, a whole index; layers recompressed when ``compression`` is given."""
    check_options(dst.format, compression=compression, all_platforms=all_platforms)
    if all_platforms and platform is not None:
        raise UsageError("--all and --platform exclude each other")
    multi: Platforms | None = None
    if all_platforms and src.format in (Format.OCI, Format.OCI_ARCHIVE):
        assert src.path is not None
        reader = oci_archive.platforms if src.format is Format.OCI_ARCHIVE else oci_layout.platforms
        multi = reader(src.path, src.ref)
    with contextlib.ExitStack() as stack:
        item: Image | Platforms
        if multi is not None:
            names: list[str] = []
            item = multi
            if compression is not None:
                work = stack.enter_context(held_temp_dir(store.paths.tmp, prefix="copy-"))
                item = _recompressed_platforms(stack, multi, compression, work)
        else:
            image, names = read_image(store, src, platform=platform, resolve=resolve)
            item = image
            if compression is not None:
                work = stack.enter_context(held_temp_dir(store.paths.tmp, prefix="copy-"))
                item = stack.enter_context(
                    recompressed(image, compression=compression, workdir=work)
                )
        return write_image(store, dst, item, names, on_layer=on_layer)


def save(
    store: Store,
    items: Sequence[tuple[ImageRecord, list[str]]],
    path: Path,
    fmt: Format,
    *,
    compression: Compression | None = None,
    on_layer: LayerCallback | None = None,
) -> None:
    """``docker save``: several images into one archive or layout; layers recompressed when
    ``compression`` is given (OCI formats only), else kept byte for byte."""
    check_options(fmt, compression=compression)
    views = [(observe(local.read(store, rec), on_layer), names) for rec, names in items]
    if fmt is Format.DOCKER_ARCHIVE:
        docker_archive.write_all(path, views)
        return
    if fmt not in (Format.OCI_ARCHIVE, Format.OCI):
        raise UsageError(f"cannot save to {fmt.value}")
    with (
        held_temp_dir(store.paths.tmp, prefix="save-") as work,
        recompressed_all(
            [img for img, _ in views], compression=compression, workdir=work
        ) as images,
    ):
        refs = [_oci_ref(n) for _, n in views]
        writer = oci_archive.write_all if fmt is Format.OCI_ARCHIVE else oci_layout.write_all
        writer(path, list(zip(images, refs, strict=True)))
