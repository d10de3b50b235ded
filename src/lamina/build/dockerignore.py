"""``.dockerignore``: which context paths a build leaves out, by Docker's rules.

Lines are read as moby's ``dockerignore.ReadAll`` reads them (``#`` in column 1 is a comment,
blank lines are skipped, patterns are trimmed, cleaned like Go's ``filepath.Clean`` and lose a
leading ``/``) and matched as ``moby/patternmatcher`` matches them: ``filepath.Match`` syntax
(``*``, ``?``, ``[...]``, ``\\`` escapes) plus ``**`` for any number of directories, a pattern
that matches a parent directory matches everything below it, and ``!`` re-includes; the last
matching line wins.
"""

from __future__ import annotations

import enum
import functools
import posixpath
import re
from collections.abc import Iterable
from pathlib import Path

from msgspec import Struct

from lamina.errors import UsageError

__all__ = ["IgnoreMatcher", "Pattern", "load_ignore", "read_patterns"]

# Regex metacharacters that mean nothing to filepath.Match, so are literal in a pattern.
_LITERAL_META = frozenset(".+()|{}$")


class _Kind(enum.Enum):
    EXACT = "exact"
    PREFIX = "prefix"  # "dir/**": anything starting with "dir/"
    SUFFIX = "suffix"  # "**/name" or "**name": anything ending with it
    REGEX = "regex"


def _go_clean(path: str) -> str:
    """Go's ``filepath.Clean`` for slash paths (``posixpath.normpath`` keeps ``//`` prefixes)."""
    if not path:
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    cleaned = "/".join(parts)
    return "/" + cleaned if rooted else cleaned or "."


@functools.lru_cache(maxsize=4096)
def _compile(pattern: str) -> tuple[_Kind, re.Pattern[str] | None]:
    """patternmatcher's ``compile``: the cheap match kinds, or a regex."""
    out = "^"
    kind = _Kind.EXACT
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if in_class and ch not in "\\]":
            out += ch  # a character class passes through: "[^a-z]" keeps its meaning
        elif ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                start = i
                i += 2
                if i < n and pattern[i] == "/":
                    i += 1  # "**/" is "**"
                if i >= n:
                    # "**" at the end matches everything, as in .gitignore.
                    if kind is _Kind.EXACT:
                        kind = _Kind.PREFIX
                    else:
                        out += ".*"
                        kind = _Kind.REGEX
                else:
                    out += "(.*/)?"
                    kind = _Kind.REGEX
                if start == 0:
                    kind = _Kind.SUFFIX
                continue
            out += "[^/]*"
            kind = _Kind.REGEX
        elif ch == "?":
            out += "[^/]"
            kind = _Kind.REGEX
        elif ch in _LITERAL_META:
            out += "\\" + ch
        elif ch == "\\":
            # filepath.Match's escape. patternmatcher leaves such a pattern an exact match
            # against its own text (so "\\*" never matches "*"); the documented meaning wins.
            if i + 1 < n:
                i += 1
                out += re.escape(pattern[i])
            else:
                out += "\\\\"
            kind = _Kind.REGEX
        elif ch in "[]":
            out += ch
            in_class = ch == "["
            kind = _Kind.REGEX
        else:
            out += re.escape(ch)
        i += 1
    if kind is not _Kind.REGEX:
        return kind, None
    try:
        return kind, re.compile(out + "$", re.DOTALL)
    except re.error as exc:
        raise UsageError(f"bad .dockerignore pattern {pattern!r}: {exc}") from exc


class Pattern(Struct, frozen=True, kw_only=True):
    text: str  # cleaned, without the "!"
    exclusion: bool  # True for "!pattern" (re-includes)

    def matches(self, path: str) -> bool:
        kind, regex = _compile(self.text)
        if kind is _Kind.EXACT:
            return path == self.text
        if kind is _Kind.PREFIX:
            return path.startswith(self.text[:-2])
        if kind is _Kind.SUFFIX and regex is None:
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        assert regex is not None
        return regex.match(path) is not None


def read_patterns(lines: Iterable[str]) -> list[str]:
    """Patterns from ``.dockerignore`` lines, normalised as moby's ``ReadAll`` does."""
    patterns: list[str] = []
    for number, raw in enumerate(lines):
        line = raw.removeprefix("\ufeff") if number == 0 else raw
        line = line.rstrip("\r\n")
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = _go_clean(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        patterns.append("!" + line if invert else line)
    return patterns


class IgnoreMatcher:
    """Decides which context paths (slash-separated, relative to the context root) are left out."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: tuple[Pattern, ...] = tuple(self._parse(patterns))
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    @staticmethod
    def _parse(patterns: Iterable[str]) -> Iterable[Pattern]:
        for raw in patterns:
            text = raw.strip()
            if not text:
                continue
            text = _go_clean(text)
            exclusion = text.startswith("!")
            if exclusion:
                if len(text) == 1:
                    raise UsageError('illegal .dockerignore exclusion pattern: "!"')
                text = text[1:]
            if text == ".":
                continue  # the context root itself is never left out
            _compile(text)  # reject malformed patterns now, not mid-walk
            yield Pattern(text=text, exclusion=exclusion)

    def matches(self, path: str) -> bool:
        """True if ``path`` is left out (patternmatcher ``MatchesOrParentMatches``)."""
        path = _go_clean(path).lstrip("/")
        parent = posixpath.dirname(path)
        parents = parent.split("/") if parent else []
        ignored = False
        for pattern in self.patterns:
            # Only a pattern that could flip the verdict is worth evaluating.
            if pattern.exclusion != ignored:
                continue
            hit = pattern.matches(path) or any(
                pattern.matches("/".join(parents[: i + 1])) for i in range(len(parents))
            )
            if hit:
                ignored = not pattern.exclusion
        return ignored

    def can_skip_dir(self, path: str) -> bool:
        """True if ``path`` (a directory) is ignored and no ``!`` pattern could re-include
        anything below it, so a context walk need not descend.

        A dir it keeps walked is in the context only as the parent of what is kept below it
        (``context.walk_source``). Wider than Docker's prefix test (moby descends only when an
        exception's text starts with ``<dir>/``): an exception with wildcards that could match
        below the dir (``!**/*.go``, ``!*/foo``) keeps it walked, so those files are kept where
        Docker 20.10's classic builder and podman 4.3 drop them (docker/cli#2919).
        """
        if not self.matches(path):
            return False
        segments = _go_clean(path).lstrip("/").split("/")
        return not any(_could_match_below(p.text, segments) for p in self.patterns if p.exclusion)


def _segment_matches(glob: str, name: str) -> bool:
    kind, regex = _compile(glob)
    if regex is None:
        return kind is _Kind.EXACT and glob == name
    return regex.match(name) is not None


def _could_match_below(pattern: str, segments: list[str]) -> bool:
    """Could ``pattern`` match ``segments`` itself, or a path below it?"""
    parts = pattern.split("/")
    for i, name in enumerate(segments):
        if i >= len(parts):
            return True  # the pattern names an ancestor, which re-includes all below it
        if "**" in parts[i]:
            return True
        if not _segment_matches(parts[i], name):
            return False
    return True


def load_ignore(*, context_dir: Path, dockerfile_path: Path | None) -> IgnoreMatcher:
    """The matcher for a build: ``<Dockerfile>.dockerignore`` next to the Dockerfile wins over
    ``<context>/.dockerignore``; with neither, nothing is ignored."""
    candidates = []
    if dockerfile_path is not None:
        candidates.append(dockerfile_path.with_name(dockerfile_path.name + ".dockerignore"))
    candidates.append(context_dir / ".dockerignore")
    for candidate in candidates:
        try:
            text = candidate.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise UsageError(f"cannot read {candidate}: {exc.strerror}") from exc
        try:
            return IgnoreMatcher(read_patterns(text.splitlines()))
        except UsageError as exc:
            exc.add_note(f"in {candidate}")
            raise
    return IgnoreMatcher(())
