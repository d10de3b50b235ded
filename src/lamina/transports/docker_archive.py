"""``docker-archive:FILE[:REF]`` — the ``docker save`` / ``docker load`` tar.

Read: ``manifest.json`` (``[{"Config", "RepoTags", "Layers"}]``) drives everything, so every
flavour seen in the wild reads the same way: Docker 20.10's ``<v1id>/layer.tar`` (a repeated
layer may be a symlink to its first copy: followed *inside* the archive only), skopeo/podman's
top-level ``<diffid>.tar``, and Docker 25+'s ``blobs/sha256/<diffid>`` with an OCI layout
alongside — whose real manifest is used when it describes the same config, so the manifest
digest matches Docker's. Otherwise a Docker schema 2 manifest is synthesised canonically.
REF picks an image by one of its RepoTags (normalised, so ``busybox`` finds
``docker.io/library/busybox:latest``) or by position (``@0``); without REF the archive must
hold exactly one image.

Write: the skopeo/podman form — ``<config hex>.json``, one uncompressed ``<diffid hex>.tar`` per
distinct layer, ``manifest.json`` and ``repositories``, without the legacy ``<v1id>/`` dirs.
``docker load`` (20.10 and later) reads only manifest.json when it is present, as do podman and
skopeo; the legacy dirs would only matter to Docker < 1.10, and their v1 ids would have to be
invented. Layers are stored uncompressed because that is what every loader expects and what
makes file name = diff_id; compressed layers are inflated on the way (verified against their
diff_id), so the config bytes and diff_ids — the image id — are unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from msgspec import Struct

from lamina.archive.compression import Compression, detect
from lamina.atomic import atomic_writer
from lamina.digest import Digest, Hasher
from lamina.errors import (
    DigestMismatchError,
    ImageNotFoundError,
    InvalidManifestError,
    UsageError,
)
from lamina.image.base import MAX_DOCUMENT_BYTES, ImageBase
from lamina.image.layers import DescribedLayer
from lamina.image.model import Image, Layer
from lamina.oci import mediatype, reference
from lamina.oci.config import ImageConfig
from lamina.oci.descriptor import Descriptor
from lamina.oci.gojson import encode_json
from lamina.oci.manifest import Manifest
from lamina.transports import layout
from lamina.transports.source import TarSource, safe_name
from lamina.transports.tarout import TarOut

MANIFEST_FILE: Final = "manifest.json"
REPOSITORIES_FILE: Final = "repositories"
_HEX_NAME_RE: Final = re.compile(r"(?:.*/)?(?:sha256/)?([a-f0-9]{64})(?:\.json|\.tar)?")
_DETECT_BYTES: Final = 512


class ArchivedImage(Struct, frozen=True, kw_only=True):
    """One ``manifest.json`` entry: the image and the names it was saved under."""

    repo_tags: tuple[str, ...]  # as written (familiar form, e.g. "busybox:latest")
    image: Image

    @property
    def names(self) -> tuple[str, ...]:
        """RepoTags normalised (``docker.io/library/busybox:latest``)."""
        return tuple(reference.normalize(t) for t in self.repo_tags)


def _member_layer(source: TarSource, member: str, *, desc: Descriptor, diff_id: Digest) -> Layer:
    return DescribedLayer(desc, diff_id=diff_id, opener=lambda: source.open(member))


class ArchiveImage(ImageBase):
    """An image of a docker-archive with a synthesised Docker schema 2 manifest."""

    def __init__(self, source: TarSource, raw_config: bytes, layers: Sequence[Layer]) -> None:
        super().__init__(declared_media_type=mediatype.DOCKER_MANIFEST)
        self._raw_config_bytes = raw_config
        self._layer_by_digest = {la.digest: la for la in layers}
        manifest = Manifest(
            media_type=mediatype.DOCKER_MANIFEST,
            config=Descriptor.of(mediatype.DOCKER_CONFIG, raw_config),
            layers=tuple(
                Descriptor(media_type=la.media_type, digest=la.digest, size=la.size)
                for la in layers
            ),
        )
        self._raw = manifest.encode()

    @property
    def raw_manifest(self) -> bytes:
        return self._raw

    def _read_blob(self, desc: Descriptor) -> bytes:
        return self._raw_config_bytes

    def _layer(self, desc: Descriptor, diff_id: Digest) -> Layer:
        return self._layer_by_digest[desc.digest]


def _str_list(item: dict[str, Any], key: str, i: int) -> list[str]:
    value = item.get(key)
    if value is None and key == "RepoTags":
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidManifestError(f"{MANIFEST_FILE}[{i}].{key} must be an array of strings")
    return value


def _repo_tags(item: dict[str, Any], i: int) -> list[str]:
    """The item's RepoTags, each checked: one that is no reference is the archive's fault
    (InvalidManifestError, exit 1), not a usage error in the command line (exit 2)."""
    tags = _str_list(item, "RepoTags", i)
    for tag in tags:
        try:
            reference.normalize(tag)
        except UsageError as exc:
            raise InvalidManifestError(f"{MANIFEST_FILE}[{i}].RepoTags: {exc}") from exc
    return tags


def _check_named_digest(member: str, actual: Digest, what: str) -> None:
    """A member named after a digest (``<hex>.json``, ``blobs/sha256/<hex>``) must hash to it."""
    m = _HEX_NAME_RE.fullmatch(member)
    if m and "/" not in member.removeprefix("blobs/sha256/") and m.group(1) != actual.hex:
        raise DigestMismatchError(expected=f"sha256:{m.group(1)}", actual=actual, what=what)


def _manifest_items(source: TarSource) -> list[dict[str, Any]]:
    if not source.exists(MANIFEST_FILE):
        raise InvalidManifestError(
            "not a docker-archive: it has no manifest.json (pre-1.10 Docker archives are not"
            " supported)"
        )
    if source.size(MANIFEST_FILE) > MAX_DOCUMENT_BYTES:
        raise InvalidManifestError(f"{MANIFEST_FILE} is larger than {MAX_DOCUMENT_BYTES} bytes")
    with source.open(MANIFEST_FILE) as f:
        try:
            items = json.loads(f.read())
        except (ValueError, RecursionError) as exc:
            raise InvalidManifestError(f"{MANIFEST_FILE} is not valid JSON: {exc}") from exc
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise InvalidManifestError(f"{MANIFEST_FILE} must be an array of objects")
    return items


def _layer(source: TarSource, member: str, diff_id: Digest, i: int) -> Layer:
    size = source.size(member)
    with source.open(member) as f:
        head = f.read(_DETECT_BYTES)
    compression = detect(head)
    if compression is Compression.NONE:
        # Uncompressed: the blob is the tar, so its digest is the diff_id (verified on read).
        desc = Descriptor(media_type=mediatype.DOCKER_LAYER, digest=diff_id, size=size)
        return _member_layer(source, member, desc=desc, diff_id=diff_id)
    # Compressed layers (some hand-made archives): the blob digest costs one hashing pass.
    hasher = Hasher()
    with source.open(member) as f:
        while chunk := f.read(1 << 20):
            hasher.update(chunk)
    media_type = (
        mediatype.DOCKER_LAYER_GZIP if compression is Compression.GZIP else mediatype.OCI_LAYER_ZSTD
    )
    desc = Descriptor(media_type=media_type, digest=hasher.digest(), size=size)
    return _member_layer(source, member, desc=desc, diff_id=diff_id)


def _from_layout(source: TarSource, image_id: Digest) -> Image | None:
    """Docker 25+: the real manifest from the OCI layout inside, if one describes ``image_id``."""
    if not (source.exists(layout.LAYOUT_FILE) and source.exists(layout.INDEX_FILE)):
        return None
    for entry in layout.entries(source):
        if entry.image.image_id == image_id:
            return entry.image
    return None


def _image(source: TarSource, item: dict[str, Any], i: int) -> ArchivedImage:
    config_member = item.get("Config")
    if not isinstance(config_member, str):
        raise InvalidManifestError(f"{MANIFEST_FILE}[{i}].Config must be a string")
    config_member = safe_name(config_member)
    size = source.size(config_member)
    if size > MAX_DOCUMENT_BYTES:
        raise InvalidManifestError(f"{config_member} is larger than {MAX_DOCUMENT_BYTES} bytes")
    with source.open(config_member) as f:
        raw_config = f.read()
    image_id = Digest.of(raw_config)
    _check_named_digest(config_member, image_id, "image config")
    config = ImageConfig.from_bytes(raw_config)
    members = [safe_name(m) for m in _str_list(item, "Layers", i)]
    if len(members) != len(config.diff_ids):
        raise InvalidManifestError(
            f"{MANIFEST_FILE}[{i}] lists {len(members)} layers but the config has"
            f" {len(config.diff_ids)} diff_ids"
        )
    tags = tuple(_repo_tags(item, i))
    inner = _from_layout(source, image_id)
    if inner is not None:
        return ArchivedImage(repo_tags=tags, image=inner)
    layers = [_layer(source, m, d, i) for m, d in zip(members, config.diff_ids, strict=True)]
    return ArchivedImage(repo_tags=tags, image=ArchiveImage(source, raw_config, layers))


def read_all(path: Path) -> list[ArchivedImage]:
    """Every image of the archive, in ``manifest.json`` order (what ``load`` imports)."""
    source = TarSource(path, follow_links=True)
    return [_image(source, item, i) for i, item in enumerate(_manifest_items(source))]


def read(path: Path, ref: str | None = None) -> Image:
    """The image tagged ``ref`` (or ``@N``: the N-th), or the only one when ``ref`` is None."""
    source = TarSource(path, follow_links=True)
    items = _manifest_items(source)
    if ref is not None and ref.startswith("@"):
        if not (ref[1:].isascii() and ref[1:].isdigit()) or int(ref[1:]) >= len(items):
            raise ImageNotFoundError(f"{path} has {len(items)} images; no {ref}")
        return _image(source, items[int(ref[1:])], int(ref[1:])).image
    if ref is None:
        if len(items) != 1:
            raise UsageError(f"{path} holds {len(items)} images; name one with :REF or :@N")
        return _image(source, items[0], 0).image
    wanted = reference.normalize(ref)
    for i, item in enumerate(items):
        tags = _repo_tags(item, i)
        if any(reference.normalize(t) == wanted for t in tags):
            return _image(source, item, i).image
    raise ImageNotFoundError(f"no image tagged {ref} in {path}")


# --- write ----------------------------------------------------------------------------------


def _repositories(items: Sequence[tuple[Image, Sequence[str]]]) -> bytes:
    repos: dict[str, dict[str, str]] = {}
    for image, names in items:
        top = image.config.diff_ids[-1].hex if image.config.diff_ids else ""
        for name in names:
            ref = reference.parse(name)
            if ref.tag is not None:
                repo = reference.familiar(ref.name)
                repos.setdefault(repo, {})[ref.tag] = top
    return encode_json(repos)


def write_all(path: Path, items: Sequence[tuple[Image, Sequence[str]]]) -> None:
    """A new archive at ``path`` holding every image with its names (``docker save a b``).

    Names are written in Docker's familiar form (``busybox:latest``); as ``docker save``, an
    image named twice (``save a a``, or two tags of one image) is one entry listing each name
    once, and a layer shared by several images is stored once.
    """
    items = _grouped(items)
    manifest: list[dict[str, Any]] = []
    for image, names in items:
        manifest.append(
            {
                "Config": f"{image.image_id.hex}.json",
                "RepoTags": [reference.familiar(reference.normalize(n)) for n in names] or None,
                "Layers": [f"{d.hex}.tar" for d in image.config.diff_ids],
            }
        )
    with atomic_writer(path) as f:
        tar = TarOut(f)
        # manifest.json first: a streaming reader learns the whole plan before any layer.
        tar.add_bytes(MANIFEST_FILE, encode_json(manifest) + b"\n")
        tar.add_bytes(REPOSITORIES_FILE, _repositories(items) + b"\n")
        written: set[str] = set()
        for image, _names in items:
            config_name = f"{image.image_id.hex}.json"
            if config_name not in written:
                written.add(config_name)
                tar.add_bytes(config_name, image.raw_config)  # verified by the image view
            for layer in image.layers():
                name = f"{layer.diff_id.hex}.tar"
                if name in written:
                    continue
                written.add(name)
                known = layer.size if layer.digest == layer.diff_id else None
                with layer.open_uncompressed() as src:
                    tar.add_stream(name, src, known)
        tar.close()


def _grouped(items: Sequence[tuple[Image, Sequence[str]]]) -> list[tuple[Image, list[str]]]:
    """``items`` with one entry per image (first appearance first) and its names merged,
    each normalised name once."""
    groups: dict[Digest, tuple[Image, list[str]]] = {}
    for image, names in items:
        _, merged = groups.setdefault(image.image_id, (image, []))
        for name in names:
            if reference.normalize(name) not in map(reference.normalize, merged):
                merged.append(name)
    return list(groups.values())


def write(path: Path, image: Image, ref: str | None = None) -> None:
    """A new archive at ``path`` holding ``image``, tagged ``ref`` when given."""
    write_all(path, [(image, [ref] if ref else [])])
