from __future__ import annotations

import pytest

from lamina.cli.render import human_duration, human_size, since


@pytest.mark.parametrize(
    ("n", "expected"),
    # Docker's units.HumanSize (SI, 3 significant digits): values seen in docker images output.
    [
        (0, "0B"),
        (999, "999B"),
        (1250, "1.25kB"),
        (1985635, "1.99MB"),
        (8460000, "8.46MB"),
        (124000000, "124MB"),
    ],
)
def test_human_size(n: int, expected: str) -> None:
    assert human_size(n) == expected


@pytest.mark.parametrize(
    ("secs", "expected"),
    [
        (0.5, "Less than a second"),
        (1, "1 second"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (600, "10 minutes"),
        (3600, "About an hour"),
        (7200, "2 hours"),
        (3 * 86400, "3 days"),
        (15 * 86400, "2 weeks"),
        (90 * 86400, "3 months"),
        (800 * 86400, "2 years"),
    ],
)
def test_human_duration(secs: float, expected: str) -> None:
    assert human_duration(secs) == expected


def test_since_handles_nanoseconds_and_old_dates() -> None:
    assert since("2026-11-27T22:51:37.594559937Z", now=1795128697.0 + 7200).endswith("ago")
    assert since("1970-01-01T00:00:00Z") == "N/A"
    assert since(None) == "N/A"
