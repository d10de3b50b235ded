"""JSON bytes as Go's ``encoding/json`` writes them, for documents lamina creates.

Go output is compact, keeps non-ASCII as UTF-8, escapes ``<``, ``>``, ``&``, U+2028 and U+2029 as
``\\u003c``-style escapes (HTML safety) and writes the control characters Python shortens to
``\\b``/``\\f`` as ``\\u0008``/``\\u000c``. Matching it byte for byte keeps lamina's digests equal
to Docker's for the same document. Key order is the caller's: build dicts in the order Go would.
Loaded documents are never re-encoded (their digests are over the original bytes).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

from lamina.errors import InvalidManifestError

_HTML_ESCAPES: Final = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_HTML_RE: Final = re.compile("[<>&\u2028\u2029]")
# Match escape pairs left to right so an escaped backslash followed by "b" is left alone.
_SHORT_ESCAPE_RE: Final = re.compile(r"\\(.)")
_GO_SHORT: Final = {"b": "\\u0008", "f": "\\u000c"}


def _go_escape(match: re.Match[str]) -> str:
    return _GO_SHORT.get(match.group(1), match.group(0))


def encode_json(obj: Any) -> bytes:
    """Compact Go-style JSON bytes of ``obj`` (no trailing newline)."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    text = _SHORT_ESCAPE_RE.sub(_go_escape, text)
    text = _HTML_RE.sub(lambda m: _HTML_ESCAPES[m.group(0)], text)
    return text.encode("utf-8")


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(key)
        out[key] = value
    return out


class _NumberError(ValueError):
    pass


def _no_constants(name: str) -> Any:
    raise _NumberError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NumberError(f"{text[:40]} is out of range for a float64")
    return value


# A \uD800-\uDFFF escape (maybe preceded by escaped backslashes, hence the false positives a
# cheap test may have): only documents that match are walked for lone surrogates.
_SURROGATE_ESCAPE_RE: Final = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE_RE: Final = re.compile("[\ud800-\udfff]")


def _go_strings(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with every lone surrogate in its strings (keys too) replaced by U+FFFD, as Go's
    decoder replaces an unpaired ``\\ud800`` escape: Python keeps it, and a str holding one
    cannot be encoded, so any verb that printed or used it as a path exited 70. Iterative:
    a document nests as deep as the decoder allowed."""

    def fix(value: Any) -> Any:
        if isinstance(value, str):
            return _LONE_SURROGATE_RE.sub("\ufffd", value)
        if isinstance(value, dict):
            fixed = {fix(k): v for k, v in value.items()}
            if len(fixed) != len(value):  # two keys that differed only in lone surrogates
                raise _DuplicateKeyError(next(k for k in fixed if "\ufffd" in k))
            stack.append(fixed)
            return fixed
        if isinstance(value, list):
            stack.append(value)
        return value

    stack: list[Any] = []
    root: dict[str, Any] = fix(obj)
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in list(items):
            node[key] = fix(value)
    return root


def decode_object(raw: bytes, *, what: str) -> dict[str, Any]:
    """Parse ``raw`` as one JSON object, else :class:`InvalidManifestError` naming ``what``.

    Duplicate keys are refused: Go keeps the last one and other parsers the first, so a document
    with duplicates can mean different things to different readers. So are what Go's decoder
    refuses and Python's would keep: ``NaN``/``Infinity`` (not JSON; ``encode_json`` could not
    write them back) and numbers beyond float64 (``1e400``); an integer of more digits than
    CPython converts (4300) is refused too (it raised a bare ValueError: exit 70).
    """
    try:
        obj: Any = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constants,
            parse_float=_finite,
        )
    except UnicodeDecodeError as exc:
        raise InvalidManifestError(f"{what} is not UTF-8: {exc}") from exc
    except _DuplicateKeyError as exc:
        raise InvalidManifestError(f"{what} has the key {exc.args[0]!r} twice") from exc
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, _NumberError, int digits
        raise InvalidManifestError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise InvalidManifestError(f"{what} is not a JSON object")
    if _SURROGATE_ESCAPE_RE.search(raw):
        try:
            return _go_strings(obj)
        except _DuplicateKeyError as exc:
            raise InvalidManifestError(f"{what} has the key {exc.args[0]!r} twice") from exc
    return obj
