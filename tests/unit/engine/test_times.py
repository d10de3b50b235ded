"""``--since``/``--until`` points and json-file timestamps (engine/times.py)."""

from __future__ import annotations

from datetime import datetime

import pytest

from lamina.engine.times import log_time, parse_duration, parse_point
from lamina.errors import UsageError

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10), ("1h30m", 5400), ("250ms", 0.25), ("1.5h", 5400), ("2m3s", 123), ("5us", 5e-6)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "10x", "m", "1h 2m", "-5s", "1h30"])
def test_not_durations(text: str) -> None:
    assert parse_duration(text) is None


def test_points_as_docker_reads_them() -> None:
    assert parse_point("10m", now=NOW, flag="--since") == NOW - 600
    assert parse_point("1700000000", now=NOW, flag="--since") == 1_700_000_000
    assert parse_point("1700000000.25", now=NOW, flag="--since") == 1_700_000_000.25
    assert parse_point("2023-11-14T22:13:20Z", now=NOW, flag="--since") == 1_700_000_000
    assert parse_point("2023-11-14T23:13:20+01:00", now=NOW, flag="--since") == 1_700_000_000
    local = datetime(2023, 11, 14, 22, 13).astimezone().timestamp()  # no zone: local time
    assert parse_point("2023-11-14T22:13", now=NOW, flag="--since") == local
    assert parse_point("2023-11-14", now=NOW, flag="--since") == datetime(2023, 11, 14).timestamp()
    with pytest.raises(UsageError, match="invalid --until 'soon'"):
        parse_point("soon", now=NOW, flag="--until")


def test_log_times_keep_their_nanoseconds_to_the_microsecond() -> None:
    assert log_time("2023-11-14T22:13:20.123456789Z") == pytest.approx(1_700_000_000.123456)
    assert log_time("2023-11-14T22:13:20Z") == 1_700_000_000
