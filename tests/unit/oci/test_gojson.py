"""decode_object reads documents as Go's encoding/json does where Python's json differs."""

from __future__ import annotations

import pytest

from lamina.errors import InvalidManifestError
from lamina.oci.gojson import decode_object


def test_lone_surrogates_become_the_replacement_character() -> None:
    raw = b'{"a": "\\ud800x", "\\udfff": ["\\udc00", {"k": "\\uDBFF"}], "ok": "\\ud83d\\ude00"}'
    assert decode_object(raw, what="doc") == {
        "a": "\ufffdx",
        "\ufffd": ["\ufffd", {"k": "\ufffd"}],
        "ok": "\U0001f600",  # a valid pair is one code point, untouched
    }
    # An escaped backslash before "ud800" is text, not an escape.
    assert decode_object(b'{"a": "\\\\ud800"}', what="doc") == {"a": "\\ud800"}


def test_keys_that_differ_only_in_lone_surrogates_are_a_duplicate() -> None:
    with pytest.raises(InvalidManifestError, match="twice"):
        decode_object(b'{"\\ud800": 1, "\\ud801": 2}', what="doc")


def test_deep_documents_are_walked_without_recursion() -> None:
    depth = 900  # under the decoder's own limit
    raw = b'{"a": ' + b"[" * depth + b'"\\ud800"' + b"]" * depth + b"}"
    value = decode_object(raw, what="doc")["a"]
    for _ in range(depth):
        value = value[0]
    assert value == "\ufffd"
