"""Syntax errors name the physical line and column (1-based) where the problem was found."""

from __future__ import annotations

import pytest

from lamina.build.parser import parse
from lamina.errors import BuildError, DockerfileSyntaxError

CASES = [
    # (Dockerfile, line, column, words the message must contain)
    ("FROM x\nFOO bar\n", 2, 1, "unknown instruction: FOO"),
    ("FROM x\nCOPY a\0 b\n", 2, 7, "a NUL character"),
    ("FROM x\n   frobnicate\n", 2, 4, "unknown instruction: FROBNICATE"),
    ("RUN x\nFROM y\n", 1, 1, "before FROM"),
    ("# just a comment\n\n", 2, 1, "no FROM"),
    ("", 1, 1, "no FROM"),
    ("FROM x\nRUN <<EOF\necho\n", 2, 1, "unterminated heredoc"),
    ("FROM x\nCOPY <<A <<B /d\na\nA\nb\n", 2, 1, "unterminated heredoc 'B'"),
    ("FROM x\nSHELL /bin/sh -c\n", 2, 7, "JSON"),
    ("FROM x\nSHELL []\n", 2, 7, "at least one"),
    ('FROM x\nCMD ["a", 1]\n', 2, 5, "strings only"),
    ("FROM x\nCOPY --bogus=1 a b\n", 2, 6, "unknown flag: --bogus"),
    ("FROM x\nRUN \\\n  --from=x true\n", 3, 3, "unknown flag: --from"),
    ("FROM x\nADD --from=x a b\n", 2, 5, "unknown flag: --from"),
    ("FROM x\nWORKDIR --chown=1 /x\n", 2, 9, "unknown flag: --chown"),
    ("FROM x\nCOPY --chown a b\n", 2, 6, "missing a value"),
    ("FROM x\nCOPY --link=maybe a b\n", 2, 6, "boolean"),
    ("FROM x\nCOPY --from=a --from=b a b\n", 2, 15, "duplicate flag"),
    ("FROM x\nRUN --mount=type=cache true\n", 2, 5, "requires a target"),
    ("FROM x\nRUN --mount=type=nfs,target=/x true\n", 2, 5, "invalid value for 'type'"),
    ("FROM x\nRUN --mount=type=secret true\n", 2, 5, "id or a target"),
    ("FROM x\nRUN --mount=type=cache,target=/x,wat=1 true\n", 2, 5, "unexpected key 'wat'"),
    ("FROM x\nRUN --network=bridge true\n", 2, 5, "--network"),
    ("FROM x\nRUN\n", 2, 4, "at least one"),
    ("FROM x\nONBUILD ONBUILD RUN x\n", 2, 9, "ONBUILD ONBUILD"),
    ("FROM x\nONBUILD FROM y\n", 2, 9, "FROM isn't allowed"),
    ("FROM x\nONBUILD MAINTAINER me\n", 2, 9, "MAINTAINER isn't allowed"),
    ("FROM x\nONBUILD BOGUS\n", 2, 9, "unknown instruction: BOGUS"),
    ("FROM x\nHEALTHCHECK --interval=1q CMD x\n", 2, 13, "invalid duration"),
    ("FROM x\nHEALTHCHECK --timeout=10us CMD x\n", 2, 13, "less than 1ms"),
    ("FROM x\nHEALTHCHECK --retries=-1 CMD x\n", 2, 13, "at least 1 (not -1)"),
    # docker 20.10: "--retries must be at least 1 (not 0)", exit 1.
    ("FROM x\nHEALTHCHECK --retries=0 CMD x\n", 2, 13, "at least 1 (not 0)"),
    ("FROM x\nHEALTHCHECK NONE x\n", 2, 13, "takes no arguments"),
    ("FROM x\nHEALTHCHECK CMD\n", 2, 13, "missing command"),
    ("FROM x\nHEALTHCHECK BOGUS x\n", 2, 13, "unknown type"),
    ("FROM a b\n", 1, 6, "one or three"),
    ("FROM a AS 1bad\n", 1, 6, "invalid stage name"),
    ("FROM x\nENV\n", 2, 4, "at least one"),
    ("FROM x\nENV a=b c\n", 2, 5, "can't find ="),
    ("FROM x\nENV onlyname\n", 2, 5, "no value"),
    ("FROM x\nLABEL =v\n", 2, 7, "blank"),
    ("FROM x\nCOPY a\n", 2, 6, "at least two"),
    ("FROM x\nCOPY a <<EOF\nx\nEOF\n", 2, 6, "destination"),
    ("FROM x\nUSER\n", 2, 5, "exactly 1"),
    ('FROM x\nVOLUME [""]\n', 2, 8, "empty"),
    ("# escape=x\nFROM y\n", 1, 1, "invalid escape token"),
    ("# escape=`\n# ESCAPE=\\\nFROM y\n", 2, 1, "only one escape"),
    ("FROM x\nARG =v\n", 2, 5, "blank"),
]


@pytest.mark.parametrize(("text", "line", "column", "words"), CASES)
def test_syntax_error_names_line_and_column(text: str, line: int, column: int, words: str) -> None:
    with pytest.raises(DockerfileSyntaxError) as info:
        parse(text)
    assert (info.value.line, info.value.column) == (line, column), str(info.value)
    assert words in str(info.value)
    assert str(info.value).startswith(f"Dockerfile:{line}:{column}: ")
    assert isinstance(info.value, BuildError)
