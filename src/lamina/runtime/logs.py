"""Container logs in Docker's ``json-file`` format, one JSON object per line:

    {"log":"hi\\n","stream":"stdout","time":"2024-05-01T12:00:00.123456789Z"}

As Docker's log copier does, output is split at newlines (the newline stays in ``log``); a
line longer than :data:`MAX_LINE` is cut into pieces, and a last piece without a newline is
written when the stream ends. ``time`` is RFC 3339 in UTC with nanoseconds and Go's
``RFC3339Nano`` trimming of trailing zeros. Go's JSON encoder escapes ``<``, ``>`` and ``&`` and
turns invalid UTF-8 into U+FFFD; the writer does the same so the bytes match Docker's.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final, NamedTuple

MAX_LINE: Final = 16 * 1024  # Docker's copier buffer: longer lines become several entries
ZERO_TIME: Final = "0001-01-01T00:00:00Z"  # Go's zero time.Time, as inspect prints it


def rfc3339_nano(ns: int | None = None) -> str:
    """UTC ``YYYY-MM-DDTHH:MM:SS[.fraction]Z`` with trailing zeros of the fraction trimmed."""
    if ns is None:
        ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


_GO_ESCAPES: Final = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def encode_entry(*, stream: str, data: bytes, ns: int) -> bytes:
    """One json-file line (with its trailing newline) as Docker writes it."""
    return _encode_log(data) + _entry_tail(stream, ns)


# Printable ASCII that Go's encoder writes as is (no `"`, `\\`, `<`, `>`, `&`), then an
# optional newline: the common line, written without decoding or escaping anything.
_PLAIN: Final = re.compile(rb"[ !#-%'-;=?-\[\]-~]*\n?")


def _encode_log(data: bytes) -> bytes:
    """``{"log":<data as a JSON string>`` as Go's encoder writes it."""
    if _PLAIN.fullmatch(data):
        if data.endswith(b"\n"):
            return b'{"log":"' + data[:-1] + b'\\n"'
        return b'{"log":"' + data + b'"'
    text = data.decode("utf-8", "replace")
    log = json.dumps(text, ensure_ascii=False).translate(_GO_ESCAPES)
    return b'{"log":' + log.encode()


def _entry_tail(stream: str, ns: int) -> bytes:
    return f',"stream":"{stream}","time":"{rfc3339_nano(ns)}"}}\n'.encode()


class LogWriter:
    """Appends a container's output to its json-file log; one per container, one writer."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._partial: dict[str, bytes] = {}

    def write(self, stream: str, data: bytes) -> None:
        """Log ``data`` read from ``stream`` (``stdout``/``stderr``); partial lines wait."""
        buf = self._partial.pop(stream, b"") + data
        out: list[bytes] = []
        tail = b""
        start, size = 0, len(buf)
        # Offsets into one buffer (no re-slicing of the rest per line), and one time stamp per
        # read, as Docker's copier stamps what one read returned: `yes` in a container must
        # not outrun its own log.
        while True:
            nl = buf.find(b"\n", start, start + MAX_LINE)
            if nl >= 0:
                end = nl + 1
            elif size - start >= MAX_LINE:
                end = start + MAX_LINE
            else:
                break
            if not tail:
                tail = _entry_tail(stream, time.time_ns())
            out.append(_encode_log(buf[start:end]))
            out.append(tail)
            start = end
        if start < size:
            self._partial[stream] = buf[start:]
        if out:
            data_out = b"".join(out)
            view = memoryview(data_out)
            while view:
                view = view[os.write(self._fd, view) :]

    def close(self) -> None:
        """Write any unterminated last lines, then close."""
        ns = time.time_ns()
        tail = [encode_entry(stream=s, data=b, ns=ns) for s, b in self._partial.items() if b]
        self._partial.clear()
        if tail:
            os.write(self._fd, b"".join(tail))
        os.close(self._fd)


class LogEntry(NamedTuple):
    """One logged piece of output: ``(stream, line, time)``; ``line`` keeps its newline."""

    stream: str
    line: str
    time: str


def read_log(
    path: Path,
    *,
    follow: bool,
    finished: Callable[[], bool],
    poll: float = 0.05,
) -> Iterator[LogEntry]:
    """The entries of a json-file log; with ``follow``, keep waiting for new ones until
    ``finished()`` is true and everything written before it has been read."""
    try:
        f = open(path, "rb")  # noqa: SIM115 -- held open across yields, closed below
    except FileNotFoundError:
        if not follow:
            return
        while not path.exists():
            if finished():
                return
            time.sleep(poll)
        f = open(path, "rb")  # noqa: SIM115
    with f:
        pending = b""
        while True:
            # Sampled before reading, so whatever was written before the exit is still read.
            done = follow and finished()
            while chunk := f.readline():
                pending += chunk
                if pending.endswith(b"\n"):  # else the writer is mid-line: wait for the rest
                    yield _parse(pending)
                    pending = b""
            if not follow or done:
                return
            time.sleep(poll)


def _parse(raw: bytes) -> LogEntry:
    obj = json.loads(raw)
    return LogEntry(stream=obj["stream"], line=obj["log"], time=obj["time"])
