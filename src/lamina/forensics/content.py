"""Content scanning: the content rules run over file bytes fast enough to read every layer.

Searching 25 keywords one after another costs ~150 MB/s of binary data here, more than
inflating and parsing the tar; so the keywords are reduced to a minimal set of *needles* once
per rule set (a keyword that contains another keyword is found through the shorter one), each
needle is looked for once per file in the lower-cased bytes, and a rule's regex runs only in
small windows around the occurrences of its own keywords — never over a whole file, so a
pattern cannot go quadratic on a large binary. Rules marked ``text_only`` (generic
``password=...`` and URL patterns, which mean nothing inside machine code) skip files that
have a NUL byte in their first 8 kB.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from lamina.archive.entry import Entry
from lamina.forensics.rules import ContentRule, RuleSet, Severity, plausible

_MAX_SCAN: Final = 4 << 20  # bytes of each file the content rules see
_BINARY_PROBE: Final = 8192
_BEFORE: Final = 256  # window bytes before a keyword (a PEM "-----BEGIN " prefix, a URL scheme)
_AFTER: Final = 8192  # and after it (a PEM body, a JSON key's value)
_MAX_WINDOWS: Final = 64  # occurrences of one keyword examined per file


def _needles(keywords: Iterable[bytes]) -> dict[bytes, bytes]:
    """keyword → the shortest keyword it contains (itself if none)."""
    ks = sorted(set(keywords), key=len)
    out: dict[bytes, bytes] = {}
    for k in ks:
        out[k] = next((n for n in ks if len(n) < len(k) and n in k), k)
    return out


@dataclass(frozen=True, slots=True)
class Hit:
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


@dataclass(slots=True)
class Scanner:
    """A :class:`~lamina.forensics.stack.ContentVisitor` running the content rules on every
    FILE of every layer; path-scoped rules only on files their globs match."""

    rules: RuleSet
    hits: list[Hit] = field(default_factory=list)
    scanned_bytes: int = 0
    scanned_files: int = 0
    _needle_of: dict[bytes, bytes] = field(default_factory=dict)
    _general: tuple[ContentRule, ...] = ()
    _scoped: tuple[ContentRule, ...] = ()

    def __post_init__(self) -> None:
        self._needle_of = _needles(k for r in self.rules.content for k in r.keywords)
        self._general = tuple(r for r in self.rules.content if not r.paths)
        self._scoped = tuple(r for r in self.rules.content if r.paths)

    @property
    def max_bytes(self) -> int:
        return _MAX_SCAN

    def wants(self, layer: int, entry: Entry) -> bool:
        return entry.size > 0

    def visit(self, layer: int, entry: Entry, data: bytes) -> None:
        self.scanned_bytes += len(data)
        self.scanned_files += 1
        binary = b"\0" in data[:_BINARY_PROBE]
        rules = [r for r in self._general if not (binary and r.text_only)]
        rules += [r for r in self._scoped if r.applies(entry.path) and not (binary and r.text_only)]
        if not rules:
            return
        low = data.lower()
        present: dict[bytes, bool] = {}
        for rule in rules:
            if not any(self._present(low, k, present) for k in rule.keywords):
                continue
            secret = self._match(rule, data, low)
            if secret is not None:
                self.hits.append(
                    Hit(layer=layer, entry=entry, rule=rule, secret=secret, binary=binary)
                )

    def _present(self, low: bytes, keyword: bytes, cache: dict[bytes, bool]) -> bool:
        needle = self._needle_of.get(keyword, keyword)
        hit = cache.get(needle)
        if hit is None:
            hit = cache[needle] = needle in low
        return hit and (needle == keyword or keyword in low)

    @staticmethod
    def _match(rule: ContentRule, data: bytes, low: bytes) -> bytes | None:
        """The first secret ``rule`` finds near one of its keywords (one per file is enough
        evidence), or None."""
        for k in rule.keywords:
            pos = low.find(k)
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
                pos = low.find(k, pos + len(k))
        return None
