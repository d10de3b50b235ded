"""``--oom-score-adj`` and ``--oom-kill-disable`` as docker 20.10 takes them; the words are
the ones it printed."""

from __future__ import annotations

import pytest

from lamina.engine import oom_args
from lamina.engine.oom_args import check_score_adj, parse_score_adj, warnings
from lamina.errors import UsageError


@pytest.mark.parametrize(
    ("value", "expected"),
    [("500", 500), ("-500", -500), ("+7", 7), ("0x10", 16), ("010", 8), ("0o10", 8), ("0", 0)],
)
def test_scores_as_pflag_reads_an_int(value: str, expected: int) -> None:
    assert parse_score_adj(value) == expected


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("x", "invalid syntax"),
        ("", "invalid syntax"),
        (" 5", "invalid syntax"),
        ("1.5", "invalid syntax"),
        ("99999999999999999999", "value out of range"),
    ],
)
def test_scores_that_are_no_int(value: str, why: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_score_adj(value)
    assert str(err.value) == (
        f'invalid argument "{value}" for "--oom-score-adj" flag: strconv.ParseInt: parsing '
        f'"{value}": {why}'
    )


def test_the_daemons_range() -> None:
    for value in (-1000, 0, 1000):
        check_score_adj(value)
    for value in (-1001, 1001):
        with pytest.raises(UsageError) as err:
            check_score_adj(value)
        assert str(err.value) == f"Invalid value {value}, range for oom score adj is [-1000, 1000]"


def test_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    # docker 20.10 create --oom-kill-disable without -m: its CLI's warning, then its
    # daemon's; with -m none; on a kernel without memory.oom_control the daemon drops it.
    cli = (
        "Disabling the OOM killer on containers without setting a '-m/--memory' limit may be "
        "dangerous."
    )
    daemon = (
        "OOM killer is disabled for the container, but no memory limit is set, this can result "
        "in the system running out of resources."
    )
    monkeypatch.setattr(oom_args, "oom_kill_disable_supported", lambda: True)
    assert warnings(oom_kill_disable=True, memory=0) == (True, [cli, daemon])
    assert warnings(oom_kill_disable=True, memory=64 << 20) == (True, [])
    assert warnings(oom_kill_disable=False, memory=0) == (False, [])
    monkeypatch.setattr(oom_args, "oom_kill_disable_supported", lambda: False)
    discarded = "Your kernel does not support OomKillDisable. OomKillDisable discarded."
    assert warnings(oom_kill_disable=True, memory=0) == (False, [cli, discarded])
    assert warnings(oom_kill_disable=True, memory=64 << 20) == (False, [discarded])
