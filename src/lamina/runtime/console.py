"""A container's pseudo-terminal, as runc hands it over: ``--console-socket``.

When the process asks for a terminal (``process.terminal`` in config.json) runc makes the pty
*inside* the container and sends its master end over a unix socket (one message, the pts path
as data and the fd as ``SCM_RIGHTS``). runc accepts ``--console-socket`` only together with
``--detach``: whoever listens on the socket owns the terminal from then on. In lamina that is
the shim, so a ``run -d -t`` container keeps its terminal (and its log) after the launcher is
gone. The socket is made in the bundle and named relative to it, because runc runs with the
bundle as its working directory and a unix socket's path is limited to 107 bytes.

Also here: the window size (read from the launcher's terminal, set on the master) and the raw
mode an interactive launcher puts its own terminal in, so keys reach the container's line
discipline unprocessed (as ``docker run -it`` does).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import termios
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import socket  # imported where used: only a shim serving a terminal needs it (~2 ms)

SOCKET_NAME: Final = "console.sock"
_ACCEPT_TIMEOUT: Final = 10.0  # runc has sent the master before ``run --detach`` returns
_WINSIZE: Final = struct.Struct("HHHH")  # struct winsize: rows, cols, xpixel, ypixel


def listen(path: str) -> socket.socket:
    """A listening unix socket at ``path`` (replacing a stale one left by a killed shim)."""
    import socket

    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.bind(path)
        os.chmod(path, 0o600)
        sock.listen(1)
    except BaseException:
        sock.close()
        raise
    return sock


def receive_master(listener: socket.socket) -> int:
    """Accept runc's connection and return the pty master fd it sends (close-on-exec).
    Raises OSError (TimeoutError if runc never connected, ConnectionError if it sent no fd)."""
    import socket

    listener.settimeout(_ACCEPT_TIMEOUT)
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(_ACCEPT_TIMEOUT)
        _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
    if not fds:
        raise ConnectionError("runc closed the console socket without sending the terminal")
    master = fds[0]
    for extra in fds[1:]:
        os.close(extra)
    os.set_inheritable(master, False)
    return master


def terminal_size(fds: tuple[int, ...] = (1, 2, 0)) -> tuple[int, int] | None:
    """(rows, columns) of the first of ``fds`` that is a terminal with a size (stdout first,
    as the Docker CLI), or None."""
    for fd in fds:
        try:
            rows, cols, _, _ = _WINSIZE.unpack(
                fcntl.ioctl(fd, termios.TIOCGWINSZ, bytes(_WINSIZE.size))
            )
        except OSError:
            continue
        if rows and cols:
            return rows, cols
    return None


def set_size(master: int, size: tuple[int, int]) -> None:
    """Give the pty ``size`` (rows, columns); the kernel sends SIGWINCH to its foreground
    process group when that changes it."""
    rows, cols = size
    fcntl.ioctl(master, termios.TIOCSWINSZ, _WINSIZE.pack(rows, cols, 0, 0))


@contextlib.contextmanager
def raw_input(fd: int = 0) -> Iterator[None]:
    """Put the terminal on ``fd`` in raw mode for the block, if it is a terminal, and restore
    it after: keystrokes (Ctrl-C included) go to the container's terminal, which echoes and
    signals as its own settings say."""
    try:
        saved = termios.tcgetattr(fd)
    except termios.error:
        yield
        return
    import tty  # only an interactive terminal run needs it

    tty.setraw(fd, termios.TCSANOW)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
