"""The shim's attach socket: its protocol, the detach keys, and the shim's side of it.

Every shim serves a unix socket, :data:`SOCKET_NAME` in the container's record dir (mode
0600 in a 0700 dir: root's alone, as conmon's attach socket). A client that connects (``lamina
attach``, ``start -a`` of a running container) gets the container's output from then on and,
when the container keeps its stdin open (``-i``: Docker's ``OpenStdin``), may write to it;
any number of clients may be attached, and one leaving never touches the container. The
client's side is :mod:`lamina.runtime.attach_client`.

The socket is named through ``/proc/self/fd/<dir fd>/``, as conmon names its own: a unix
socket's path is limited to 107 bytes, and a store root may be deep enough to pass it.

Both ways the stream is frames: ``kind`` (1 byte), ``length`` (4 bytes, big-endian), payload.

========  ================  ===========================================================
 way       kind              payload
========  ================  ===========================================================
 to shim   ``HELLO``         JSON ``{"stdin": bool, "detach_keys": hex}``: the first frame
 to shim   ``STDIN``         bytes for the container's stdin (once READY said so)
 to shim   ``STDIN_EOF``     the client's input ended (closes a ``StdinOnce`` pipe stdin)
 to shim   ``RESIZE``        ``!HH`` rows, columns of the client's terminal (``-t``)
 to shim   ``SIGNAL``        ``!I`` a signal for the container's init (``--sig-proxy``)
 to client ``READY``         JSON ``{"stdin": bool}``: whether its input is taken
 to client ``STDOUT``        output (a terminal's too: it is one stream, as in the log)
 to client ``STDERR``        output on stderr (no terminal)
 to client ``DETACHED``      the client typed its detach keys; the connection ends
 to client ``EXIT``          ``!i`` the container's exit status, once recorded; the last
========  ================  ===========================================================

The detach keys are Docker's: typed into a terminal container's stdin (``-it``), the
sequence (default ctrl-p ctrl-q) ends the attachment and leaves the container running. They
are watched for in the shim, as Docker's daemon does, so every way of attaching shares one
implementation (:class:`EscapeFilter`): the clients of the socket, and the launcher of
``run -it`` / ``start -ai``, whose stdin the shim relays itself.

The shim's side (:class:`Server`) never blocks: every fd is non-blocking and what cannot be
written yet is buffered, within bounds. A client that falls more than :data:`OUT_LIMIT` behind
the output is dropped (it sees its connection end while the container runs); clients' input
waiting for a container that does not read it stops being read at :data:`IN_LIMIT`.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import selectors
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from lamina.errors import LaminaError

if TYPE_CHECKING:
    import _socket

SOCKET_NAME: Final = "attach.sock"
TAG: Final = "attach"  # the selector data of every fd a Server watches

HEADER: Final = struct.Struct("!BI")
HELLO, STDIN, STDIN_EOF, RESIZE, SIGNAL = 1, 2, 3, 4, 5  # to the shim
READY, STDOUT, STDERR, DETACHED, EXIT = 11, 12, 13, 14, 15  # to the client
SIZE: Final = struct.Struct("!HH")
SIGNUM: Final = struct.Struct("!I")
STATUS: Final = struct.Struct("!i")

MAX_FRAME: Final = 1 << 20  # a client's frame is at most this long (a read is 64 KiB)
OUT_LIMIT: Final = 8 << 20  # output buffered for one client before it is dropped
IN_LIMIT: Final = 1 << 20  # input buffered for the container before clients are not read
_FLUSH: Final = 1.0  # seconds the shim spends delivering the last frames to slow clients

DEFAULT_DETACH_KEYS: Final = b"\x10\x11"  # ctrl-p, ctrl-q
# moby/term's ASCII table: "ctrl-@" is 0, "ctrl-a" 1 ... "ctrl-_" 31.
_CTRL: Final = {f"ctrl-{c}": code for code, c in enumerate("@abcdefghijklmnopqrstuvwxyz[\\]^_")}


class InvalidDetachKeysError(LaminaError):
    """A ``--detach-keys`` value Docker's daemon refuses, in its words (status 1)."""

    def __init__(self, keys: str) -> None:
        super().__init__(f"Invalid detach keys ({keys}) provided")
        self.keys = keys


def detach_keys(text: str | None) -> bytes:
    """The bytes a ``--detach-keys`` value names (None or "": ctrl-p,ctrl-q), read as Docker
    reads it (moby/term ``ToBytes``): comma-separated keys, each a one-byte character,
    ``ctrl-@``..``ctrl-_`` (``ctrl-a``, ``ctrl-[``...) or ``DEL``. Raises
    InvalidDetachKeysError for anything else (``ctrl-P``, ``é``, an empty key)."""
    if not text:
        return DEFAULT_DETACH_KEYS
    codes = bytearray()
    for key in text.split(","):
        raw = key.encode()
        if len(raw) == 1:
            codes += raw
        elif key in _CTRL:
            codes.append(_CTRL[key])
        elif key == "DEL":
            codes.append(0x7F)
        else:
            raise InvalidDetachKeysError(text)
    return bytes(codes)


class EscapeFilter:
    """Docker's escape proxy (moby/term ``escapeProxy``) over a stream of input: bytes that
    begin the key sequence are held back; the whole sequence is a detach (it and what follows
    it are dropped); a byte that breaks it releases what was held, and is itself passed on
    without starting a new match (so ctrl-p ctrl-p ctrl-q is no detach, as in Docker)."""

    def __init__(self, keys: bytes) -> None:
        assert keys, "an empty sequence never completes"
        self._keys = keys
        self._pos = 0

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """What to pass on of ``data``, and whether the sequence completed in it."""
        keys, pos = self._keys, self._pos
        if pos == 0 and keys[0] not in data:
            return data, False
        out = bytearray()
        for byte in data:
            if byte == keys[pos]:
                pos += 1
                if pos == len(keys):
                    self._pos = 0
                    return bytes(out), True
            else:
                out += keys[:pos]
                out.append(byte)
                pos = 0
        self._pos = pos
        return bytes(out), False


def frame(kind: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def split_frames(buf: bytearray) -> list[tuple[int, bytes]]:
    """The whole frames at the start of ``buf`` (removed from it); a partial one stays."""
    frames = []
    start = 0
    while len(buf) - start >= HEADER.size:
        kind, size = HEADER.unpack_from(buf, start)
        end = start + HEADER.size + size
        if len(buf) < end:
            break
        frames.append((kind, bytes(buf[start + HEADER.size : end])))
        start = end
    del buf[:start]
    return frames


def socket_path(dir_fd: int) -> str:
    """The socket's name through ``dir_fd`` (the record dir): short whatever the root."""
    return f"/proc/self/fd/{dir_fd}/{SOCKET_NAME}"


def socket_path_in(directory: Path) -> Path:
    """The socket's path by name (for unlinking; connect and bind go through an fd)."""
    return directory / SOCKET_NAME


def listen(directory: Path) -> _socket.socket:
    """Bind and listen on the attach socket in ``directory`` (made 0600 from the start).

    ``_socket`` is what :mod:`socket` wraps: the wrapper's import costs every shim ~1.5 ms of
    enum building, and the shim needs none of it (clients' fds are read and written with
    ``os``)."""
    import _socket

    dir_fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    sock = _socket.socket(
        _socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC | _socket.SOCK_NONBLOCK
    )
    old_umask = os.umask(0o177)
    try:
        sock.bind(socket_path(dir_fd))
        sock.listen(16)
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(old_umask)
        os.close(dir_fd)
    return sock


class _Client:
    __slots__ = ("escape", "events", "fd", "greeted", "inbox", "leaving", "outbox", "stdin")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.events = 0  # what it is registered for (0: not registered)
        self.greeted = False  # its HELLO came
        self.stdin = False  # its input goes to the container
        self.escape: EscapeFilter | None = None
        self.leaving = False  # closed once its outbox is written (it detached)


class Server:
    """The shim's end of the attach socket. The shim's select loop hands it the events of
    the fds registered with :data:`TAG` (:meth:`ready`) and the container's output
    (:meth:`broadcast`); :meth:`finish` sends the exit status and closes everything.

    ``sink`` is the fd the clients' input is written to (the pty master, or the write end of
    the container's stdin pipe; None: the container's stdin is not open to clients);
    ``stdin_once`` closes a pipe sink when the input of a client ends (Docker's
    ``StdinOnce``). ``on_signal`` and ``on_resize`` act on the container."""

    def __init__(
        self,
        listener: _socket.socket,
        *,
        directory: Path,
        tty: bool,
        sink: int | None,
        stdin_once: bool,
        on_signal: Callable[[int], None],
        on_resize: Callable[[int, int], None] | None,
    ) -> None:
        self._listener = listener
        self._lfd = listener.fileno()
        self._directory = directory
        self._tty = tty
        self._sink = sink
        self._sink_buf = bytearray()
        self._sink_events = 0
        self._stdin_once = stdin_once and not tty
        self._on_signal = on_signal
        self._on_resize = on_resize
        self._clients: dict[int, _Client] = {}
        self._sel: selectors.BaseSelector | None = None
        self._throttled = False
        self._listening = False  # the listener is in the selector
        if sink is not None:
            os.set_blocking(sink, False)

    # -- the select loop's side ---------------------------------------------------------

    def watch(self, sel: selectors.BaseSelector) -> None:
        """Have ``sel`` report the listener's, clients' and sink's events (tagged TAG)."""
        self._sel = sel
        self._listen(True)
        for client in self._clients.values():
            client.events = 0
            self._update(client)
        self._sink_events = 0
        self._update_sink()

    def unwatch(self) -> None:
        """Take every fd out of the selector (no more clients are taken)."""
        self._listen(False)
        sel, self._sel = self._sel, None
        if sel is None:
            return
        watched = list(self._clients)
        if self._sink is not None and self._sink_events:
            watched.append(self._sink)
        for fd in watched:
            with contextlib.suppress(KeyError, ValueError):
                sel.unregister(fd)
        for client in self._clients.values():
            client.events = 0
        self._sink_events = 0

    def ready(self, fd: int, mask: int) -> None:
        if fd == self._lfd:
            self._accept()
        elif fd == self._sink:
            self._flush_sink()
        elif (client := self._clients.get(fd)) is not None:
            if mask & selectors.EVENT_WRITE:
                self._flush(client)
            if mask & selectors.EVENT_READ and fd in self._clients:
                self._read(client)

    def broadcast(self, stream: str, data: bytes) -> None:
        """Send output read from ``stream`` to every client."""
        if not self._clients:
            return
        message = frame(STDERR if stream == "stderr" else STDOUT, data)
        for client in list(self._clients.values()):
            if not client.leaving:
                self._send(client, message)

    def finish(self, status: int) -> None:
        """Send every client the exit status (the state record has it by now), give slow
        clients up to a second to take what is left, close everything and remove the
        socket."""
        self.unwatch()
        with contextlib.suppress(OSError):
            os.unlink(socket_path_in(self._directory))
        self._listener.close()
        self._close_sink()
        for client in self._clients.values():
            if not client.leaving:
                client.outbox += frame(EXIT, STATUS.pack(status))
        poller = select.poll()
        waiting: dict[int, _Client] = {}
        for client in list(self._clients.values()):
            self._write(client)
            if client.outbox and client.fd in self._clients:
                poller.register(client.fd, select.POLLOUT)
                waiting[client.fd] = client
        deadline = time.monotonic() + _FLUSH
        while waiting and (left := deadline - time.monotonic()) > 0:
            for fd, _ in poller.poll(left * 1000):
                client = waiting[fd]
                self._write(client)
                if not client.outbox or fd not in self._clients:
                    poller.unregister(fd)
                    del waiting[fd]
        for client in list(self._clients.values()):
            self._drop(client)

    # -- clients ------------------------------------------------------------------------

    def _listen(self, on: bool) -> None:
        """Have the selector report new clients, or stop it (they wait in the backlog)."""
        if self._sel is None or on == self._listening:
            return
        if on:
            self._sel.register(self._lfd, selectors.EVENT_READ, TAG)
        else:
            self._sel.unregister(self._lfd)
        self._listening = on

    def _accept(self) -> None:
        while True:
            try:
                # _socket's own accept (typeshed knows only the wrapper's): a new fd.
                fd, _ = self._listener._accept()  # type: ignore[attr-defined]
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:  # it left before we took it
                continue
            except OSError:
                # Out of fds (EMFILE) or memory: the listener would stay readable and spin
                # the loop; new clients wait until one leaves.
                self._listen(False)
                return
            os.set_blocking(fd, False)
            os.set_inheritable(fd, False)
            client = _Client(fd)
            self._clients[fd] = client
            self._update(client)

    def _read(self, client: _Client) -> None:
        try:
            data = os.read(client.fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # it left
            self._drop(client)
            return
        client.inbox += data
        for kind, payload in split_frames(client.inbox):
            if not self._handle(client, kind, payload):
                self._drop(client)
                return
            if client.fd not in self._clients or client.leaving:
                return
        if len(client.inbox) > MAX_FRAME + HEADER.size:
            self._drop(client)

    def _handle(self, client: _Client, kind: int, payload: bytes) -> bool:
        """Act on one frame of ``client``; False for one that breaks the protocol."""
        if not client.greeted:
            if kind != HELLO:
                return False
            try:
                hello = json.loads(payload)
                keys = bytes.fromhex(hello.get("detach_keys") or "")
            except (ValueError, AttributeError):
                return False
            client.greeted = True
            client.stdin = bool(hello.get("stdin")) and self._sink is not None
            if client.stdin and self._tty and keys:
                client.escape = EscapeFilter(keys)
            self._send(client, frame(READY, json.dumps({"stdin": client.stdin}).encode()))
        elif kind == STDIN:
            if client.stdin and self._sink is not None:
                detached = False
                if client.escape is not None:
                    payload, detached = client.escape.feed(payload)
                self._feed(payload)
                if detached:
                    client.leaving = True
                    self._send(client, frame(DETACHED))
        elif kind == STDIN_EOF:
            if client.stdin:
                client.stdin = False
                if self._stdin_once:
                    self._close_sink()
        elif kind == RESIZE:
            if len(payload) != SIZE.size:
                return False
            rows, cols = SIZE.unpack(payload)
            if self._on_resize is not None and rows and cols:
                self._on_resize(rows, cols)
        elif kind == SIGNAL:
            if len(payload) != SIGNUM.size:
                return False
            self._on_signal(SIGNUM.unpack(payload)[0])
        else:
            return False
        return True

    def _send(self, client: _Client, message: bytes) -> None:
        client.outbox += message
        if len(client.outbox) > OUT_LIMIT:  # it stopped reading: it must not hold us
            self._drop(client)
            return
        self._write(client)
        if client.fd in self._clients:
            self._update(client)

    def _write(self, client: _Client) -> None:
        """Write what the client can take now."""
        try:
            while client.outbox:
                del client.outbox[: os.write(client.fd, client.outbox)]
        except BlockingIOError:
            return
        except OSError:  # it left (EPIPE, ECONNRESET)
            self._drop(client)
            return
        if client.leaving:
            self._drop(client)

    def _flush(self, client: _Client) -> None:
        self._write(client)
        if client.fd in self._clients:
            self._update(client)

    def _update(self, client: _Client) -> None:
        """Register ``client`` for what it needs: input unless throttled or leaving, and
        writability while its outbox is not empty."""
        events = 0
        if not client.leaving and not self._throttled:
            events |= selectors.EVENT_READ
        if client.outbox:
            events |= selectors.EVENT_WRITE
        if self._sel is None or events == client.events:
            return
        if client.events == 0:
            self._sel.register(client.fd, events, TAG)
        elif events == 0:
            self._sel.unregister(client.fd)
        else:
            self._sel.modify(client.fd, events, TAG)
        client.events = events

    def _drop(self, client: _Client) -> None:
        if self._clients.pop(client.fd, None) is None:
            return
        if client.events and self._sel is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(client.fd)
        os.close(client.fd)
        self._listen(True)  # if it had been stopped for want of fds

    # -- the container's stdin ----------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        if not data or self._sink is None:
            return
        self._sink_buf += data
        self._flush_sink()

    def _flush_sink(self) -> None:
        if self._sink is None:
            return
        try:
            while self._sink_buf:
                del self._sink_buf[: os.write(self._sink, self._sink_buf)]
        except BlockingIOError:
            pass
        except OSError:  # the container closed its stdin (EPIPE) or its terminal (EIO)
            self._close_sink()
            return
        self._update_sink()
        throttled = len(self._sink_buf) > IN_LIMIT
        if throttled != self._throttled:
            self._throttled = throttled
            for client in list(self._clients.values()):
                self._update(client)

    def _update_sink(self) -> None:
        events = selectors.EVENT_WRITE if self._sink_buf else 0
        if self._sel is None or self._sink is None or events == self._sink_events:
            return
        if events:
            self._sel.register(self._sink, events, TAG)
        else:
            self._sel.unregister(self._sink)
        self._sink_events = events

    def _close_sink(self) -> None:
        """The container's stdin is closed (or gone): input is no longer taken."""
        if self._sink is None:
            return
        if self._sink_events and self._sel is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(self._sink)
        self._sink_events = 0
        os.close(self._sink)
        self._sink = None
        self._sink_buf.clear()
        if self._throttled:
            self._throttled = False
            for client in list(self._clients.values()):
                self._update(client)
        for client in self._clients.values():
            client.stdin = False
