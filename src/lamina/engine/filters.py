"""``--filter`` as Docker reads it, for every verb that takes one:

- :func:`split_filters`: the CLI's ``KEY=VALUE`` parsing (opts.FilterOpt);
- :func:`match_kv_list`: moby's ``filters.Args.MatchKVList`` (``label=`` of ps, volume ls
  and the prune verbs);
- :func:`go_regexp`: a Go RE2 pattern (``name=``) as a Python one;
- :class:`PruneFilters`: the prune verbs' filters as dockerd 20.10 reads them
  (daemon/prune.go): which keys each verb accepts, ``until`` (a time or a duration back from
  now; at most one), and ``label`` / ``label!`` (``matchLabels``: every ``label`` must hold,
  and an object is kept when every ``label!`` holds). Keys and values are checked before
  anything is removed, and refused in Docker's words (:class:`InvalidFilterError`, exit 1).

``ps``'s own keys are :mod:`lamina.engine.container_filters`'.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Final

from lamina.errors import InvalidFilterError, UsageError

# moby's containersAcceptedFilters, imagesAcceptedFilters and volumesAcceptedFilters.
CONTAINER_KEYS: Final = frozenset({"label", "label!", "until"})
IMAGE_KEYS: Final = frozenset({"dangling", "label", "label!", "until"})
VOLUME_KEYS: Final = frozenset({"label", "label!"})


def match_kv_list(wanted: Collection[str], labels: Mapping[str, str]) -> bool:
    """Whether every ``KEY`` or ``KEY=VALUE`` in ``wanted`` is among ``labels`` (true when
    nothing is wanted; false for no labels at all)."""
    if not wanted:
        return True
    if not labels:
        return False
    for w in wanted:
        key, eq, value = w.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def split_filters(filters: Sequence[str]) -> list[tuple[str, str]]:
    """``KEY=VALUE`` flags as Docker's CLI reads them (opts.FilterOpt: the key lower-cased,
    both sides trimmed); what each key may be is the daemon's to check, later."""
    pairs = []
    for f in filters:
        key, eq, value = f.partition("=")
        if not eq:
            raise UsageError(
                f'invalid argument "{f}" for "-f, --filter" flag: '
                "bad format of filter (expected name=value)"
            )
        pairs.append((key.strip().lower(), value.strip()))
    return pairs


_POSIX_CLASS = re.compile(
    r"\[:(alnum|alpha|ascii|blank|cntrl|digit|graph|lower|print|punct|space|upper|word|xdigit):\]"
)
_POSIX_RANGES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": r"\x00-\x7f",
    "blank": r"\t ",
    "cntrl": r"\x00-\x1f\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": r"!-/:-@\[-`{-~",
    "space": r"\t\n\v\f\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}


def go_regexp(pattern: str, *, key: str) -> re.Pattern[str]:
    """``pattern`` (Go RE2 syntax) as a Python pattern where the two agree: RE2's POSIX
    classes and ``\\z`` are translated. A pattern Python cannot compile is refused
    (UsageError) -- Docker silently lets it match nothing."""
    out: list[str] = []
    i, n = 0, len(pattern)
    class_start = -1  # index just past a bracket's "[" (and "^"), while inside one
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            out.append(r"\Z" if nxt == "z" and class_start < 0 else pattern[i : i + 2])
            i += 2
            continue
        if class_start >= 0:
            m = _POSIX_CLASS.match(pattern, i)
            if m:
                out.append(_POSIX_RANGES[m[1]])
                i = m.end()
                continue
            if ch == "]" and i > class_start:
                class_start = -1
        elif ch == "[":
            class_start = i + 1
            if pattern.startswith("^", class_start):
                out.append("[^")
                class_start += 1
                i += 2
                continue
        out.append(ch)
        i += 1
    try:
        return re.compile("".join(out))
    except re.error as exc:
        raise UsageError(f"invalid filter '{key}={pattern}': {exc}") from exc


class PruneFilters:
    """Checked filters of one prune verb: ``accepted`` are the keys it takes; ``now`` is what
    a duration in ``until`` counts back from (Unix seconds)."""

    def __init__(
        self, filters: Sequence[str], *, accepted: frozenset[str], now: float | None = None
    ) -> None:
        from lamina.engine.times import parse_point

        values: dict[str, list[str]] = {}
        for key, value in split_filters(filters):
            if key not in accepted:
                raise InvalidFilterError(f"Invalid filter '{key}'")
            if value not in values.setdefault(key, []):
                values[key].append(value)
        self.labels = tuple(values.get("label", ()))
        self.not_labels = tuple(values.get("label!", ()))
        until = values.get("until", [])
        if len(until) > 1:
            raise InvalidFilterError("more than one until filter specified")
        self.until: float | None = None
        if until:
            moment = datetime.now().timestamp() if now is None else now
            try:
                self.until = parse_point(until[0], now=moment, flag="until")
            except UsageError:
                raise InvalidFilterError(
                    f'failed to parse value as time or duration: "{until[0]}"'
                ) from None
        self.dangling: bool | None = None  # images: None unless the filter names it
        dangling = values.get("dangling", [])
        if dangling:
            if any(v in ("false", "0") for v in dangling):
                self.dangling = False
            elif any(v in ("true", "1") for v in dangling):
                self.dangling = True
            else:
                raise InvalidFilterError(f"Invalid filter 'dangling=[{' '.join(dangling)}]'")

    @property
    def has_until(self) -> bool:
        return self.until is not None

    def keeps(self, *, labels: Mapping[str, str], created: float | None = None) -> bool:
        """Whether an object with ``labels``, made at ``created`` (Unix seconds; None:
        unknown, never counted as older), is spared by these filters."""
        if self.until is not None and (created is None or created > self.until):
            return True
        if not match_kv_list(self.labels, labels):
            return True
        return bool(self.not_labels) and match_kv_list(self.not_labels, labels)


def rfc3339_seconds(text: str | None) -> float | None:
    """Unix seconds of an RFC 3339 time as lamina and Docker write them (None if unreadable)."""
    from lamina.engine.times import log_time

    if not text:
        return None
    try:
        return log_time(text)
    except ValueError:
        return None
