"""Content scanning: the content rules run over file bytes fast enough to read every layer.

Searching 25 keywords one after another costs ~150 MB/s of binary data here, more than
inflating and parsing the tar; so the keywords are reduced to a minimal set of *needles* once
per rule set (a keyword that contains another keyword is found through the shorter one), each
needle is looked for once per file, and a rule's regex runs only in small windows around the
occurrences of its own keywords — never over a whole file, so a pattern cannot go quadratic on
a large binary.

Text files are searched case-insensitively (in a lower-cased copy). Binary files (a NUL in the
first 8 kB) are searched for the keywords exactly as written — token formats have a fixed case,
and this halves the cost where most of an image's bytes are — and skip the ``text_only`` rules
(generic ``password=...`` and URL patterns mean nothing inside machine code). Compressed
files, images and gettext catalogs are skipped: nothing can be matched in them undecoded.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable
from typing import Final

from msgspec import Struct, field

from lamina.archive.entry import Entry
from lamina.forensics.rules import ContentRule, RuleSet, Severity, plausible

_MAX_SCAN: Final = 4 << 20  # bytes of each file the content rules see
_BINARY_PROBE: Final = 8192
_BEFORE: Final = 256  # window bytes before a keyword (a PEM "-----BEGIN " prefix, a URL scheme)
_AFTER: Final = 1024  # and after it (enough for every built-in pattern's match)
_MAX_WINDOWS: Final = 32  # occurrences of one keyword examined per file
# Content no keyword can be seen in without decoding it first: compressed streams (gzip, xz,
# zstd, bzip2) and images, plus gettext catalogs (translated program messages: a third of a
# Debian image's non-ELF bytes). Skipped, not inflated.
_OPAQUE_MAGIC: Final = (
    b"\x1f\x8b",
    b"\xfd7zXZ\x00",
    b"\x28\xb5\x2f\xfd",
    b"BZh",
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"GIF8",
    b"\xde\x12\x04\x95",
    b"\x95\x04\x12\xde",
)


def _needles(keywords: Iterable[bytes]) -> dict[bytes, bytes]:
    """keyword → the shortest keyword it contains (itself if none)."""
    ks = sorted(set(keywords), key=len)
    out: dict[bytes, bytes] = {}
    for k in ks:
        out[k] = next((n for n in ks if len(n) < len(k) and n in k), k)
    return out


class Hit(Struct, frozen=True):
    layer: int
    entry: Entry
    rule: ContentRule
    secret: bytes
    binary: bool  # found in a file with a NUL in its first 8 kB

    @property
    def severity(self) -> Severity:
        if self.binary and self.rule.binary_severity is not None:
            return self.rule.binary_severity
        return self.rule.severity


class Scanner(Struct):
    """A :class:`~lamina.forensics.stack.ContentVisitor` running the content rules on every
    FILE of every layer; path-scoped rules only on files their globs match."""

    rules: RuleSet
    hits: list[Hit] = field(default_factory=list)
    scanned_bytes: int = 0
    scanned_files: int = 0
    # Per rule (by position in rules.content): its keywords for text and for binary files.
    _text_kw: list[tuple[bytes, ...]] = field(default_factory=list)
    _text_needle: dict[bytes, bytes] = field(default_factory=dict)
    _bin_needle: dict[bytes, bytes] = field(default_factory=dict)
    _general: list[int] = field(default_factory=list)
    _scoped: list[tuple[int, re.Pattern[str]]] = field(default_factory=list)
    _done: dict[tuple[bytes, tuple[int, ...]], list[tuple[ContentRule, bytes]]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        content = self.rules.content
        self._general = [i for i, r in enumerate(content) if not r.paths]
        # Path-scoped rules: their globs as one compiled pattern each (fnmatch per file is slow).
        self._scoped = [
            (i, re.compile("|".join(fnmatch.translate(g) for g in r.paths)))
            for i, r in enumerate(content)
            if r.paths
        ]
        self._text_kw = [tuple({k.lower(): None for k in r.keywords}) for r in self.rules.content]
        self._text_needle = _needles(k for kws in self._text_kw for k in kws)
        self._bin_needle = _needles(
            k for r in self.rules.content if not r.text_only for k in r.keywords
        )

    @property
    def max_bytes(self) -> int:
        return _MAX_SCAN

    def wants(self, layer: int, entry: Entry) -> bool:
        return entry.size > 0

    def visit(self, layer: int, entry: Entry, data: bytes) -> None:
        if data.startswith(_OPAQUE_MAGIC):
            return
        self.scanned_bytes += len(data)
        self.scanned_files += 1
        rules = [
            i for i, r in enumerate(self.rules.content) if not r.paths or r.applies(entry.path)
        ]
        # The same bytes under the same rules give the same answer: images carry many copies
        # (re-added layers, chown -R, vendored files), and hashing is ~10x cheaper than searching.
        key = (hashlib.sha256(data).digest(), tuple(rules))
        cached = self._done.get(key)
        if cached is None:
            cached = self._done[key] = self._scan(data, rules)
        binary = b"\0" in data[:_BINARY_PROBE]
        for rule, secret in cached:
            self.hits.append(Hit(layer=layer, entry=entry, rule=rule, secret=secret, binary=binary))

    def _scan(self, data: bytes, rules: list[int]) -> list[tuple[ContentRule, bytes]]:
        binary = b"\0" in data[:_BINARY_PROBE]
        hay = data if binary else data.lower()
        needle_of = self._bin_needle if binary else self._text_needle
        present: dict[bytes, bool] = {}
        out: list[tuple[ContentRule, bytes]] = []
        for i in rules:
            rule = self.rules.content[i]
            if binary and rule.text_only:
                continue
            keywords = rule.keywords if binary else self._text_kw[i]
            found = [k for k in keywords if _present(hay, k, needle_of, present)]
            if not found:
                continue
            secret = _match(rule, data, hay, found)
            if secret is not None:
                out.append((rule, secret))
        return out


def _present(
    hay: bytes, keyword: bytes, needle_of: dict[bytes, bytes], cache: dict[bytes, bool]
) -> bool:
    needle = needle_of.get(keyword, keyword)
    hit = cache.get(needle)
    if hit is None:
        hit = cache[needle] = needle in hay
    return hit and (needle == keyword or keyword in hay)


def _match(rule: ContentRule, data: bytes, hay: bytes, keywords: list[bytes]) -> bytes | None:
    """The first secret ``rule`` finds near one of ``keywords`` (one per file is enough
    evidence), or None. ``hay`` is ``data`` or its lower-cased copy (same offsets)."""
    for k in keywords:
        pos = hay.find(k)
        seen = 0
        while pos != -1 and seen < _MAX_WINDOWS:
            seen += 1
            start = max(0, pos - _BEFORE)
            for m in rule.regex.finditer(data, start, min(len(data), pos + _AFTER)):
                if m.end() <= pos:
                    continue  # wholly before this keyword: an earlier window had it
                secret = m.group(1) if m.groups() else m.group(0)
                if plausible(rule, secret):
                    return secret
            pos = hay.find(k, pos + len(k))
    return None
