"""The node level of lamina's parser against BuildKit's own parser.

The oracle is the PyPI package ``dockerfile`` (asottile), which wraps BuildKit's Go
``frontend/dockerfile/parser``. It covers the instruction split, continuations, comments,
directives, flags, JSON vs shell form, ONBUILD sub-commands and heredoc names, descriptors
and bodies. It does not type instructions (that is BuildKit's ``instructions`` package), so
unknown instructions and argument checks are tested in test_parser.py against the reference.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from lamina.build.parser import Node, parse_nodes

dockerfile: Any = pytest.importorskip("dockerfile")

GOLDEN = Path(__file__).parents[2] / "data" / "dockerfiles"
FILES = sorted(GOLDEN.glob("*.Dockerfile"))

# Extra snippets for corners the golden files do not reach.
SNIPPETS = [
    "FROM x\nRUN echo \\\\\nRUN b\n",  # an escaped escape does not continue the line
    "FROM x\nRUN a\\\\\\\nb\n",  # three escapes: still not a continuation
    "\\\nFROM x\n",  # a lone escape continues
    "FROM x\nRUN a\\\n\\\nb\n",
    "FROM x\r\nRUN a \\\r\n b\r\n",  # CRLF
    "\ufeffFROM x\n",  # BOM
    "FROM x\nRUN it's <<EOF\nx\nEOF\n",  # unlexable line: no heredoc, the body is instructions
    "FROM x\nRUN <<EOF cat \\\n  >f\nhi\nEOF\n",  # heredoc opener on a continued line
    'FROM x\nRUN echo "<<EOF"\n',  # quoted: not a heredoc
    'FROM x\nCOPY <<a <<"b" /dest\nA\na\nB $x\nb\n',
    'FROM x\nRUN --foo="a b" x\nRUN -- x\nRUN --x\n',
    'FROM x\nRUN ["a", NaN]\n',  # not JSON for Go: shell form
    'FROM x\nRUN [ "a" ]   \n',
    'FROM x\nHEALTHCHECK\tCMD\t["a"]\n',
    "FROM x\nONBUILD   run   echo hi\n",
    "# escape=\\\nFROM x\nRUN a \\\n b\n",
    "# ESCAPE = `\nFROM x\nRUN a `\n b\n",  # case-insensitive key, blanks around =
    "# unknown=x\n# escape=`\nFROM x\nRUN a `\n b\n",  # not a directive any more: ` is literal
    "FROM x\n# escape=`\nRUN a `\n",
    'FROM x\nENV a "b c" d\n',
    "FROM x\nRUN a\vb\fc\u2028d\n",  # only \n ends a line
    'FROM x\nRUN <<"E F"\nbody\nE F\n',
    'FROM x\nLABEL a=b \\\n  c="d e"\n',
]


KEYWORDS = frozenset(
    [
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    ]
)


def _chomp(text: str) -> str:
    # The reference: "<<-" strips leading tabs (POSIX 2.7.4); BuildKit applies it per line.
    return re.sub(r"(?m)^\t+", "", text)


def _mine(node: Node) -> tuple[object, ...]:
    target = node.sub or node
    return (
        node.keyword,
        node.sub.keyword if node.sub else None,
        node.json,
        node.original,
        node.line,
        node.end_line,
        node.flags,
        target.args,
        tuple((h.name, h.file_descriptor, h.content) for h in node.heredocs),
    )


def _theirs(command: Any, chomps: tuple[bool, ...]) -> tuple[object, ...]:
    docs = tuple(
        (h.name, h.file_descriptor, _chomp(h.content) if chomp else h.content)
        for h, chomp in zip(command.heredocs, chomps, strict=True)
    )
    return (
        command.cmd.upper(),
        command.sub_cmd.upper() if command.sub_cmd else None,
        command.json,
        command.original,
        command.start_line,
        command.end_line,
        command.flags,
        command.value,
        docs,
    )


def _compare(text: str) -> None:
    ours = parse_nodes(text).nodes
    oracle = dockerfile.parse_string(text)
    assert len(ours) == len(oracle)
    for mine, theirs in zip(ours, oracle, strict=True):
        if mine.keyword not in KEYWORDS:
            # BuildKit's AST keeps unknown words; they are rejected one level up.
            assert mine.keyword == theirs.cmd.upper()
            continue
        chomps = tuple(h.chomp for h in mine.heredocs)
        assert _mine(mine) == _theirs(theirs, chomps)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_golden_file_matches_buildkit(path: Path) -> None:
    _compare(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("text", SNIPPETS)
def test_snippet_matches_buildkit(text: str) -> None:
    _compare(text)


@pytest.mark.parametrize(
    "text",
    [
        "FROM x\nRUN <<EOF\necho\n",  # unterminated heredoc
        "FROM x\nRUN <<EOF\\\nEOF\n",  # the continuation makes the delimiter EOFEOF
        'FROM x\nCMD ["a", 1]\n',  # JSON array of non-strings
        "# escape=x\nFROM x\n",
        "# escape=`\n# escape=\\\nFROM x\n",
    ],
)
def test_errors_agree_with_buildkit(text: str) -> None:
    from lamina.errors import DockerfileSyntaxError

    with pytest.raises(dockerfile.GoParseError):
        dockerfile.parse_string(text)
    with pytest.raises(DockerfileSyntaxError):
        parse_nodes(text)
