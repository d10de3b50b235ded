"""Content descriptors and platforms (image-spec ``descriptor.md``, ``image-index.md``).

A :class:`Descriptor` names a blob by media type, digest and size. ``from_json`` is strict about
what the spec requires (digest grammar, an int64 size >= 0, embedded ``data`` that matches) and
lenient about what it allows (unknown media types, unknown annotations).
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping
from typing import Any, Final

from msgspec import Struct, field
from msgspec.structs import force_setattr

from lamina.digest import Digest
from lamina.errors import DigestMismatchError, InvalidManifestError, SizeMismatchError, UsageError
from lamina.oci import fields

# defs-descriptor.json#/definitions/mediaType (RFC 6838 shape).
_MEDIA_TYPE_RE: Final = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
)


def check_media_type(value: str, *, what: str) -> str:
    if _MEDIA_TYPE_RE.fullmatch(value) is None:
        raise InvalidManifestError(f"{what}: {value[:100]!r} is not a media type")
    return value


class Platform(Struct, frozen=True, kw_only=True):
    """Where an image runs: GOOS/GOARCH names, as in an index entry's ``platform``."""

    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()

    @classmethod
    def host(cls) -> Platform:
        """The platform lamina selects by default. lamina runs on linux/amd64 only for now."""
        return cls(os="linux", architecture="amd64")

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``os/arch[/variant]`` as ``--platform`` takes it (``linux/arm64/v8``)."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise UsageError(f"invalid platform {text!r}: expected OS/ARCH[/VARIANT]")
        return cls(
            os=parts[0].lower(),
            architecture=parts[1].lower(),
            variant=parts[2].lower() if len(parts) == 3 else None,
        )

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base

    def matches(self, candidate: Platform) -> bool:
        """Whether ``candidate`` (an index entry's platform) satisfies this wanted platform.

        A wanted field left unset matches anything. The variant an architecture implies when
        none is written (arm64 → v8, amd64 → v1) counts as written, as containerd's matcher does.
        """
        if self.os != candidate.os or self.architecture != candidate.architecture:
            return False
        if self.variant is not None:
            implied = _DEFAULT_VARIANT.get(candidate.architecture)
            if (candidate.variant or implied) != self.variant:
                return False
        return self.os_version is None or candidate.os_version == self.os_version

    @classmethod
    def from_json(cls, obj: Any, *, what: str = "platform") -> Platform:
        if not isinstance(obj, dict):
            raise InvalidManifestError(f"{what} is not a JSON object")
        return cls(
            os=fields.req_str(obj, "os", what=what),
            architecture=fields.req_str(obj, "architecture", what=what),
            variant=fields.opt_str(obj, "variant", what=what),
            os_version=fields.opt_str(obj, "os.version", what=what),
            os_features=fields.opt_str_list(obj, "os.features", what=what) or (),
        )

    def to_json(self) -> dict[str, Any]:
        # Go ocispec.Platform field order, omitempty.
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        if self.variant:
            out["variant"] = self.variant
        return out


_DEFAULT_VARIANT: Final = {"arm64": "v8", "amd64": "v1"}


class Descriptor(Struct, frozen=True, kw_only=True):
    """A typed pointer to a blob (``application/vnd.oci.descriptor.v1+json``)."""

    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    urls: tuple[str, ...] = ()
    data: bytes | None = None  # embedded blob content (decoded from base64)
    artifact_type: str | None = None

    def __post_init__(self) -> None:
        # Constructed descriptors get the same guarantees as parsed ones.
        if not isinstance(self.digest, Digest):
            force_setattr(self, "digest", Digest(self.digest))
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise InvalidManifestError(f"descriptor size must be an integer >= 0: {self.size!r}")

    @classmethod
    def of(cls, media_type: str, blob: bytes, **kw: Any) -> Descriptor:
        """The descriptor of ``blob`` (digest and size computed here)."""
        return cls(media_type=media_type, digest=Digest.of(blob), size=len(blob), **kw)

    @classmethod
    def from_json(cls, obj: Any, *, what: str = "descriptor") -> Descriptor:
        if not isinstance(obj, dict):
            raise InvalidManifestError(f"{what} is not a JSON object")
        media_type = check_media_type(fields.req_str(obj, "mediaType", what=what), what=what)
        digest_text = fields.req_str(obj, "digest", what=what)
        digest = Digest(digest_text)  # InvalidDigestError for anything not sha256:<64 hex>
        size = fields.req_int(obj, "size", what=what)
        artifact_type = fields.opt_str(obj, "artifactType", what=what)
        if artifact_type is not None:
            check_media_type(artifact_type, what=f"{what} artifactType")
        platform_obj = obj.get("platform")
        platform = (
            None
            if platform_obj is None
            else Platform.from_json(platform_obj, what=f"{what} platform")
        )
        data = _decode_data(obj.get("data"), what=what)
        if data is not None:
            # descriptor.md: embedded data MUST match the digest and size.
            if len(data) != size:
                raise SizeMismatchError(expected=size, actual=len(data), what=f"{what} data")
            actual = Digest.of(data)
            if actual != digest:
                raise DigestMismatchError(expected=digest, actual=actual, what=f"{what} data")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            annotations=fields.opt_str_map(obj, "annotations", what=what),
            platform=platform,
            urls=fields.opt_str_list(obj, "urls", what=what) or (),
            data=data,
            artifact_type=artifact_type,
        )

    def to_json(self) -> dict[str, Any]:
        # Go ocispec.Descriptor field order, omitempty.
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.data is not None:
            out["data"] = binascii.b2a_base64(self.data, newline=False).decode("ascii")
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out


def _decode_data(value: Any, *, what: str) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidManifestError(f"{what}: field 'data' must be a base64 string")
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidManifestError(f"{what}: field 'data' is not valid base64") from exc
