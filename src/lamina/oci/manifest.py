"""Image manifests and indexes, OCI and Docker schema 2 (image-spec ``manifest.md``,
``image-index.md``; distribution ``manifest-v2-2.md``).

Parsing keeps nothing but typed values; the caller keeps the raw bytes it hashed. A document is
refused when its kind is ambiguous: a manifest carrying ``manifests`` or an index carrying
``layers``/``config`` (CVE-2021-41190, GHSA-77vh-xpmg-72qh), or a declared media type that
disagrees with the document's own ``mediaType``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from msgspec import Struct, field

from lamina.errors import InvalidManifestError, UnsupportedMediaTypeError
from lamina.oci import fields, mediatype
from lamina.oci.descriptor import Descriptor, Platform, check_media_type
from lamina.oci.gojson import decode_object, encode_json


class Manifest(Struct, frozen=True, kw_only=True):
    """One image: a config descriptor and its layers, base first."""

    config: Descriptor
    layers: tuple[Descriptor, ...]
    media_type: str | None = mediatype.OCI_MANIFEST
    annotations: Mapping[str, str] = field(default_factory=dict)
    subject: Descriptor | None = None
    artifact_type: str | None = None
    schema_version: int = 2

    @classmethod
    def from_json(cls, obj: dict[str, Any], *, what: str = "manifest") -> Manifest:
        _check_schema_version(obj, what=what)
        if "manifests" in obj:
            raise InvalidManifestError(f"{what} has a 'manifests' field: it claims to be an index")
        media_type = fields.opt_str(obj, "mediaType", what=what)
        if media_type is not None and not mediatype.is_manifest(media_type):
            raise InvalidManifestError(f"{what}: mediaType {media_type!r} is not a manifest type")
        layers_json = fields.opt_list(obj, "layers", what=what)
        if layers_json is None:
            raise InvalidManifestError(f"{what}: required field 'layers' is missing")
        subject = obj.get("subject")
        artifact_type = fields.opt_str(obj, "artifactType", what=what)
        if artifact_type is not None:
            check_media_type(artifact_type, what=f"{what} artifactType")
        return cls(
            media_type=media_type,
            config=Descriptor.from_json(obj.get("config"), what=f"{what} config"),
            layers=tuple(
                Descriptor.from_json(d, what=f"{what} layers[{i}]")
                for i, d in enumerate(layers_json)
            ),
            annotations=fields.opt_str_map(obj, "annotations", what=what),
            subject=None
            if subject is None
            else Descriptor.from_json(subject, what=f"{what} subject"),
            artifact_type=artifact_type,
        )

    def to_json(self) -> dict[str, Any]:
        # Go ocispec.Manifest field order, omitempty.
        out: dict[str, Any] = {"schemaVersion": self.schema_version}
        if self.media_type:
            out["mediaType"] = self.media_type
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        out["config"] = self.config.to_json()
        out["layers"] = [d.to_json() for d in self.layers]
        if self.subject is not None:
            out["subject"] = self.subject.to_json()
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    def encode(self) -> bytes:
        """Canonical bytes for a manifest lamina writes (hash these, then keep them)."""
        return encode_json(self.to_json())

    @property
    def is_docker(self) -> bool:
        return self.media_type == mediatype.DOCKER_MANIFEST


class Index(Struct, frozen=True, kw_only=True):
    """Several manifests (usually one per platform), or a layout's ``index.json``."""

    manifests: tuple[Descriptor, ...]
    media_type: str | None = mediatype.OCI_INDEX
    annotations: Mapping[str, str] = field(default_factory=dict)
    subject: Descriptor | None = None
    artifact_type: str | None = None
    schema_version: int = 2

    @classmethod
    def from_json(cls, obj: dict[str, Any], *, what: str = "index") -> Index:
        _check_schema_version(obj, what=what)
        for key in ("layers", "config"):
            if key in obj:
                raise InvalidManifestError(
                    f"{what} has a {key!r} field: it claims to be a manifest"
                )
        media_type = fields.opt_str(obj, "mediaType", what=what)
        if media_type is not None and not mediatype.is_index(media_type):
            raise InvalidManifestError(f"{what}: mediaType {media_type!r} is not an index type")
        manifests_json = fields.opt_list(obj, "manifests", what=what)
        if manifests_json is None:
            raise InvalidManifestError(f"{what}: required field 'manifests' is missing")
        subject = obj.get("subject")
        artifact_type = fields.opt_str(obj, "artifactType", what=what)
        if artifact_type is not None:
            check_media_type(artifact_type, what=f"{what} artifactType")
        return cls(
            media_type=media_type,
            manifests=tuple(
                Descriptor.from_json(d, what=f"{what} manifests[{i}]")
                for i, d in enumerate(manifests_json)
            ),
            annotations=fields.opt_str_map(obj, "annotations", what=what),
            subject=None
            if subject is None
            else Descriptor.from_json(subject, what=f"{what} subject"),
            artifact_type=artifact_type,
        )

    def to_json(self) -> dict[str, Any]:
        # Go ocispec.Index field order, omitempty.
        out: dict[str, Any] = {"schemaVersion": self.schema_version}
        if self.media_type:
            out["mediaType"] = self.media_type
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        out["manifests"] = [d.to_json() for d in self.manifests]
        if self.subject is not None:
            out["subject"] = self.subject.to_json()
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    def encode(self) -> bytes:
        return encode_json(self.to_json())

    def select(self, platform: Platform) -> Descriptor | None:
        """The first entry whose platform matches (image-spec: first match SHOULD win).

        Entries without a platform are not candidates; an index of one platform-less manifest is
        the caller's business (a layout's ``index.json`` is usually exactly that).
        """
        for desc in self.manifests:
            if desc.platform is not None and platform.matches(desc.platform):
                return desc
        return None


def _check_schema_version(obj: dict[str, Any], *, what: str) -> None:
    version = obj.get("schemaVersion")
    if isinstance(version, bool):  # JSON true == 1 in Python
        raise InvalidManifestError(f"{what}: schemaVersion must be 2, got {version!r}")
    if version == 1:
        raise UnsupportedMediaTypeError(mediatype.DOCKER_MANIFEST_V1, what=f"{what} (schema 1)")
    if version != 2:
        raise InvalidManifestError(f"{what}: schemaVersion must be 2, got {version!r}")


def parse_manifest(raw: bytes, media_type: str | None = None) -> Manifest | Index:
    """Parse a manifest or index from its exact bytes.

    ``media_type`` is what the referring descriptor (or HTTP Content-Type) declared. The kind is
    decided by it, else by the document's ``mediaType``, else by its fields; a declared type and
    a document type that disagree make the document invalid. Unknown declared types are refused
    with :class:`UnsupportedMediaTypeError` (the caller treats such blobs as opaque).
    """
    obj = decode_object(raw, what="manifest")
    own = obj.get("mediaType")
    if own is not None and not isinstance(own, str):
        raise InvalidManifestError("manifest: field 'mediaType' must be a string")
    if media_type is not None and own is not None and own != media_type:
        raise InvalidManifestError(f"manifest declared as {media_type!r} says it is {own!r}")
    kind = media_type or own
    if kind is None:
        if "manifests" in obj:
            return Index.from_json(obj)
        if "layers" in obj or "config" in obj:
            return Manifest.from_json(obj)
        raise InvalidManifestError("document is neither a manifest nor an index")
    if mediatype.is_index(kind):
        return Index.from_json(obj)
    if mediatype.is_manifest(kind):
        return Manifest.from_json(obj)
    if kind in (mediatype.DOCKER_MANIFEST_V1, mediatype.DOCKER_MANIFEST_V1_SIGNED):
        raise UnsupportedMediaTypeError(kind, what="manifest (Docker schema 1 is obsolete)")
    raise UnsupportedMediaTypeError(kind, what="manifest")


def docker_manifest(*, config: Descriptor, layers: Sequence[Descriptor]) -> Manifest:
    """A Docker schema 2 manifest (no annotations, no subject: schema 2 has neither)."""
    return Manifest(media_type=mediatype.DOCKER_MANIFEST, config=config, layers=tuple(layers))
