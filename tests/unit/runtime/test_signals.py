"""Signals as ``docker kill -s`` and ``STOPSIGNAL`` take them (moby's ParseSignal and
ValidSignalForPlatform on Linux; numbers from signal(7))."""

from __future__ import annotations

import pytest

from lamina.errors import UsageError
from lamina.runtime.signals import signal_name, signal_number


@pytest.mark.parametrize(
    ("given", "number", "name"),
    [
        ("9", 9, "SIGKILL"),
        ("kill", 9, "SIGKILL"),
        ("SIGTERM", 15, "SIGTERM"),
        (" hup ", 1, "SIGHUP"),
        ("SIGCLD", 17, "SIGCHLD"),
        ("USR1", 10, "SIGUSR1"),
        ("31", 31, "SIGSYS"),
        ("SIGRTMIN", 34, "SIGRTMIN"),
        ("sigrtmin+3", 37, "SIGRTMIN+3"),  # systemd's stop signal
        ("RTMIN+15", 49, "SIGRTMIN+15"),
        ("RTMAX-14", 50, "SIGRTMIN+16"),
        ("SIGRTMAX-1", 63, "SIGRTMIN+29"),
        ("RTMAX", 64, "SIGRTMAX"),
        ("64", 64, "SIGRTMAX"),
        (2, 2, "SIGINT"),
    ],
)
def test_valid_signals(given: str | int, number: int, name: str) -> None:
    assert signal_number(given) == number
    assert signal_name(number) == name
    assert signal_number(signal_name(number)) == number


@pytest.mark.parametrize(
    "given", ["0", 0, "32", "33", "65", "99", "-1", "", "SIGFOO", "RTMIN-1", "RTMAX+1", "RTMIN+31"]
)
def test_invalid_signals_are_usage_errors(given: str | int) -> None:
    with pytest.raises(UsageError, match="invalid stop signal"):
        signal_number(given, what="stop signal")
