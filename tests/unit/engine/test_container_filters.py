"""The pieces of ``ps --filter`` that need no store: Go's integer and regexp rules."""

from __future__ import annotations

import pytest

from lamina.engine.container_filters import _atoi
from lamina.engine.filters import go_regexp
from lamina.errors import InvalidFilterError, UsageError


@pytest.mark.parametrize(
    ("pattern", "subject", "found"),
    [
        ("[[:alpha:]]0", "c0", True),
        ("[[:alpha:]]0", "00", False),
        ("^[[:digit:][:upper:]]+$", "A1", True),
        ("[^[:digit:]]", "123", False),
        (r"1\z", "k1", True),
        (r"1\z", "k1\n", False),  # \z is the very end, unlike Python's $
        ("[]a]", "]", True),
        (r"[\]]", "]", True),
        ("(?i)C1", "c1", True),
    ],
)
def test_go_regexp_where_re2_and_python_agree(pattern: str, subject: str, found: bool) -> None:
    assert bool(go_regexp(pattern, key="name").search(subject)) is found


def test_go_regexp_refuses_what_python_cannot_compile() -> None:
    with pytest.raises(UsageError, match=r"invalid filter 'name=\(':"):
        go_regexp("(", key="name")


def test_atoi_as_go() -> None:
    assert [_atoi(t) for t in ("0", "+5", "-1", "007")] == [0, 5, -1, 7]
    for text in ("", "abc", " 1", "1_0", "٣"):
        with pytest.raises(InvalidFilterError, match=f'parsing "{text}": invalid syntax'):
            _atoi(text)
    with pytest.raises(InvalidFilterError, match="value out of range"):
        _atoi("9223372036854775808")
