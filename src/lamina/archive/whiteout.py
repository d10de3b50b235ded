"""Whiteout names and overlay xattr escaping: the vocabulary shared by the layer reader,
the extractor and the writer.

In an OCI layer tar, ``d/.wh.x`` deletes ``d/x`` of the lower layers and ``d/.wh..wh..opq`` hides
every lower child of ``d``. In an overlayfs upper/lower dir the same facts are a char device 0:0
named ``x`` and the xattr ``trusted.overlay.opaque=y`` on ``d``.

Other ``.wh..wh.*`` names are AUFS metadata (``.wh..wh.plnk`` hardlink staging, ``.wh..wh.aufs``,
``.wh..wh.orph``); lamina drops them on read, as Docker's ``docker diff`` skips them. A bare
``.wh.``, ``.wh..`` and ``.wh...`` name nothing and are invalid (as in moby's go-archive).

Overlay interprets ``trusted.overlay.*`` (and ``user.overlay.*`` with ``userxattr``) on layer
files, so image-supplied xattrs in those namespaces are *escaped* before they reach a layer dir:
``trusted.overlay.X`` is stored as ``trusted.overlay.overlay.X``, which overlayfs (kernel >= 6.7)
presents as ``trusted.overlay.X`` in the merged view and never acts on.
"""

from __future__ import annotations

import enum
from typing import Final

WHITEOUT_PREFIX: Final = ".wh."
WHITEOUT_META_PREFIX: Final = ".wh..wh."
OPAQUE_MARKER: Final = ".wh..wh..opq"

# What overlayfs uses in an upper/lower dir.
WHITEOUT_DEVICE: Final = (0, 0)  # char device major:minor
OPAQUE_XATTR: Final = "trusted.overlay.opaque"
OPAQUE_XATTR_VALUE: Final = b"y"

_OVERLAY_XATTR_PREFIXES: Final = ("trusted.overlay.", "user.overlay.")
_ESCAPE: Final = "overlay."


class NameClass(enum.Enum):
    NORMAL = "normal"
    WHITEOUT = "whiteout"  # ``.wh.<name>``: deletes ``<name>``
    OPAQUE = "opaque"  # ``.wh..wh..opq``: hides the lower children of the parent dir
    META = "meta"  # other ``.wh..wh.*`` (AUFS metadata): dropped
    INVALID = "invalid"  # ``.wh.``, ``.wh..``, ``.wh...``


def classify(basename: str) -> tuple[NameClass, str]:
    """Classify one path component; for WHITEOUT also return the name it deletes."""
    if not basename.startswith(WHITEOUT_PREFIX):
        return NameClass.NORMAL, basename
    if basename == OPAQUE_MARKER:
        return NameClass.OPAQUE, ""
    if basename.startswith(WHITEOUT_META_PREFIX):
        return NameClass.META, ""
    target = basename[len(WHITEOUT_PREFIX) :]
    if target in ("", ".", ".."):
        return NameClass.INVALID, ""
    return NameClass.WHITEOUT, target


def whiteout_name(basename: str) -> str:
    """The tar basename that deletes ``basename``."""
    return WHITEOUT_PREFIX + basename


def is_overlay_xattr(name: str) -> bool:
    """True for names in a namespace overlayfs interprets on layer files."""
    return name.startswith(_OVERLAY_XATTR_PREFIXES)


def escape_xattr_name(name: str) -> str:
    """Name to store an image-supplied xattr under in an overlay layer dir.

    ``trusted.overlay.X`` -> ``trusted.overlay.overlay.X`` (likewise ``user.overlay.``);
    any other name is returned unchanged."""
    for prefix in _OVERLAY_XATTR_PREFIXES:
        if name.startswith(prefix):
            return prefix + _ESCAPE + name[len(prefix) :]
    return name


def unescape_xattr_name(name: str) -> str | None:
    """Inverse of :func:`escape_xattr_name` for a name read from a layer dir.

    Returns the image's original name, the name itself outside the overlay namespaces, or
    ``None`` for overlayfs's own (unescaped) xattrs such as ``trusted.overlay.opaque``, which are
    not image content."""
    for prefix in _OVERLAY_XATTR_PREFIXES:
        if name.startswith(prefix):
            rest = name[len(prefix) :]
            if rest.startswith(_ESCAPE):
                return prefix + rest[len(_ESCAPE) :]
            return None
    return name
