"""Variable expansion and shell-word processing. Expected values quote the Dockerfile
reference's "Environment replacement" section (moby/buildkit docs/reference.md) or follow from
its rules by hand."""

from __future__ import annotations

import pytest

from lamina.build.expand import (
    expand_heredoc,
    expand_key_values,
    expand_word,
    expand_words,
    split_key_values,
    split_words,
)
from lamina.errors import BuildError, DockerfileSyntaxError

ENV = {"FOO": "/bar", "EMPTY": "", "str": "foobarbaz", "string": "foobarbaz"}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        # "$variable_name or ${variable_name} ... are treated equivalently"; "${foo}_bar".
        ("$FOO", "/bar"),
        ("${FOO}", "/bar"),
        ("${FOO}_bar", "/bar_bar"),
        ("$FOO_bar", ""),  # the name runs on: FOO_bar is undeclared
        # "${variable:-word}: if variable is set and non-empty then the result will be that
        # value. If variable is unset or empty then word will be the result."
        ("${FOO:-word}", "/bar"),
        ("${EMPTY:-word}", "word"),
        ("${NOPE:-word}", "word"),
        # "${variable-word}: if variable is set (even if empty) then ... that value."
        ("${EMPTY-word}", ""),
        ("${NOPE-word}", "word"),
        # "${variable:+word}: if variable is set and non-empty then word ... otherwise ''."
        ("${FOO:+word}", "word"),
        ("${EMPTY:+word}", ""),
        ("${NOPE:+word}", ""),
        # "${variable+word}: if variable is set (even if empty) then word".
        ("${EMPTY+word}", "word"),
        ("${NOPE+word}", ""),
        # "In all cases, word can be any string, including additional environment variables."
        ("${NOPE:-$FOO/x}", "/bar/x"),
        ("${NOPE:-${EMPTY:-deep}}", "deep"),
        # The pattern modifiers and the reference's own bash examples.
        ("${str#f*b}", "arbaz"),
        ("${str##f*b}", "az"),
        ("${string%b*}", "foobar"),
        ("${string%%b*}", "foo"),
        ("${string/ba/fo}", "fooforbaz"),
        ("${string//ba/fo}", "fooforfoz"),
        # "To match literal ? and *, use a backslash escape: \? and \*."
        ("${string#\\*}", "foobarbaz"),
        ("${string#???}", "barbaz"),
        # "\$foo or \${foo} ... will translate to $foo and ${foo} literals respectively."
        ("\\$FOO", "$FOO"),
        ("\\${FOO}", "${FOO}"),
        # Undeclared names expand to "".
        ("$UNDECLARED", ""),
        ("a${UNDECLARED}b", "ab"),
        # A "$" not followed by a name is literal.
        ("$", "$"),
        ("cost: 5$", "cost: 5$"),
        ("$/x", "$/x"),
        # Quotes: removed; single quotes suppress expansion, double quotes do not.
        ("'$FOO'", "$FOO"),
        ('"$FOO"', "/bar"),
        ('"a b"', "a b"),
        ("'a'\"b\"c", "abc"),
        # Inside double quotes the escape only escapes ", $ and itself.
        ('"\\$FOO"', "$FOO"),
        ('"\\"q\\""', '"q"'),
        ('"a\\b"', "a\\b"),
        ('"a\\\\b"', "a\\b"),
        # Outside quotes it escapes anything; a lone escape at the end is dropped.
        ("Rex\\ The\\ Dog", "Rex The Dog"),
        ("a\\b", "ab"),
        ("a\\", "a"),
        # Single quotes cannot be escaped inside single quotes.
        ("'a\\'", "a\\"),
    ],
)
def test_expand_word(word: str, expected: str) -> None:
    assert expand_word(word, env=ENV, line=1) == expected


def test_backtick_escape() -> None:
    # With "# escape=`" the escape character changes: ` escapes, \ is a plain character.
    assert expand_word("`$FOO", env=ENV, escape="`", line=1) == "$FOO"
    assert expand_word("c:\\$FOO", env=ENV, escape="`", line=1) == "c:\\/bar"
    assert expand_word('"`""', env=ENV, escape="`", line=1) == '"'


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("${FOO", "missing '}'"),
        ("${", "missing '}'"),
        ("${}", "bad substitution"),
        ("${:-x}", "bad substitution"),
        ("${FOO:#x}", "unsupported modifier"),
        ("${FOO^^}", "unsupported modifier"),
        ("'open", "single-quote"),
        ('"open', "double-quote"),
    ],
)
def test_bad_substitution(word: str, message: str) -> None:
    with pytest.raises(DockerfileSyntaxError, match=message) as info:
        expand_word(word, env=ENV, line=7)
    assert info.value.line == 7


def test_required_variable() -> None:
    assert expand_word("${FOO?}", env=ENV, line=1) == "/bar"
    with pytest.raises(BuildError, match="NOPE: is not allowed to be unset"):
        expand_word("${NOPE?}", env=ENV, line=1)
    with pytest.raises(BuildError, match="EMPTY: set it"):
        expand_word("${EMPTY:?set it}", env=ENV, line=1)


def test_expand_words_splits_unquoted_expansions() -> None:
    # EXPOSE $PORTS with PORTS="80 443" exposes two ports; quoted whitespace stays one word.
    env = {"PORTS": "80 443/udp"}
    assert expand_words("$PORTS 8080", env=env, line=1) == ["80", "443/udp", "8080"]
    assert expand_words('"$PORTS"', env=env, line=1) == ["80 443/udp"]
    assert expand_words("a\\ b c", env=env, line=1) == ["a b", "c"]


def test_split_words_keeps_quotes() -> None:
    assert split_words('a="b c" d=e\\ f') == ['a="b c"', "d=e\\ f"]
    assert split_words("x='a b'  y") == ["x='a b'", "y"]
    assert split_words('"" z') == ['""', "z"]
    assert split_words("a`  b", escape="`") == ["a` ", "b"]


def test_split_key_values() -> None:
    assert split_key_values('a=b c="d e"', line=1) == [("a", "b"), ("c", '"d e"')]
    # The legacy form: "ENV MY_VAR my-value"; everything after the name is the value.
    assert split_key_values("MY_VAR my  value", line=1) == [("MY_VAR", "my  value")]
    assert split_key_values("k=", line=1) == [("k", "")]
    assert split_key_values("k==v", line=1) == [("k", "=v")]
    with pytest.raises(DockerfileSyntaxError, match="can't find ="):
        split_key_values("a=b c", line=3)


def test_expand_key_values_is_env_semantics() -> None:
    # 'ENV MY_NAME="John Doe" MY_DOG=Rex\ The\ Dog MY_CAT=fluffy'
    pairs = expand_key_values(
        'MY_NAME="John Doe" MY_DOG=Rex\\ The\\ Dog MY_CAT=fluffy', env={}, line=1
    )
    assert pairs == [("MY_NAME", "John Doe"), ("MY_DOG", "Rex The Dog"), ("MY_CAT", "fluffy")]
    # 'LABEL "com.example.vendor"="ACME Incorporated"': quoted keys lose their quotes too.
    assert expand_key_values('"com.example.vendor"="ACME Incorporated"', env={}, line=1) == [
        ("com.example.vendor", "ACME Incorporated")
    ]


def test_heredoc_body_expansion_keeps_quotes() -> None:
    # Reference: 'COPY <<-EOT /script.sh / echo "hello ${FOO}"' writes a script printing
    # "hello bar" when FOO=bar, so the quotes stay in the file (moby/buildkit#2442).
    body = '  echo "hello ${FOO}"\n'
    assert expand_heredoc(body, env={"FOO": "bar"}, line=1) == '  echo "hello bar"\n'
    # Escapes are processed, so \$ keeps a literal dollar sign.
    assert expand_heredoc("cost \\$5 $FOO\n", env={"FOO": "x"}, line=1) == "cost $5 x\n"
    # A lone apostrophe is prose, not a quote.
    assert expand_heredoc("don't $FOO\n", env={"FOO": "x"}, line=1) == "don't x\n"
