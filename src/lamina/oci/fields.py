"""Strict readers for fields of parsed OCI JSON documents.

Each returns the typed value or raises :class:`~lamina.errors.InvalidManifestError` naming the
document and field, so the codecs stay declarative. ``null`` counts as absent (image-spec:
"any OPTIONAL field may be null").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lamina.errors import InvalidManifestError

_MISSING: Any = object()


def _bad(what: str, key: str, expected: str, value: Any) -> InvalidManifestError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return InvalidManifestError(f"{what}: field {key!r} must be {expected}, got {shown}")


def req_str(obj: Mapping[str, Any], key: str, *, what: str) -> str:
    value = obj.get(key)
    if value is None:
        raise InvalidManifestError(f"{what}: required field {key!r} is missing")
    if not isinstance(value, str):
        raise _bad(what, key, "a string", value)
    return value


def opt_str(obj: Mapping[str, Any], key: str, *, what: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(what, key, "a string", value)
    return value


def req_int(obj: Mapping[str, Any], key: str, *, what: str, minimum: int = 0) -> int:
    value = obj.get(key)
    if value is None:
        raise InvalidManifestError(f"{what}: required field {key!r} is missing")
    # bool is an int subclass in Python; JSON true is not a size.
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise _bad(what, key, f"an integer >= {minimum}", value)
    if value > (1 << 63) - 1:
        raise _bad(what, key, "an int64", value)
    return value


def opt_bool(obj: Mapping[str, Any], key: str, *, what: str) -> bool:
    value = obj.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _bad(what, key, "a boolean", value)
    return value


def opt_str_list(obj: Mapping[str, Any], key: str, *, what: str) -> tuple[str, ...] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(what, key, "an array of strings", value)
    return tuple(value)


def opt_str_map(obj: Mapping[str, Any], key: str, *, what: str) -> dict[str, str]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _bad(what, key, "an object of strings", value)
    return dict(value)


def opt_object(obj: Mapping[str, Any], key: str, *, what: str) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad(what, key, "an object", value)
    return value


def opt_list(obj: Mapping[str, Any], key: str, *, what: str) -> list[Any] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise _bad(what, key, "an array", value)
    return value
