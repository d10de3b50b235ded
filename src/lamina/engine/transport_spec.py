"""Transport specs (skopeo's names): ``oci:DIR[:REF]``, ``oci-archive:FILE[:REF]``,
``docker-archive:FILE[:REF]``, ``lamina:REF``. Kept apart from :mod:`lamina.engine.transfer`
so that asking whether a name is a spec (``inspect``, ``history``, the forensics verbs take
either) loads none of the transports."""

from __future__ import annotations

import enum
from pathlib import Path

from msgspec import Struct

from lamina.errors import UsageError


class Format(enum.Enum):
    DOCKER_ARCHIVE = "docker-archive"
    OCI_ARCHIVE = "oci-archive"
    OCI = "oci"
    LAMINA = "lamina"


PREFIXES = {f"{f.value}:": f for f in Format}


class TransportRef(Struct, frozen=True, kw_only=True):
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
