"""The attach socket's pieces without a container: Docker's detach keys (moby/term's
``ToBytes`` and escape proxy, whose tests the cases follow, and what docker 20.10 accepted and
refused), and the shim's :class:`Server` driven through a real socket by a select loop of the
test's own."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
from pathlib import Path

import pytest

from lamina.runtime import attach
from lamina.runtime.attach import (
    DETACHED,
    EXIT,
    HELLO,
    READY,
    SIGNAL,
    SIGNUM,
    SIZE,
    STDERR,
    STDIN,
    STDIN_EOF,
    STDOUT,
    EscapeFilter,
    InvalidDetachKeysError,
    detach_keys,
    frame,
)
from lamina.runtime.attach_client import connect


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        (None, b"\x10\x11"),
        ("", b"\x10\x11"),  # docker: an empty --detach-keys is the default
        ("ctrl-a,a", b"\x01a"),
        ("ctrl-@,ctrl-[,~,ctrl-o", b"\x00\x1b~\x0f"),
        ("DEL,+", b"\x7f+"),
        ("ctrl-\\,ctrl-_", b"\x1c\x1f"),
        (" ", b" "),
    ],
)
def test_detach_keys_docker_reads(text: str | None, codes: bytes) -> None:
    assert detach_keys(text) == codes


# docker 20.10 answered each with "Invalid detach keys (KEYS) provided".
@pytest.mark.parametrize("text", ["bogus", "ctrl-P", "shift-z", ",", "ctrl-p,", "é", "ctrl-?"])
def test_detach_keys_docker_refuses(text: str) -> None:
    with pytest.raises(InvalidDetachKeysError) as err:
        detach_keys(text)
    assert str(err.value) == f"Invalid detach keys ({text}) provided"
    assert err.value.exit_status == 1


def _feed(keys: str, *chunks: bytes) -> list[tuple[bytes, bool]]:
    f = EscapeFilter(detach_keys(keys))
    return [f.feed(c) for c in chunks]


def test_escape_filter() -> None:
    # the whole sequence, in one read or over several; what came before it passes
    assert _feed("ctrl-p,ctrl-q", b"\x10\x11") == [(b"", True)]
    assert _feed("ctrl-p,ctrl-q", b"\x10", b"\x11") == [(b"", False), (b"", True)]
    assert _feed("ctrl-p,ctrl-q", b"echo hi\x10\x11rest") == [(b"echo hi", True)]
    assert _feed("a,b,c,d", b"ab", b"cd") == [(b"", False), (b"", True)]
    # a key that breaks it releases what was held, and is not a new start
    assert _feed("ctrl-p,ctrl-q", b"\x10", b"a", b"\x10\x11") == [
        (b"", False),
        (b"\x10a", False),
        (b"", True),
    ]
    assert _feed("ctrl-p,ctrl-q", b"\x10\x10\x11") == [(b"\x10\x10\x11", False)]
    assert _feed("ctrl-c,ctrl-z", b"\x03", b"\x7f+") == [(b"", False), (b"\x03\x7f+", False)]
    assert _feed("ctrl-p,ctrl-q", b"plain") == [(b"plain", False)]


class _Shim:
    """A Server with a select loop of its own, and what it did to the 'container'."""

    def __init__(self, directory: Path, *, tty: bool, stdin_once: bool) -> None:
        self.in_r, in_w = os.pipe()
        self.signals: list[int] = []
        self.sizes: list[tuple[int, int]] = []
        self.sel = selectors.DefaultSelector()
        self.server = attach.Server(
            attach.listen(directory),
            directory=directory,
            tty=tty,
            sink=in_w,
            stdin_once=stdin_once,
            on_signal=self.signals.append,
            on_resize=lambda rows, cols: self.sizes.append((rows, cols)),
        )
        self.server.watch(self.sel)

    def turn(self, timeout: float = 0.2) -> None:
        for key, mask in self.sel.select(timeout):
            self.server.ready(key.fd, mask)

    def container_stdin(self) -> bytes:
        os.set_blocking(self.in_r, False)
        try:
            return os.read(self.in_r, 1 << 16)
        except BlockingIOError:
            return b"<nothing>"


class _Client:
    def __init__(self, directory: Path, shim: _Shim, **hello: object) -> None:
        self.sock = connect(directory)
        self.shim = shim
        self.inbox = bytearray()
        self.frames: list[tuple[int, bytes]] = []
        self.sock.sendall(frame(HELLO, json.dumps(hello).encode()))

    def send(self, kind: int, payload: bytes = b"") -> None:
        self.sock.sendall(frame(kind, payload))

    def expect(self, kind: int) -> bytes:
        """Turn the shim's loop until a frame of ``kind`` comes (others are skipped)."""
        self.sock.setblocking(False)
        for _ in range(100):
            while self.frames:
                got, payload = self.frames.pop(0)
                if got == kind:
                    return payload
            self.shim.turn(0.05)
            with contextlib.suppress(BlockingIOError):
                self.inbox += self.sock.recv(1 << 16)
            self.frames += attach.split_frames(self.inbox)
        raise AssertionError(f"no frame {kind}")


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    d = tmp_path / ("x" * 120)  # longer than a unix socket's path may be
    d.mkdir(mode=0o700)
    return d


def test_server_output_input_signals_and_exit(directory: Path) -> None:
    shim = _Shim(directory, tty=False, stdin_once=False)
    reader = _Client(directory, shim, stdin=False)
    writer = _Client(directory, shim, stdin=True)
    assert json.loads(reader.expect(READY)) == {"stdin": False}
    assert json.loads(writer.expect(READY)) == {"stdin": True}
    shim.server.broadcast("stdout", b"out")
    shim.server.broadcast("stderr", b"err")
    for client in (reader, writer):
        assert client.expect(STDOUT) == b"out"
        assert client.expect(STDERR) == b"err"
    reader.send(STDIN, b"ignored")  # its input was not asked for, so not taken
    writer.send(STDIN, b"typed")
    writer.send(SIGNAL, SIGNUM.pack(15))
    writer.send(STDIN_EOF)  # StdinOnce false: the container's stdin stays open
    for _ in range(5):
        shim.turn()
    assert shim.container_stdin() == b"typed"
    assert shim.signals == [15]
    reader.sock.close()  # one leaving changes nothing for the other
    shim.turn()
    shim.server.broadcast("stdout", b"more")
    assert writer.expect(STDOUT) == b"more"
    shim.server.finish(3)
    assert attach.STATUS.unpack(writer.expect(EXIT)) == (3,)
    assert writer.sock.recv(10) == b""
    assert not (directory / attach.SOCKET_NAME).exists()


def test_server_stdin_once_and_detach_keys(directory: Path) -> None:
    shim = _Shim(directory, tty=False, stdin_once=True)
    client = _Client(directory, shim, stdin=True, detach_keys="1011")
    client.expect(READY)
    client.send(STDIN, b"a\x10\x11")  # no terminal: the keys are data, as in Docker
    client.send(STDIN_EOF)
    for _ in range(5):
        shim.turn()
    assert os.read(shim.in_r, 100) == b"a\x10\x11"
    assert os.read(shim.in_r, 100) == b""  # StdinOnce: closed at the client's end of input
    shim.server.finish(0)

    directory = directory.parent / "tty"
    directory.mkdir(mode=0o700)
    shim = _Shim(directory, tty=True, stdin_once=True)
    client = _Client(directory, shim, stdin=True, detach_keys="1011")
    client.expect(READY)
    client.send(attach.RESIZE, SIZE.pack(40, 120))
    client.send(STDIN, b"ls\x10x\x10\x11after")
    assert client.expect(DETACHED) == b""
    assert client.sock.recv(10) == b""  # the connection ends with the detach
    assert shim.sizes == [(40, 120)]
    assert shim.container_stdin() == b"ls\x10x"
    shim.server.finish(0)


def test_server_drops_a_client_that_falls_behind(directory: Path) -> None:
    shim = _Shim(directory, tty=False, stdin_once=False)
    slow = _Client(directory, shim, stdin=False)
    slow.expect(READY)
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    chunk = b"x" * (1 << 16)
    for _ in range(attach.OUT_LIMIT // len(chunk) + 64):  # it never reads
        shim.server.broadcast("stdout", chunk)
    slow.sock.setblocking(True)
    slow.sock.settimeout(10)
    got = 0
    while data := slow.sock.recv(1 << 20):
        got += len(data)
    assert got < attach.OUT_LIMIT + (1 << 20)  # cut off, not fed forever
    shim.server.finish(0)


def test_server_out_of_fds_waits_instead_of_spinning(directory: Path) -> None:
    import resource

    shim = _Shim(directory, tty=False, stdin_once=False)
    first = _Client(directory, shim, stdin=False)
    first.expect(READY)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 8, hard))
    filler: list[int] = []
    try:
        with contextlib.suppress(OSError):  # every fd number below the limit taken...
            while True:
                filler.append(os.open(os.devnull, os.O_RDONLY))
        os.close(filler.pop())  # ...but the two the client's connect needs
        os.close(filler.pop())
        waiting = _Client(directory, shim, stdin=False)
        filler.append(os.open(os.devnull, os.O_RDONLY))  # the one it let go of
        shim.turn()  # the shim's accept fails: EMFILE
        assert shim.sel.select(0) == []  # and the listener no longer wakes its loop
    finally:
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    first.sock.close()  # a client leaves: the one waiting is taken
    assert json.loads(waiting.expect(READY)) == {"stdin": False}
    shim.server.finish(0)


def test_server_reads_no_faster_than_the_container(directory: Path) -> None:
    """A container that does not read its stdin: the clients' input stops being read once
    ~IN_LIMIT waits for it (nothing unbounded, no busy loop), and all of it arrives, in
    order, once it reads."""
    shim = _Shim(directory, tty=False, stdin_once=False)
    client = _Client(directory, shim, stdin=True)
    client.expect(READY)
    client.sock.setblocking(False)
    data = bytes(range(256)) * 16384  # 4 MiB
    out = bytearray()
    for start in range(0, len(data), 1 << 16):
        out += frame(STDIN, data[start : start + (1 << 16)])
    for _ in range(200):  # send what the socket takes while the shim turns
        with contextlib.suppress(BlockingIOError):
            del out[: client.sock.send(out)]
        shim.turn(0.01)
    assert out  # the shim stopped reading before all of it was sent...
    assert shim.sel.select(0) == []  # ...and does not spin
    got = bytearray()
    os.set_blocking(shim.in_r, False)
    for _ in range(2000):
        if out:
            with contextlib.suppress(BlockingIOError):
                del out[: client.sock.send(out)]
        shim.turn(0.001)
        with contextlib.suppress(BlockingIOError):
            got += os.read(shim.in_r, 1 << 20)
        if len(got) == len(data):
            break
    assert got == data
    shim.server.finish(0)
