"""Signals as Docker reads them: ``docker kill -s``, ``docker stop``'s image ``STOPSIGNAL``.

A signal is a number or a name, with or without ``SIG``, in any case: ``9``, ``kill``,
``SIGTERM``, and the real-time ones as ``SIGRTMIN+3`` or ``RTMAX-1`` (systemd images stop with
``SIGRTMIN+3``). Only Linux's deliverable signals are valid: 1-31 and SIGRTMIN-SIGRTMAX (32
and 33 belong to the C library), as Docker's ``ValidSignalForPlatform``; 0 is refused, as
Docker's ``ParseSignal`` refuses it.
"""

from __future__ import annotations

import re
import signal
from typing import Final

from lamina.errors import UsageError

_REAL_TIME: Final = re.compile(r"RTMIN(\+\d+)?|RTMAX(-\d+)?")


def signal_number(sig: int | str, *, what: str = "signal") -> int:
    """The number ``sig`` names; UsageError naming ``what`` when it names none."""
    if isinstance(sig, int):
        number = sig
    else:
        text = sig.strip().upper()
        name = text.removeprefix("SIG")
        if text.isascii() and text.isdigit():
            number = int(text)
        elif _REAL_TIME.fullmatch(name):
            base = signal.SIGRTMIN if name.startswith("RTMIN") else signal.SIGRTMAX
            number = base + int(name[5:] or 0)
        elif f"SIG{name}" in signal.Signals.__members__:
            number = signal.Signals[f"SIG{name}"].value
        else:
            number = 0
    if not (1 <= number < 32 or signal.SIGRTMIN <= number <= signal.SIGRTMAX):
        raise UsageError(f"invalid {what}: {sig!r}")
    return number


def signal_name(number: int) -> str:
    """Its name as Docker spells it (``SIGTERM``, ``SIGRTMIN+3``)."""
    if signal.SIGRTMIN < number < signal.SIGRTMAX:
        return f"SIGRTMIN+{number - signal.SIGRTMIN}"
    return signal.Signals(number).name


class Wakeup:
    """While entered, a signal this process handles also writes a byte to a pipe
    (``signal.set_wakeup_fd``), and :meth:`wait_readable` waits on that pipe too.

    Why: a Python signal handler runs between bytecodes. A signal that lands after the last
    check and before a blocking call (``os.waitpid``, ``os.read``) interrupts nothing, so its
    handler -- forwarding the signal to the container -- waited until that call returned,
    i.e. until the container exited of its own accord (``lamina run`` then ignored a TERM or
    a Ctrl-C about one time in ten). Waiting in ``select`` on the pipe as well closes the
    window: the byte is there before ``select`` starts. Main thread only, as
    ``signal.signal``."""

    def __enter__(self) -> Wakeup:
        import os

        self._r, self._w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._old = signal.set_wakeup_fd(self._w, warn_on_full_buffer=False)
        return self

    def __exit__(self, *_exc: object) -> None:
        import os

        signal.set_wakeup_fd(self._old)
        os.close(self._r)
        os.close(self._w)

    def fileno(self) -> int:
        """The pipe's read end, for a select loop of the caller's own (see :meth:`drain`)."""
        return self._r

    def drain(self) -> None:
        """Empty the pipe: back in Python, the handlers of the signals that came have run."""
        import os

        try:
            while os.read(self._r, 512):
                pass
        except BlockingIOError:
            pass

    def wait_readable(self, fd: int) -> None:
        """Block until ``fd`` is readable; the handlers of signals that come meanwhile run."""
        import select

        while True:
            ready, _, _ = select.select([fd, self._r], [], [])
            if self._r in ready:
                self.drain()
            if fd in ready:
                return

    def wait_process(self, pid: int) -> None:
        """Block until the child ``pid`` has exited (not reaping it)."""
        import os

        pidfd = os.pidfd_open(pid)
        try:
            self.wait_readable(pidfd)
        finally:
            os.close(pidfd)
