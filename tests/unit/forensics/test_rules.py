"""Rules files and allow-lists: what users can write, and clear usage errors for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from lamina.errors import UsageError
from lamina.forensics.rules import Allow, Severity, builtin, entropy, load_ruleset


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "rules.toml"
    p.write_text(text)
    return p


def test_a_user_rule_is_added_and_one_with_a_builtin_id_replaces_it(tmp_path: Path) -> None:
    rules = load_ruleset(
        rules_file=_write(
            tmp_path,
            "[[rules]]\nid = 'acme'\nregex = 'acme_[0-9a-f]{8}'\nkeywords = ['acme_']\n"
            "[[rules]]\nid = 'slack-token'\nseverity = 'low'\nregex = 'xoxz-[0-9]+'\n"
            "keywords = ['xoxz-']\npaths = ['/srv/*']\n",
        ),
        allow_file=None,
    )
    by_id = {r.id: r for r in rules.content}
    assert by_id["acme"].severity is Severity.HIGH  # the default
    assert by_id["slack-token"].severity is Severity.LOW
    assert by_id["slack-token"].paths == ("srv/*",)  # a leading / is dropped
    assert len(rules.content) == len(builtin().content) + 1


@pytest.mark.parametrize(
    "text",
    [
        "[[rules]]\nid = 'x'\nregex = 'a'\n",  # no keywords
        "[[rules]]\nid = 'x'\nregex = '('\nkeywords = ['a']\n",  # bad regex
        "[[rules]]\nregex = 'a'\nkeywords = ['a']\n",  # no id
        "[[rules]]\nid = 'x'\nregex = 'a'\nkeywords = ['a']\nseverity = 'severe'\n",
        "rules = 3\n",
        "[[rules]\n",  # not TOML
    ],
)
def test_bad_rules_files_are_usage_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(UsageError):
        load_ruleset(rules_file=_write(tmp_path, text), allow_file=None)


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        load_ruleset(rules_file=tmp_path / "nope.toml", allow_file=None)


def test_allow_lists_merge_and_match(tmp_path: Path) -> None:
    allow_file = tmp_path / "allow.toml"
    allow_file.write_text("paths = ['usr/share/doc/*']\nfingerprints = ['r:p:abc']\n")
    rules = load_ruleset(
        rules_file=_write(tmp_path, "[allow]\nrules = ['setuid']\n"), allow_file=allow_file
    )
    allow = rules.allow
    assert allow.allows(rule="setuid", path="usr/bin/su", fingerprint="")
    assert allow.allows(rule="x", path="usr/share/doc/a/README", fingerprint="")
    assert allow.allows(rule="x", path="etc/y", fingerprint="r:p:abc")
    assert not allow.allows(rule="x", path="etc/y", fingerprint="other")
    assert not Allow().allows(rule="x", path="", fingerprint="")


def test_entropy() -> None:
    assert entropy(b"") == 0.0
    assert entropy(b"aaaa") == 0.0
    assert entropy(b"abcd") == 2.0
