"""Points in time as ``docker logs --since/--until`` reads them (moby's timetypes.GetTimestamp),
and the json-file log's own timestamps, both as Unix seconds."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

from lamina.errors import UsageError

_UNITS: Final = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIX: Final = re.compile(r"\d+(?:\.\d{1,9})?")


def parse_duration(text: str) -> float | None:
    """Seconds in a Go duration (``1h30m``, ``10s``, ``250ms``); None if it is not one."""
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return total if pos == len(text) and pos > 0 else None


def parse_point(text: str, *, now: float, flag: str) -> float:
    """``--since``/``--until``: a duration back from ``now`` (``10m``), Unix seconds
    (``1700000000.5``), or an RFC 3339 date or time (``2026-12-04``, ``2026-12-04T16:20``,
    ``2026-12-04T16:20:01.5Z``, with an offset or, without one, in local time)."""
    value = text.strip()
    duration = parse_duration(value)
    if duration is not None:
        return now - duration
    if _UNIX.fullmatch(value):
        return float(value)
    try:
        moment = datetime.fromisoformat(_trim_fraction(value))
    except ValueError:
        raise UsageError(
            f"invalid {flag} {text!r}: give a duration (10m), Unix seconds or an RFC 3339 time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time, as Docker reads a time without a zone
    return moment.timestamp()


def log_time(text: str) -> float:
    """A json-file entry's ``time`` (RFC 3339 with nanoseconds) as Unix seconds."""
    moment = datetime.fromisoformat(_trim_fraction(text))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _trim_fraction(text: str) -> str:
    """Fractional seconds cut to the microseconds ``datetime`` holds (Go writes nanoseconds)."""
    m = re.search(r"\.(\d{7,})", text)
    return text if m is None else text[: m.start() + 7] + text[m.end() :]
