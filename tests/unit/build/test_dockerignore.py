""".dockerignore matching. Expected values quote Docker's docs (build context page,
"dockerignore files"; the same text is in containers/common's dockerignore(5)) or follow from
moby/patternmatcher's rules by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from lamina.build.dockerignore import IgnoreMatcher, load_ignore, read_patterns
from lamina.errors import UsageError


def _matcher(text: str) -> IgnoreMatcher:
    return IgnoreMatcher(read_patterns(text.splitlines()))


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        # "*/temp*: Exclude files and directories whose names start with temp in any immediate
        # subdirectory of the root. For example, the plain file /somedir/temporary.txt is
        # excluded, as is the directory /somedir/temp."
        ("somedir/temporary.txt", True),
        ("somedir/temp", True),
        ("somedir/temp/inside", True),  # below an excluded directory
        # "*/*/temp*: ... For example, /somedir/subdir/temporary.txt is excluded."
        ("somedir/subdir/temporary.txt", True),
        # "temp?: Exclude files and directories in the root directory whose names are a
        # one-character extension of temp. For example, /tempa and /tempb are excluded."
        ("tempa", True),
        ("tempb", True),
        ("temp", False),
        ("tempab", False),
        ("temporary.txt", False),  # "*/temp*" needs a directory in front
        ("a/b/c/temp1", False),
    ],
)
def test_docs_example(path: str, ignored: bool) -> None:
    matcher = _matcher("# comment\n*/temp*\n*/*/temp*\ntemp?\n")
    assert matcher.matches(path) is ignored


def test_root_is_both_working_and_root_directory() -> None:
    # "the patterns /foo/bar and foo/bar both exclude a file or directory named bar in the
    # foo subdirectory ... Neither excludes anything else."
    for pattern in ("/foo/bar", "foo/bar"):
        matcher = _matcher(pattern)
        assert matcher.matches("foo/bar")
        assert matcher.matches("foo/bar/baz")
        assert not matcher.matches("bar")
        assert not matcher.matches("x/foo/bar")
        assert not matcher.matches("foo/barn")


def test_double_star() -> None:
    # "**/*.go will exclude all files that end with .go found anywhere in the build context,
    # including the root."
    matcher = _matcher("**/*.go")
    assert matcher.matches("main.go")
    assert matcher.matches("a/b/c/x.go")
    assert not matcher.matches("a/b/c/x.gone")
    assert _matcher("a/**/z").matches("a/z")
    assert _matcher("a/**/z").matches("a/b/c/z")
    assert _matcher("a/**").matches("a/b/c")
    assert not _matcher("a/**").matches("ab")


def test_exceptions_last_match_wins() -> None:
    # "*.md / !README.md: All markdown files right under the context directory except
    # README.md are excluded from the context."
    matcher = _matcher("*.md\n!README.md")
    assert matcher.matches("CHANGES.md")
    assert not matcher.matches("README.md")
    assert not matcher.matches("docs/guide.md")  # "*" does not cross "/"
    # "*.md / !README*.md / README-secret.md: No markdown files are included in the context
    # except README files other than README-secret.md."
    matcher = _matcher("*.md\n!README*.md\nREADME-secret.md")
    assert matcher.matches("CHANGES.md")
    assert not matcher.matches("README-public.md")
    assert matcher.matches("README-secret.md")
    # "*.md / README-secret.md / !README*.md: All of the README files are included. The middle
    # line has no effect because !README*.md matches README-secret.md and comes last."
    matcher = _matcher("*.md\nREADME-secret.md\n!README*.md")
    assert not matcher.matches("README-secret.md")
    assert matcher.matches("CHANGES.md")


def test_include_only_with_star_first() -> None:
    # "specify * as the first pattern, followed by one or more ! exception patterns."
    matcher = _matcher("*\n!src\n!Dockerfile")
    assert matcher.matches("node_modules")
    assert matcher.matches("node_modules/x/y")
    assert not matcher.matches("src")
    assert not matcher.matches("src/main.py")
    assert not matcher.matches("Dockerfile")


def test_reading_rules() -> None:
    # "#" only in column 1 is a comment; blank lines and "." are skipped; patterns are
    # trimmed and cleaned (filepath.Clean); a leading "/" is dropped.
    patterns = read_patterns(
        ["\ufeff# c", "", "   ", " # not a comment ", "./a/../b/", "/abs", "! spaced ", "."]
    )
    assert patterns == ["# not a comment", "b", "abs", "!spaced", "."]
    matcher = IgnoreMatcher(patterns)
    assert matcher.matches("# not a comment")
    assert matcher.matches("b/c")
    assert not matcher.matches("spaced")
    assert not matcher.matches("x")  # "." never ignores the whole context


def test_character_classes_and_escapes() -> None:
    assert _matcher("[abc].txt").matches("b.txt")
    assert not _matcher("[abc].txt").matches("d.txt")
    assert _matcher("[^abc].txt").matches("d.txt")
    assert _matcher("[a-c]?").matches("cz")
    assert _matcher("\\*.txt").matches("*.txt")
    assert not _matcher("\\*.txt").matches("a.txt")
    assert _matcher("a.b").matches("a.b")
    assert not _matcher("a.b").matches("axb")  # "." is literal, not a regex wildcard
    assert _matcher("(x)+{y}$").matches("(x)+{y}$")


def test_bad_patterns() -> None:
    with pytest.raises(UsageError, match="exclusion"):
        IgnoreMatcher(["!"])
    with pytest.raises(UsageError, match=r"bad \.dockerignore pattern"):
        IgnoreMatcher(["[unclosed"])


def test_can_skip_dir() -> None:
    matcher = _matcher("build\n!build/keep/me.txt")
    assert not matcher.can_skip_dir("build")  # an exception lives below it
    assert not matcher.can_skip_dir("build/keep")
    assert matcher.can_skip_dir("build/other")
    assert not matcher.can_skip_dir("src")  # not ignored at all
    assert _matcher("node_modules").can_skip_dir("node_modules")
    # Docker's prefix test would skip here and lose files (docker/cli#2919); lamina does not.
    wild = _matcher("*\n!**/*.py")
    assert not wild.can_skip_dir("pkg")
    assert not wild.matches("pkg/sub/mod.py")
    assert wild.matches("pkg/sub/data.bin")
    assert _matcher("logs\n!src/*.c").can_skip_dir("logs")


def test_load_ignore_precedence(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("root-only\n", encoding="utf-8")
    dockerfile = tmp_path / "build" / "app.Dockerfile"
    dockerfile.parent.mkdir()
    dockerfile.write_text("FROM x\n", encoding="utf-8")
    root = load_ignore(context_dir=tmp_path, dockerfile_path=dockerfile)
    assert root.matches("root-only")
    # "<Dockerfile>.dockerignore" next to the Dockerfile takes precedence.
    (tmp_path / "build" / "app.Dockerfile.dockerignore").write_text("specific\n", encoding="utf-8")
    specific = load_ignore(context_dir=tmp_path, dockerfile_path=dockerfile)
    assert specific.matches("specific")
    assert not specific.matches("root-only")
    assert load_ignore(context_dir=tmp_path, dockerfile_path=None).matches("root-only")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not load_ignore(context_dir=empty, dockerfile_path=None).matches("anything")


def test_load_ignore_names_the_file_on_error(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("ok\n!\n", encoding="utf-8")
    with pytest.raises(UsageError) as info:
        load_ignore(context_dir=tmp_path, dockerfile_path=None)
    assert any(".dockerignore" in note for note in info.value.__notes__)


@pytest.mark.parametrize(
    ("text", "ignored", "kept", "walked"),
    [
        # "ignore everything, then allow nested paths": the exception wins below "*"'s dir hit.
        ("*\n!other/foo/**", ["other", "other/foo", "other/x", "top"], ["other/foo/bar/z"],
         ["other", "other/foo"]),
        ("dir\n!dir/sub/b", ["dir", "dir/a", "dir/sub", "dir/sub/c"], ["dir/sub/b"],
         ["dir", "dir/sub"]),
        ("src/lib\n!src/lib/b", ["src/lib", "src/lib/a"], ["src/lib/b", "src/x"], ["src/lib"]),
        # An exception naming a dir re-includes everything below it.
        ("dir\n!dir/sub", ["dir", "dir/z"], ["dir/sub", "dir/sub/d/y"], ["dir"]),
        # Patterns are cleaned and lose a leading "/" on both sides of the "!".
        ("/dir\n!/dir/./sub/../sub/b", ["dir", "dir/sub/c"], ["dir/sub/b"], ["dir", "dir/sub"]),
        # "*.go" is top-level only; "!*.go" keeps nothing below an excluded dir.
        ("*\n!*.go", ["sub", "sub/b.go"], ["a.go"], []),
    ],
)  # fmt: skip
def test_exceptions_below_an_excluded_dir(
    text: str, ignored: list[str], kept: list[str], walked: list[str]
) -> None:
    matcher = _matcher(text)
    for path in ignored:
        assert matcher.matches(path), path
    for path in kept:
        assert not matcher.matches(path), path
    for path in ignored:
        assert matcher.can_skip_dir(path) is (path not in walked), path
