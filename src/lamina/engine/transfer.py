"""Moving images between media: ``load``, ``save``, ``copy``, and transport specs.

A transport spec is ``oci:DIR[:REF]``, ``oci-archive:FILE[:REF]``, ``docker-archive:FILE[:REF]``
or ``lamina:REF`` (skopeo's names). The path ends at the first ``:`` after the prefix (as skopeo
parses them), so a REF may itself hold colons (``docker-archive:x.tar:busybox:latest``).
"""

from __future__ import annotations

import contextlib
import enum
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lamina.errors import InvalidManifestError, UsageError
from lamina.image.model import Image, Layer
from lamina.oci import reference
from lamina.oci.descriptor import Platform
from lamina.store.images import ImageRecord
from lamina.store.store import Store
from lamina.transports import docker_archive, local, oci_archive, oci_layout


class Format(enum.Enum):
    DOCKER_ARCHIVE = "docker-archive"
    OCI_ARCHIVE = "oci-archive"
    OCI = "oci"
    LAMINA = "lamina"


PREFIXES = {f"{f.value}:": f for f in Format}


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportRef:
    format: Format
    path: Path | None  # None for lamina:
    ref: str | None


def is_transport(spec: str) -> bool:
    return any(spec.startswith(p) for p in PREFIXES)


def parse_transport(spec: str) -> TransportRef:
    for prefix, fmt in PREFIXES.items():
        if spec.startswith(prefix):
            rest = spec[len(prefix) :]
            if fmt is Format.LAMINA:
                if not rest:
                    raise UsageError(f"{spec!r}: lamina: needs an image reference")
                return TransportRef(format=fmt, path=None, ref=rest)
            path, sep, ref = rest.partition(":")
            if not path:
                raise UsageError(f"{spec!r}: missing path after {prefix}")
            return TransportRef(format=fmt, path=Path(path), ref=ref if sep and ref else None)
    raise UsageError(
        f"{spec!r} is not a transport (use oci:DIR[:REF], oci-archive:FILE[:REF], "
        "docker-archive:FILE[:REF] or lamina:REF)"
    )


LayerCallback = Callable[[int, int, Layer], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Loaded:
    record: ImageRecord
    names: tuple[str, ...]


def detect_archive(path: Path) -> Format:
    """docker-archive when ``manifest.json`` is there (Docker 25+ writes both it and an OCI
    layout: ``docker load`` reads manifest.json), else oci-archive when ``index.json`` is."""
    if path.is_dir():
        return Format.OCI
    try:
        with tarfile.open(path, "r:") as tf:
            names = {m.name.removeprefix("./") for m in tf.getmembers()}
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


@contextlib.contextmanager
def spooled(stream: IO[bytes], *, store: Store) -> Iterator[Path]:
    """Copy a stream (stdin) to a temp file in the store's tmp dir: the readers need to seek."""
    fd, name = tempfile.mkstemp(prefix="load-", suffix=".tar", dir=store.paths.tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            shutil.copyfileobj(stream, f, 1 << 20)
        yield Path(name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


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
    """``docker load``: every image of the archive, with its names."""
    fmt = detect_archive(path)
    out = []
    for image, names in images_in(path, fmt, platform=platform):
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
    image: Image,
    names: Sequence[str],
    *,
    on_layer: LayerCallback | None = None,
) -> ImageRecord | None:
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


def save(
    store: Store, items: Sequence[tuple[ImageRecord, list[str]]], path: Path, fmt: Format
) -> None:
    """``docker save``: several images into one archive or layout."""
    views = [(local.read(store, rec), names) for rec, names in items]
    if fmt is Format.DOCKER_ARCHIVE:
        docker_archive.write_all(path, views)
    elif fmt is Format.OCI_ARCHIVE:
        oci_archive.write_all(path, [(img, _oci_ref(n)) for img, n in views])
    elif fmt is Format.OCI:
        oci_layout.write_all(path, [(img, _oci_ref(n)) for img, n in views])
    else:
        raise UsageError(f"cannot save to {fmt.value}")
