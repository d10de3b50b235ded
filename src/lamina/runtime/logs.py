"""Container logs in Docker's ``json-file`` format, one JSON object per line:

    {"log":"hi\\n","stream":"stdout","time":"2024-05-01T12:00:00.123456789Z"}

As Docker's log copier does, output is split at newlines (the newline stays in ``log``); a
line longer than :data:`MAX_LINE` is cut into pieces, and a last piece without a newline is
written when the stream ends. ``time`` is RFC 3339 in UTC with nanoseconds and Go's
``RFC3339Nano`` trimming of trailing zeros. Go's JSON encoder escapes ``<``, ``>`` and ``&`` and
turns invalid UTF-8 into U+FFFD; the writer does the same so the bytes match Docker's.

With ``--log-opt max-size`` (:class:`LogOptions`) the log rotates as Docker 20.10's json-file
driver rotates it (loggerutils.LogFile): before an entry is written to a file that has reached
the size, the file becomes ``<log>.1`` (the older ones ``.2`` ... up to ``max-file - 1``, the
oldest dropped) and a new one is begun; a reader goes through the rotated files, oldest first,
then the current one, and a follower moves on to the new file when its own is rotated away.
With the ``none`` driver nothing is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Final, NamedTuple

from msgspec import Struct

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


class LogOptions(Struct, frozen=True, kw_only=True):
    """A container's logging driver and its json-file options, as the shim applies them."""

    driver: str = "json-file"  # or "none": nothing is logged
    max_size: int = -1  # bytes a file may reach before it is rotated; -1: never rotated
    max_files: int = 1  # files kept, the current one included (max-file)


DEFAULT_OPTIONS: Final = LogOptions()


def rotated_paths(path: Path, options: LogOptions) -> list[Path]:
    """The rotated files a reader goes through before ``path``, oldest first (as Docker
    reads them: ``max-file - 1`` of them, whatever else lies there)."""
    return [path.with_name(f"{path.name}.{i}") for i in range(options.max_files - 1, 0, -1)]


class LogWriter:
    """Appends a container's output to its json-file log; one per container, one writer.
    With ``options.max_size``, rotates it (see the module's doc); with the ``none`` driver,
    writes nothing."""

    def __init__(self, path: Path, *, options: LogOptions = DEFAULT_OPTIONS) -> None:
        self._path = path
        self._options = options
        self._fd = -1
        if options.driver != "none":
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        # As Docker's: a log that is there already counts towards its first rotation.
        self._size = os.fstat(self._fd).st_size if self._fd >= 0 and options.max_size > 0 else 0
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
            self._append(out)

    def _append(self, parts: list[bytes]) -> None:
        """Write the entries (each an even and odd part of ``parts``), rotating first
        whenever the file has reached the size, as Docker checks before each entry."""
        if self._fd < 0:
            return
        if self._options.max_size <= 0:
            self._write_all(b"".join(parts))
            return
        batch: list[bytes] = []
        for i in range(0, len(parts), 2):
            if self._size >= self._options.max_size:
                self._write_all(b"".join(batch))
                batch = []
                self._rotate()
            batch += parts[i : i + 2]
            self._size += len(parts[i]) + len(parts[i + 1])
        self._write_all(b"".join(batch))

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def _rotate(self) -> None:
        """Docker 20.10's rotation: the oldest kept file dropped, each ``.N`` moved to
        ``.N+1``, the log to ``.1`` (with one file kept too: ``.1`` is then never read), and
        a new, empty log begun."""
        path, keep = self._path, self._options.max_files
        if keep >= 2:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{path}.{keep - 1}")
            for i in range(keep - 1, 1, -1):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(f"{path}.{i - 1}", f"{path}.{i}")
        with contextlib.suppress(FileNotFoundError):
            os.rename(path, f"{path}.1")
        os.close(self._fd)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        self._fd = os.open(path, flags, 0o640)
        self._size = 0

    def close(self) -> None:
        """Write any unterminated last lines, then close."""
        ns = time.time_ns()
        tail = [
            part
            for s, b in self._partial.items()
            if b
            for part in (_encode_log(b), _entry_tail(s, ns))
        ]
        self._partial.clear()
        if tail:
            self._append(tail)
        if self._fd >= 0:
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
    options: LogOptions = DEFAULT_OPTIONS,
) -> Iterator[LogEntry]:
    """The entries of a json-file log (the files it was rotated to first, with
    ``options``); with ``follow``, keep waiting for new ones until ``finished()`` is true and
    everything written before it has been read."""
    for rotated in rotated_paths(path, options):
        try:
            with open(rotated, "rb") as old:
                for raw in old:
                    if raw.endswith(b"\n"):
                        yield _parse(raw)
        except FileNotFoundError:
            continue
    f = _open_when_there(path, finished=finished if follow else lambda: True, poll=poll)
    if f is None:
        return
    try:
        pending = b""
        while True:
            # Sampled before reading, so whatever was written before the exit is still read.
            done = follow and finished()
            while chunk := f.readline():
                pending += chunk
                if pending.endswith(b"\n"):  # else the writer is mid-line: wait for the rest
                    yield _parse(pending)
                    pending = b""
            if follow and options.max_size > 0 and _rotated_away(f, path):
                # Everything before the rotation is read (the writer never writes to a file
                # it has rotated): go on with the new one, from its start.
                f.close()
                following = _open_when_there(path, finished=finished, poll=poll)
                if following is None:
                    return
                f, pending = following, b""
                continue
            if not follow or done:
                return
            time.sleep(poll)
    finally:
        f.close()


def _rotated_away(f: BinaryIO, path: Path) -> bool:
    try:
        return os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        return True  # between the rename and the new file


def _open_when_there(path: Path, *, finished: Callable[[], bool], poll: float) -> BinaryIO | None:
    """``path`` opened once it is there; None if ``finished()`` first."""
    while True:
        try:
            return open(path, "rb")
        except FileNotFoundError:
            if finished():
                return None
            time.sleep(poll)


def _parse(raw: bytes) -> LogEntry:
    obj = json.loads(raw)
    return LogEntry(stream=obj["stream"], line=obj["log"], time=obj["time"])
