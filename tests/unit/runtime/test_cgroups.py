"""The OCI ``linux.resources`` lamina writes, and reading the OOM-kill counters."""

from __future__ import annotations

from pathlib import Path

from lamina.runtime.cgroups import Resources, linux_resources, oom_kills


def test_only_what_is_set_reaches_the_spec() -> None:
    assert linux_resources(Resources()) == {}
    full = Resources(
        memory=64 << 20,
        memory_swap=128 << 20,
        cpu_shares=512,
        cpu_quota=150000,
        cpu_period=100000,
        pids_limit=100,
    )
    assert linux_resources(full) == {
        "memory": {"limit": 64 << 20, "swap": 128 << 20},
        "cpu": {"shares": 512, "quota": 150000, "period": 100000},
        "pids": {"limit": 100},
    }
    assert linux_resources(Resources(pids_limit=5)) == {"pids": {"limit": 5}}


def test_oom_kills_reads_v1_and_v2_counters(tmp_path: Path) -> None:
    v1 = tmp_path / "v1"
    v1.mkdir()
    (v1 / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert (oom_kills(v1), oom_kills(v2), oom_kills(tmp_path / "gone")) == (2, 1, 0)
