"""The client's side of a shim's attach socket (:mod:`lamina.runtime.attach`): ``lamina
attach``, and ``start -a`` of a running container.

:func:`relay` copies the container's output to our stdout and stderr (as it came: one stream
for a terminal), our stdin to the container when the shim takes it, our terminal's size to a
terminal container (at once and on SIGWINCH), and, with ``sig_proxy``, the signals we get
(the ones ``run`` forwards: :data:`lamina.runtime.shim.FORWARDED`), until the shim sends the
exit status or reports that we typed the detach keys. Our stdin is read only once the shim
has said it takes it, and not faster than the shim takes it; output is written as it comes.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import selectors
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from lamina.runtime import attach as protocol
from lamina.runtime.attach import HELLO, RESIZE, SIGNAL, SIGNUM, SIZE, STDIN, STDIN_EOF, frame

if TYPE_CHECKING:
    import socket

_OUTBOX_LIMIT: Final = 1 << 20  # input waiting for the shim before stdin is not read


def connect(directory: Path) -> socket.socket:
    """A connection to the attach socket of the shim whose record dir is ``directory``.
    Raises OSError (FileNotFoundError, ConnectionRefusedError) when no shim listens there."""
    import socket

    dir_fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.connect(protocol.socket_path(dir_fd))
        except BaseException:
            sock.close()
            raise
    finally:
        os.close(dir_fd)
    return sock


def relay(
    sock: socket.socket, *, stdin: bool, tty: bool, sig_proxy: bool, detach_keys: bytes
) -> int | None:
    """Attach through ``sock``: the container's exit status, or None when the detach keys
    were typed (``stdin`` to a ``tty`` container only, as Docker). ``stdin`` from a terminal
    to a terminal container puts ours in raw mode meanwhile. Raises ConnectionError when the
    shim closes the connection without either (it was killed, or dropped us for falling
    behind)."""
    from lamina.runtime import console
    from lamina.runtime.signals import Wakeup

    caught: list[int] = []
    handled: set[int] = set()
    if sig_proxy:
        from lamina.runtime.shim import FORWARDED

        handled |= FORWARDED
    if tty:
        handled.add(signal.SIGWINCH)  # a resize, not passed on
    old_handlers: dict[int, Any] = {}
    raw = console.raw_input(0) if tty and stdin else contextlib.nullcontext()
    try:
        for sig in handled:
            old_handlers[sig] = signal.signal(sig, lambda signum, _frame: caught.append(signum))
        with Wakeup() as wake, raw:
            return _Relay(sock, wake, caught, stdin=stdin, tty=tty).run(detach_keys)
    finally:
        for signum, handler in old_handlers.items():
            signal.signal(signum, handler)


class _Relay:
    def __init__(
        self, sock: socket.socket, wake: Any, caught: list[int], *, stdin: bool, tty: bool
    ) -> None:
        self._sock = sock
        self._fd = sock.fileno()
        self._wake = wake
        self._caught = caught
        self._stdin = stdin
        self._tty = tty
        self._outbox = bytearray()
        self._inbox = bytearray()
        self._sel = selectors.PollSelector()  # poll takes any stdin (a regular file too)
        self._reading = False  # stdin is registered
        self._stdin_open = False  # the shim takes our input and it has not ended

    def run(self, detach_keys: bytes) -> int | None:
        sock, sel = self._sock, self._sel
        sock.setblocking(False)
        hello = {"stdin": self._stdin, "detach_keys": detach_keys.hex() if self._tty else ""}
        self._outbox += frame(HELLO, json.dumps(hello).encode())
        if self._tty:
            self._resize()
        sel.register(self._fd, selectors.EVENT_READ | selectors.EVENT_WRITE, "sock")
        sel.register(self._wake.fileno(), selectors.EVENT_READ, "wake")
        try:
            while True:
                # Signals caught before the wakeup pipe was set are sent before waiting too.
                self._forward_signals()
                self._update()
                for key, mask in sel.select():
                    if key.data == "wake":
                        self._wake.drain()
                    elif key.data == "stdin":
                        self._read_stdin()
                    else:
                        if mask & selectors.EVENT_WRITE:
                            self._send()
                        if mask & selectors.EVENT_READ:
                            for kind, payload in self._receive():
                                ended, code = self._on_frame(kind, payload)
                                if ended:
                                    return code
        finally:
            sel.close()

    def _on_frame(self, kind: int, payload: bytes) -> tuple[bool, int | None]:
        """(whether the attachment is over, the exit status: None for a detach)."""
        if kind == protocol.STDOUT:
            _write_all(1, payload)
        elif kind == protocol.STDERR:
            _write_all(2, payload)
        elif kind == protocol.READY:
            self._stdin_open = self._stdin and bool(json.loads(payload).get("stdin"))
        elif kind == protocol.EXIT:
            return True, int(protocol.STATUS.unpack(payload)[0])
        elif kind == protocol.DETACHED:
            return True, None
        return False, None

    def _receive(self) -> list[tuple[int, bytes]]:
        try:
            data = os.read(self._fd, 1 << 16)
        except BlockingIOError:
            return []
        except OSError as exc:
            raise ConnectionError("the attach connection broke") from exc
        if not data:
            raise ConnectionError("the shim closed the attach connection")
        self._inbox += data
        return protocol.split_frames(self._inbox)

    def _send(self) -> None:
        try:
            while self._outbox:
                del self._outbox[: os.write(self._fd, self._outbox)]
        except BlockingIOError:
            pass
        except OSError as exc:
            raise ConnectionError("the attach connection broke") from exc

    def _read_stdin(self) -> None:
        try:
            data = os.read(0, 1 << 16)
        except OSError:
            data = b""
        if data:
            self._outbox += frame(STDIN, data)
            return
        self._outbox += frame(STDIN_EOF)
        self._stdin_open = False

    def _resize(self) -> None:
        from lamina.runtime.console import terminal_size

        if size := terminal_size():
            self._outbox += frame(RESIZE, SIZE.pack(*size))

    def _forward_signals(self) -> None:
        caught, self._caught[:] = list(self._caught), []
        for signum in caught:
            if self._tty and signum == signal.SIGWINCH:
                self._resize()
            else:
                self._outbox += frame(SIGNAL, SIGNUM.pack(signum))

    def _update(self) -> None:
        """Watch the socket for writability while there is something to send, and stdin
        while the shim takes it and has not fallen behind."""
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self._outbox else 0)
        self._sel.modify(self._fd, events, "sock")
        want = self._stdin_open and len(self._outbox) < _OUTBOX_LIMIT
        if want != self._reading:
            if want:
                self._sel.register(0, selectors.EVENT_READ, "stdin")
            else:
                self._sel.unregister(0)
            self._reading = want


def _write_all(fd: int, data: bytes) -> None:
    """Write ``data`` to ``fd`` (waiting if it is non-blocking and full); output to a reader
    that went away is dropped, as the attachment goes on until the container's end."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            select.select([], [fd], [])
        except OSError:
            return
