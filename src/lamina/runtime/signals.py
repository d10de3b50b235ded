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
